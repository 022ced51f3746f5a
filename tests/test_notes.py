"""The notes app's service layer (pyapp.notes) on CPython: memory store + HashingEmbedder, no browser.

Everything the page's worker used to decide on its own (metadata cleaning, filters, the ward list, the
read-only and embedder fallbacks, bad input) is checked here; the Chromium tests only check the wiring.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from long_note import FACT, HYBRID_QUERY, KEYWORD_QUERY, LEXICAL_SEMANTIC_QUERY, long_note

from pyapp import LocalIndex
from pyapp.documents import DOC_INDEXED
from pyapp.embed.base import Embedder
from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import (
    ClinvecError,
    IndexClosed,
    InvalidFilter,
    InvalidInput,
    ModelBundleError,
    ReadOnlyIndex,
)
from pyapp.notes import (
    HASHING_DIMS,
    INDEXED,
    MAX_TEXT,
    READ_ONLY_NOTICE,
    NotesService,
    build_filter,
    choose_embedder,
    clean_metadata,
    fallback_embedder,
    sample_notes,
    slug,
)

EMBEDDER = HashingEmbedder(dims=64)
ICU_NOTE = {"text": "Septic shock on noradrenaline, lactate rising.", "metadata": {"ward": "ICU", "year": "2024"}}
ED_NOTE = {"text": "Fall at home, femoral neck fracture suspected.", "metadata": {"ward": "ED", "year": 2019}}


@pytest.fixture()
def location() -> str:
    return f"memory://notes-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
async def notes(location: str) -> Any:
    service = await NotesService.open(location, EMBEDDER)
    yield service
    await service.close()
    await LocalIndex.drop(location)


async def _snapshot(service: NotesService) -> tuple[int, list[str], list[Any]]:
    """What a failed call must leave untouched: the count, the wards and every stored item."""
    items = await service.index.list()
    return len(items), await service.wards(), [(i.id, i.text, i.metadata) for i in items]


# ---------------------------------------------------------------------- open, info, fallbacks
async def test_open_creates_the_notes_index_with_ward_and_year_columns(notes: NotesService, location: str) -> None:
    info = await notes.info()
    assert info == {
        "location": location.removeprefix("memory://"),
        "read_only": False,
        "embedder": EMBEDDER.identity,
        "embedder_kind": "hashing",
        "threads": None,
        "notice": None,
        "note_count": 0,
        "items": 0,
    }
    assert notes.index.indexed == [*INDEXED, *DOC_INDEXED]


async def test_a_second_opener_gets_a_read_only_view_and_says_so(notes: NotesService, location: str) -> None:
    """Another tab holds the writer lock: the app still opens, read-only, searches, and refuses writes."""
    added = await notes.add(ICU_NOTE)
    second = await NotesService.open(location, EMBEDDER)
    try:
        info = await second.info()
        assert info["read_only"] is True and info["notice"] == READ_ONLY_NOTICE and info["items"] == 1
        assert (await second.stats())["read_only"] is True
        hits = await second.search({"text": "septic shock", "mode": "keyword"})
        assert [h["id"] for h in hits["results"]] == [added["id"]]
        with pytest.raises(ReadOnlyIndex):
            await second.add(ED_NOTE)
        with pytest.raises(ReadOnlyIndex):
            await second.delete(added["id"])
        with pytest.raises(ReadOnlyIndex):
            await second.load_demo()
        assert await notes.index.count() == 1
    finally:
        await second.close()
    # Once the writer is gone, the next opener writes again.
    await notes.close()
    third = await NotesService.open(location, EMBEDDER)
    try:
        assert third.index.read_only is False and third.notice is None
        await third.add(ED_NOTE)
        assert await third.index.count() == 2
    finally:
        await third.close()


async def test_read_only_keeps_the_embedder_notice_too(notes: NotesService, location: str) -> None:
    second = await NotesService.open(location, EMBEDDER, notice="No model bundle here.")
    try:
        assert second.notice == f"{READ_ONLY_NOTICE} No model bundle here."
    finally:
        await second.close()


class _Missing(Exception):
    """Stands for the browser's BundleNotFound (an HTTP 404 on the manifest)."""


async def test_a_missing_bundle_falls_back_to_the_hashing_embedder() -> None:
    async def absent() -> Any:
        raise _Missing("manifest.json: HTTP 404")

    choice = await choose_embedder(absent, (_Missing,), model="models/minilm/", variant="int8", index="ward7")
    assert isinstance(choice.embedder, HashingEmbedder) and choice.embedder.dims == HASHING_DIMS
    assert choice.location == "ward7-hashing"
    assert "No model bundle at models/minilm/" in (choice.notice or "")
    default = await choose_embedder(absent, (_Missing,), model="models/minilm/", variant="int8")
    assert default.location == "notes-hashing"
    # The fallback really runs the app: open, add, search.
    service = await NotesService.open("memory://" + uuid.uuid4().hex, choice.embedder, notice=choice.notice)
    try:
        assert (await service.info())["embedder_kind"] == "hashing"
        assert (await service.info())["notice"] == choice.notice
        await service.add(ICU_NOTE)
        assert (await service.search({"text": "lactate", "mode": "semantic"}))["results"]
    finally:
        await service.close()


async def test_a_loaded_bundle_gets_its_own_location_and_no_notice() -> None:
    async def load() -> Any:
        return EMBEDDER

    choice = await choose_embedder(load, (_Missing,), model="models/MiniLM v2/", variant="fp32")
    assert choice.embedder is EMBEDDER and choice.notice is None
    assert choice.location == "notes-minilm-v2-fp32"
    named = await choose_embedder(load, (_Missing,), model="models/minilm/", variant="int8", index="mine")
    assert named.location == "mine-int8"
    assert slug("models/minilm/") == "minilm" and slug("/") == "model"


async def test_a_broken_bundle_is_an_error_not_a_fallback() -> None:
    """Only a missing bundle falls back; one that fails its checks must stop the app."""

    async def tampered() -> Any:
        raise ModelBundleError("model_int8.onnx fails its sha256 check")

    with pytest.raises(ModelBundleError, match="sha256"):
        await choose_embedder(tampered, (_Missing,), model="models/minilm/", variant="int8")


class _ModelEmbedder(Embedder):
    """A model-bundle-like embedder (its own identity; vectors borrowed from hashing) for the "onnx" path."""

    dims = 64

    @property
    def identity(self) -> dict[str, Any]:
        return {"model": "tiny-model", "revision": None, "variant": "int8", "sha256": "0" * 64, "bundle": "x"}

    async def embed_raw(self, texts: Sequence[str], progress: Any = None) -> bytes:
        return await EMBEDDER.embed_raw(texts, progress)


async def test_a_model_embedder_is_reported_as_onnx(location: str) -> None:
    service = await NotesService.open(location, _ModelEmbedder())
    try:
        info = await service.info()
        assert info["embedder_kind"] == "onnx" and info["embedder"]["model"] == "tiny-model"
        assert service.index.manifest["embedder"]["model"] == "tiny-model"
    finally:
        await service.close()
        await LocalIndex.drop(location)


# ---------------------------------------------------------------------- add
async def test_add_cleans_metadata_and_stores_the_text_exactly(notes: NotesService) -> None:
    text = "  Chest pain radiating to the left arm.  \r\n"
    out = await notes.add(
        {
            "text": text,
            "metadata": {"ward": "  Cardiology ", "year": " 2023 ", "author": "", "kind": " letter ", "x": [1]},
        }
    )
    assert out["items"] == 1 and out["note_count"] == 1 and out["chunks"] == 1 and isinstance(out["ms"], float)
    note = await notes.get(out["id"])
    meta = {"ward": "Cardiology", "year": 2023, "kind": "letter"}
    assert note == {"id": out["id"], "text": text, "metadata": meta, "chunks": 1}
    (chunk,) = await notes.index.list()
    assert chunk.metadata["_doc"]["uri"] == out["id"] and chunk.metadata["ward"] == "Cardiology"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"ward": "ICU", "year": 2020, "author": "Dr X"}, {"ward": "ICU", "year": 2020, "author": "Dr X"}),
        ({"ward": " ", "year": "", "author": None}, {}),
        ({"year": "-44"}, {"year": -44}),
        ({"ward": 7}, {"ward": "7"}),
        ({"ward": "W" * 500}, {"ward": "W" * 200}),
        ({"unknown": "field"}, {}),
    ],
)
def test_clean_metadata(raw: Any, expected: dict[str, Any]) -> None:
    assert clean_metadata(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"year": "20x4"},
        {"year": "2024.5"},
        {"year": "１２"},  # full-width digits: isdigit() is True, int() would accept them
        {"year": "9" * 5000},  # would be a 5,000-digit integer
        {"year": 2024.0},
        {"year": 10**5000},  # str() of it would raise ValueError (the int conversion limit)
        {"year": True},
        {"ward": ["ICU"]},
        {"author": {"name": "x"}},
        "ward=ICU",
        ["ICU"],
    ],
)
def test_clean_metadata_rejects_junk_clearly(raw: Any) -> None:
    with pytest.raises(InvalidInput):
        clean_metadata(raw)


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ({"text": ""}, "needs some text"),
        ({"text": "   \n\t"}, "needs some text"),
        ({}, "needs some text"),
        ({"text": "x" * (MAX_TEXT + 1)}, "at most"),
        ({"text": 42}, "text must be a string"),
        ({"text": "ok", "metadata": {"year": "soon"}}, "year must be a whole number"),
        ({"text": "ok", "metadata": "ICU"}, "metadata must be an object"),
        ("just a string", "must be an object"),
        (None, "must be an object"),
    ],
)
async def test_bad_notes_are_refused_and_change_nothing(notes: NotesService, note: Any, message: str) -> None:
    await notes.add(ICU_NOTE)
    before = await _snapshot(notes)
    with pytest.raises(InvalidInput, match=message):
        await notes.add(note)
    assert await _snapshot(notes) == before


# ---------------------------------------------------------------------- search and filters
def test_build_filter() -> None:
    assert build_filter(None, None) is None
    assert build_filter("", "  ") is None
    assert build_filter("ICU", "") == {"ward": "ICU"}
    assert build_filter(None, '{"year": {"$gte": 2020}}') == {"year": {"$gte": 2020}}
    assert build_filter("ICU", '{"year": 2020}') == {"$and": [{"ward": "ICU"}, {"year": 2020}]}
    assert build_filter("ICU", "{}") == {"ward": "ICU"}
    assert build_filter(None, {"year": 2020}) == {"year": 2020}  # the demo passes dicts directly


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ("{year: 2021", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"ICU"', "must be a JSON object"),
        ("[" * 100_000, "not valid JSON"),  # deep nesting: RecursionError inside json, said as a filter error
    ],
)
def test_build_filter_rejects_bad_json(flt: str, message: str) -> None:
    with pytest.raises(InvalidFilter, match=message):
        build_filter(None, flt)


async def test_search_each_mode_with_ward_and_json_filters(notes: NotesService) -> None:
    icu = (await notes.add(ICU_NOTE))["id"]
    ed = (await notes.add(ED_NOTE))["id"]
    old_icu = (await notes.add({"text": "Septic shock resolved.", "metadata": {"ward": "ICU", "year": "2018"}}))["id"]

    keyword = await notes.search({"text": "septic shock", "mode": "keyword"})
    assert keyword["mode"] == "keyword" and keyword["items"] == 3 and keyword["note_count"] == 3
    assert {h["id"] for h in keyword["results"]} == {icu, old_icu}
    assert all(h["vector_score"] is None and h["keyword_score"] > 0 for h in keyword["results"])

    semantic = await notes.search({"text": ED_NOTE["text"], "mode": "semantic", "top_k": "2"})
    assert semantic["results"][0]["id"] == ed and len(semantic["results"]) == 2
    assert semantic["results"][0]["vector_score"] == pytest.approx(1.0, abs=1e-5)

    hybrid = await notes.search({"text": "septic shock lactate"})  # mode defaults to hybrid
    assert hybrid["mode"] == "hybrid" and hybrid["results"][0]["id"] == icu
    first = hybrid["results"][0]
    assert first["passage"] == ICU_NOTE["text"] and first["metadata"] == {"ward": "ICU", "year": 2024}
    assert first["span"] == [0, len(ICU_NOTE["text"])] and first["chunks"] == 1

    by_ward = await notes.search({"text": "septic shock fracture", "mode": "keyword", "ward": "ED"})
    assert [h["id"] for h in by_ward["results"]] == [ed]
    by_json = await notes.search({"text": "septic shock", "mode": "keyword", "filter": '{"year": {"$lt": 2020}}'})
    assert [h["id"] for h in by_json["results"]] == [old_icu]
    both = await notes.search({"text": "septic", "mode": "semantic", "ward": "ICU", "filter": '{"year": 2024}'})
    assert [h["id"] for h in both["results"]] == [icu]
    none = await notes.search({"text": "septic", "mode": "keyword", "ward": "ED", "filter": '{"year": 2024}'})
    assert none["results"] == []


async def test_top_k_is_clamped(notes: NotesService) -> None:
    await notes.load_demo()
    assert len((await notes.search({"text": "pain", "mode": "semantic", "top_k": 500}))["results"]) == 40
    assert len((await notes.search({"text": "pain", "mode": "semantic", "top_k": 0}))["results"]) == 1
    assert len((await notes.search({"text": "pain", "mode": "semantic", "top_k": 10**5000}))["results"]) == 40
    assert len((await notes.search({"text": "pain", "mode": "semantic", "top_k": " 3 "}))["results"]) == 3
    assert len((await notes.search({"text": "pain", "mode": "semantic"}))["results"]) == 10


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        ({"text": ""}, InvalidInput, "type something"),
        ({"text": "  "}, InvalidInput, "type something"),
        ({"text": "x", "mode": "vector"}, InvalidInput, "unknown search mode"),
        ({"text": "x", "mode": ["hybrid"]}, InvalidInput, "unknown search mode"),
        ({"text": "x", "top_k": "ten"}, InvalidInput, "top_k must be a whole number"),
        ({"text": "x", "top_k": 2.5}, InvalidInput, "top_k must be a whole number"),
        ({"text": "x", "filter": "{year: 2021"}, InvalidFilter, "not valid JSON"),
        ({"text": "x", "filter": '{"year": {"$near": 1}}'}, InvalidFilter, "near"),
        ({"text": "x", "ward": ["ICU"]}, InvalidInput, "ward must be a string"),
        ("x", InvalidInput, "must be an object"),
    ],
)
async def test_bad_searches_are_clear_errors(notes: NotesService, query: Any, error: type, message: str) -> None:
    await notes.add(ICU_NOTE)
    before = await _snapshot(notes)
    with pytest.raises(error, match=message):
        await notes.search(query)
    assert await _snapshot(notes) == before


# ---------------------------------------------------------------------- delete, newest, wards, stats, demo
async def test_delete_removes_the_note_and_its_ward(notes: NotesService) -> None:
    icu = (await notes.add(ICU_NOTE))["id"]
    await notes.add(ED_NOTE)
    assert await notes.wards() == ["ED", "ICU"]
    assert await notes.delete(icu) == {"deleted": True, "note_count": 1, "items": 1}
    assert await notes.delete(icu) == {"deleted": False, "note_count": 1, "items": 1}
    assert await notes.get(icu) is None
    assert await notes.wards() == ["ED"]  # the last ICU note went: so did the ward
    assert (await notes.search({"text": "septic shock", "mode": "keyword"}))["results"] == []
    for bad in ("", None, 5):
        with pytest.raises(InvalidInput):
            await notes.delete(bad)
    assert await notes.index.count() == 1


async def test_overview_lists_newest_first_with_sorted_wards(notes: NotesService) -> None:
    ids = []
    for i, ward in enumerate(["surgery", "ICU", "ED", "", "Cardiology", "ICU"]):
        ids.append((await notes.add({"text": f"note {i}", "metadata": {"ward": ward}}))["id"])
    out = await notes.overview(3)
    assert [n["id"] for n in out["notes"]] == ids[::-1][:3]
    assert out["notes"][0] == {"id": ids[-1], "text": "note 5", "metadata": {"ward": "ICU"}, "chunks": 1}
    assert out["items"] == 6 and out["note_count"] == 6
    assert out["wards"] == ["Cardiology", "ED", "ICU", "surgery"]  # case-insensitive, no empty ward
    assert [n["id"] for n in await notes.newest()] == ids[::-1]
    assert [n["id"] for n in await notes.newest("200")] == ids[::-1]
    with pytest.raises(InvalidInput, match="limit"):
        await notes.newest("lots")


async def test_wards_come_from_the_column_not_from_listing_items(
    notes: NotesService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ward list must not copy every note and vector (the page asks after every add)."""
    await notes.load_demo()

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("wards() listed the items")

    monkeypatch.setattr(notes.index, "list", refuse)
    monkeypatch.setattr(notes.index, "iter_items", refuse)
    monkeypatch.setattr(notes.index, "get", refuse)
    wards = await notes.wards()
    assert wards == sorted({n["metadata"]["ward"] for n in sample_notes()}, key=str.lower)
    # An index with more than 5,000 notes still gets its ward list (the old worker gave up there).
    await notes.index.insert_many(
        [{"text": f"bulk note {i}", "metadata": {"ward": f"Bulk{i % 3}"}} for i in range(5_001)]
    )
    assert {"Bulk0", "Bulk1", "Bulk2"} <= set(await notes.wards())


async def test_stats(notes: NotesService) -> None:
    await notes.add(ICU_NOTE)
    stats = await notes.stats()
    assert stats["items"] == 1 and stats["note_count"] == 1 and stats["read_only"] is False
    assert stats["store"] == "MemoryStore" and stats["kernel"].endswith("Kernel")
    assert stats["embedder"] == EMBEDDER.identity and stats["threads"] is None
    assert {"database", "persisted", "usage_bytes", "quota_bytes"} <= set(stats)


async def test_load_demo_reports_progress_and_is_idempotent(notes: NotesService) -> None:
    seen: list[tuple[int, int]] = []
    out = await notes.load_demo(progress=lambda done, total: seen.append((done, total)))
    assert out["loaded"] == 40 and out["items"] == 40 and out["note_count"] == 40
    assert seen[0] == (0, 40) and seen[-1] == (40, 40)
    assert {"ED", "ICU", "Cardiology"} <= set(await notes.wards())
    assert (await notes.search({"text": "pulmonary embolism", "mode": "keyword"}))["results"][0]["id"] == "note-001"
    embedded = seen[-1]
    seen.clear()
    assert (await notes.load_demo(progress=lambda d, t: seen.append((d, t))))["items"] == 40  # one copy of each
    assert seen == [(0, 40)] and embedded == (40, 40)  # and nothing was embedded again


async def test_a_closed_service_says_so(notes: NotesService) -> None:
    await notes.close()
    with pytest.raises(IndexClosed):
        await notes.search({"text": "x"})
    with pytest.raises(ClinvecError):
        await notes.add(ICU_NOTE)


# ---------------------------------------------------------------------- long notes are documents (issue 9)
LONG_WORDS = " ".join(f"routine{i % 97} observation" for i in range(1500))
LONG_TEXT = f"Admitted for review.\n\n{LONG_WORDS}\r\n\r\n{FACT}\n"  # CRLF: opened byte for byte


async def test_a_long_note_is_chunked_and_its_last_sentence_is_found_in_every_mode() -> None:
    """A 5,000-word note whose diagnosis is only in its last sentence, among the 40 demo notes, with the app's
    own fallback embedder: each mode gives that note once, first, with its end as the passage and the matched
    terms (keyword, hybrid) or the chunk itself (semantic) marked. tests/test_long_notes.py does it with MiniLM."""
    text = long_note()
    notes = await NotesService.open(f"memory://{uuid.uuid4().hex}", fallback_embedder())
    try:
        await notes.load_demo()
        seen: list[tuple[int, int]] = []
        out = await notes.add(
            {"id": "long", "text": text, "metadata": {"ward": "Endocrine"}}, progress=lambda d, t: seen.append((d, t))
        )
        assert out["chunks"] > 40 and out["note_count"] == 41 and out["items"] == 40 + out["chunks"]
        assert seen[-1] == (out["chunks"], out["chunks"])  # progress counts the chunks being embedded
        for mode, query in (("keyword", KEYWORD_QUERY), ("hybrid", HYBRID_QUERY), ("semantic", LEXICAL_SEMANTIC_QUERY)):
            results = (await notes.search({"text": query, "mode": mode}))["results"]
            assert results[0]["id"] == "long", mode
            assert [r["id"] for r in results].count("long") == 1, mode  # one result per note
            top = results[0]
            start, end = top["span"]
            assert text[start:end] == top["passage"] and FACT in top["passage"] and end == len(text) - 1
            assert top["chunk"] == top["chunks"] - 1 == out["chunks"] - 1 and top["metadata"] == {"ward": "Endocrine"}
            marked = [top["passage"][a:b] for a, b in top["highlights"]]
            if mode == "semantic":
                assert marked == [top["passage"]]  # the best chunk itself
            else:
                assert "pheochromocytoma" in marked and all(m.lower() in query for m in marked), marked
        # filters keep working on a document's metadata
        assert (await notes.search({"text": KEYWORD_QUERY, "mode": "keyword", "ward": "ICU"}))["results"] == []
        only = await notes.search({"text": KEYWORD_QUERY, "ward": "Endocrine"})
        assert [r["id"] for r in only["results"]] == ["long"]
        assert (await notes.get("long"))["text"] == text  # byte-exact
        newest = (await notes.newest(1))[0]
        assert newest["id"] == "long" and newest["chunks"] == out["chunks"] and text.startswith(newest["text"])
        assert await notes.delete("long") == {"deleted": True, "note_count": 40, "items": 40}
    finally:
        await notes.close()


async def test_top_k_counts_notes_not_chunks(notes: NotesService) -> None:
    """A long note's many matching chunks never crowd the other notes out of the answer."""
    await notes.add({"id": "long", "text": LONG_TEXT})
    for i in range(12):
        await notes.add({"id": f"short{i}", "text": f"routine{i} observation on the ward, short note {i}."})
    results = (await notes.search({"text": "routine observation", "mode": "keyword", "top_k": 10}))["results"]
    ids = [r["id"] for r in results]
    assert len(ids) == 10 and len(set(ids)) == 10 and "long" in ids


async def test_adding_with_an_id_replaces_that_note_in_one_commit(notes: NotesService) -> None:
    first = await notes.add({"id": "n1", "text": LONG_TEXT, "metadata": {"ward": "ICU"}})
    again = await notes.add({"id": "n1", "text": LONG_TEXT, "metadata": {"ward": "ICU"}})
    assert first["changed"] is True and again["changed"] is False and again["items"] == first["items"]
    shorter = await notes.add({"id": "n1", "text": "Now a short note.", "metadata": {"ward": "ED"}})
    assert shorter == {**shorter, "chunks": 1, "note_count": 1, "items": 1, "changed": True}
    assert await notes.get("n1") == {"id": "n1", "text": "Now a short note.", "metadata": {"ward": "ED"}, "chunks": 1}
    assert await notes.wards() == ["ED"]


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ({"id": "x" * 600, "text": "ok"}, "id must be"),
        ({"id": 5, "text": "ok"}, "id must be"),
        ({"id": "bad\ud800", "text": "ok"}, "surrogate"),
        ({"text": "text with a lone \udc00 surrogate"}, "surrogate"),
    ],
)
async def test_bad_note_ids_and_texts_change_nothing(notes: NotesService, note: Any, message: str) -> None:
    await notes.add(ICU_NOTE)
    before = await _snapshot(notes)
    with pytest.raises(InvalidInput, match=message):
        await notes.add(note)
    assert await _snapshot(notes) == before


async def test_get_refuses_junk_ids_and_says_none_for_missing(notes: NotesService) -> None:
    assert await notes.get("nope") is None
    for bad in ("", None, 7):
        with pytest.raises(InvalidInput):
            await notes.get(bad)


async def test_notes_stored_as_plain_items_by_the_old_app_are_read_as_one_chunk_documents(tmp_path: Any) -> None:
    """The migration: an index the old app wrote (plain items, ward/year columns only) opens with every note
    counted, searchable, openable and deletable; saving one again turns it into a document in one commit."""
    location = str(tmp_path / "old-notes")
    old = await LocalIndex.create(location, indexed=list(INDEXED), embedder=EMBEDDER)
    ids = [
        await old.insert(None, metadata={"ward": "ICU", "year": 2024}, text=ICU_NOTE["text"]),
        await old.insert(None, metadata={"ward": "ED", "year": 2019}, text=ED_NOTE["text"]),
    ]
    await old.close()

    notes = await NotesService.open(location, EMBEDDER)
    try:
        assert (await notes.info())["note_count"] == 2 and notes.index.indexed == list(INDEXED)
        hit = (await notes.search({"text": "lactate", "mode": "keyword"}))["results"][0]
        assert hit["id"] == ids[0] and hit["passage"] == ICU_NOTE["text"] and hit["span"] == [0, len(hit["passage"])]
        assert [hit["passage"][a:b] for a, b in hit["highlights"]] == ["lactate"]
        assert (await notes.get(ids[1]))["text"] == ED_NOTE["text"]
        assert [n["id"] for n in await notes.newest()] == ids[::-1]
        added = await notes.add({"text": "A new note after the upgrade."})
        assert added["note_count"] == 3
        # saving an old note again replaces the plain item by the document: still one note with that id
        replaced = await notes.add({"id": ids[0], "text": LONG_TEXT, "metadata": {"ward": "ICU"}})
        assert replaced["note_count"] == 3 and replaced["chunks"] > 1
        assert (await notes.get(ids[0]))["text"] == LONG_TEXT and await notes.index.get(ids[0]) is None
        assert (await notes.delete(ids[1]))["deleted"] is True
        assert [n["id"] for n in await notes.newest()] == [ids[0], added["id"]]
    finally:
        await notes.close()
    reopened = await NotesService.open(location, EMBEDDER)
    try:
        assert (await reopened.info())["note_count"] == 2
        assert (await reopened.get(ids[0]))["text"] == LONG_TEXT
    finally:
        await reopened.close()
