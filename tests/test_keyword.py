"""KeywordIndex: tokenizer, exact incremental statistics, filters, and agreement with a from-scratch BM25."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp.errors import ClinvecError, DuplicateId, InvalidInput
from pyapp.keyword import ENGLISH_STOPWORDS, KeywordIndex, tokenize

# --- tokenize -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("HbA1c 7.2%", ["hba1c", "7", "2"]),
        ("s/p CABG x3", ["s", "p", "cabg", "x3"]),
        ("BP 120/80, HR 72 bpm.", ["bp", "120", "80", "hr", "72", "bpm"]),
        ("post_op day-2", ["post", "op", "day", "2"]),
        ("", []),
        ("  ...!!  ", []),
        ("Ärztin: Straße", ["ärztin", "strasse"]),  # case-folded
        ("ＣＯＶＩＤ－１９", ["covid", "19"]),  # full-width forms, NFKC
        ("cafe\u0301 café", ["café", "café"]),  # decomposed accent composes, does not split the word
        ("Пневмония лёгких", ["пневмония", "лёгких"]),
        ("m² 5µg", ["m2", "5μg"]),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(alphabet=st.characters(max_codepoint=127)), st.text()))
def test_tokenize_fast_ascii_path_matches_the_unicode_definition(text: str) -> None:
    assert tokenize(text) == re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text).casefold())


# --- maintenance and stats ------------------------------------------------------------------------


def test_add_remove_replace_keep_stats_exact() -> None:
    idx = KeywordIndex()
    assert idx.stats() == {"docs": 0, "terms": 0, "avgdl": 0.0}
    idx.add("a", "chest pain chest")  # 3 tokens, terms: chest, pain
    idx.add("b", "pain in the abdomen")  # 4 tokens, terms: pain, in, the, abdomen
    assert len(idx) == 2 and "a" in idx and "b" in idx and "c" not in idx
    assert idx.stats() == {"docs": 2, "terms": 5, "avgdl": 3.5}

    assert idx.remove("a") is True
    assert idx.remove("a") is False
    assert idx.stats() == {"docs": 1, "terms": 4, "avgdl": 4.0}  # "chest" gone with its last document
    assert idx.search("chest") == []

    idx.replace("b", "fever")
    assert idx.stats() == {"docs": 1, "terms": 1, "avgdl": 1.0}
    assert idx.search("pain") == [] and [k for k, _ in idx.search("fever")] == ["b"]

    idx.replace("c", "fever and cough")  # replace on a missing key inserts
    assert idx.stats() == {"docs": 2, "terms": 3, "avgdl": 2.0}
    idx.replace("c", None)  # no text: removed
    assert "c" not in idx and idx.stats() == {"docs": 1, "terms": 1, "avgdl": 1.0}
    assert idx.remove("b") is True
    assert idx.stats() == {"docs": 0, "terms": 0, "avgdl": 0.0} and idx.search("fever") == []


def test_texts_without_tokens_are_not_indexed() -> None:
    idx = KeywordIndex()
    idx.add("none", None)
    idx.add("empty", "")
    idx.add("punct", " -- / %")
    assert len(idx) == 0 and "none" not in idx
    idx.add("none", "now with text")  # was never indexed, so this is not a duplicate
    assert "none" in idx


def test_add_duplicate_raises_and_changes_nothing() -> None:
    idx = KeywordIndex()
    idx.add("a", "chest pain")
    before = (idx.stats(), idx.search("chest pain"))
    with pytest.raises(DuplicateId):
        idx.add("a", "something else entirely")
    assert issubclass(DuplicateId, ClinvecError)
    assert (idx.stats(), idx.search("chest pain")) == before
    assert idx.search("entirely") == []


def test_load_bulk_and_all_or_nothing() -> None:
    idx = KeywordIndex()
    assert idx.load([("a", "chest pain"), ("b", None), ("c", "pain")]) == 2
    assert len(idx) == 2 and idx.stats()["avgdl"] == 1.5
    with pytest.raises(DuplicateId):
        idx.load([("d", "cough"), ("a", "again")])  # "a" already indexed
    with pytest.raises(DuplicateId):
        idx.load([("e", "cough"), ("e", "twice")])  # repeated within the batch
    assert len(idx) == 2 and "d" not in idx and "e" not in idx and idx.search("cough") == []


def test_load_matches_incremental_adds() -> None:
    pairs = [(f"k{i}", f"word{i % 7} shared term{i % 3} extra{i}") for i in range(40)]
    bulk, inc = KeywordIndex(), KeywordIndex()
    bulk.load(pairs)
    for key, text in pairs:
        inc.add(key, text)
    assert bulk.stats() == inc.stats()
    for q in ["shared", "word3 term1", "extra5 word5", "nothing"]:
        assert bulk.search(q) == inc.search(q)


# --- scoring --------------------------------------------------------------------------------------


def _bm25(tf: int, df: int, n: int, dl: int, avgdl: float, k1: float = 0.9, b: float = 0.4) -> float:
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def test_scores_match_hand_computed_bm25() -> None:
    idx = KeywordIndex()
    idx.add("a", "chest pain radiating to left arm")  # 6 tokens
    idx.add("b", "pain pain pain")  # 3 tokens
    idx.add("c", "shortness of breath")  # 3 tokens
    n, avgdl = 3, 4.0
    got = dict(idx.search("chest pain"))
    assert got.keys() == {"a", "b"}
    assert got["a"] == pytest.approx(_bm25(1, 1, n, 6, avgdl) + _bm25(1, 2, n, 6, avgdl), abs=1e-12)
    assert got["b"] == pytest.approx(_bm25(3, 2, n, 3, avgdl), abs=1e-12)
    # a different k1/b changes the numbers accordingly
    idx2 = KeywordIndex(k1=1.2, b=0.75)
    idx2.load([("a", "chest pain radiating to left arm"), ("b", "pain pain pain"), ("c", "shortness of breath")])
    assert dict(idx2.search("pain"))["b"] == pytest.approx(_bm25(3, 2, n, 3, avgdl, 1.2, 0.75), abs=1e-12)


def test_term_in_every_document_still_scores_positive() -> None:
    idx = KeywordIndex()
    idx.load([(f"k{i}", "patient stable" if i else "patient") for i in range(5)])
    hits = idx.search("patient")
    assert len(hits) == 5 and all(s > 0 for _, s in hits)
    assert hits[0][0] == "k0"  # shortest document wins on length normalisation


def test_repeated_query_term_counts_each_time() -> None:
    idx = KeywordIndex()
    idx.load([("a", "pain in chest"), ("b", "fever")])
    assert dict(idx.search("pain pain"))["a"] == pytest.approx(2 * dict(idx.search("pain"))["a"], abs=1e-12)


def test_ties_follow_first_indexed_order_and_replace_keeps_place() -> None:
    idx = KeywordIndex()
    for key in ["z", "m", "a", "q"]:
        idx.add(key, "sepsis")
    idx.add("x", "unrelated")
    assert [k for k, _ in idx.search("sepsis")] == ["z", "m", "a", "q"]
    idx.replace("z", "sepsis")  # still indexed: keeps its place
    assert [k for k, _ in idx.search("sepsis")] == ["z", "m", "a", "q"]
    idx.remove("m")
    idx.add("m", "sepsis")  # removed then added: it is new now
    assert [k for k, _ in idx.search("sepsis")] == ["z", "a", "q", "m"]


def test_top_k_is_prefix_of_full_ranking() -> None:
    idx = KeywordIndex()
    idx.load([(f"k{i}", "pain " * (1 + i % 4) + f"filler{i}") for i in range(30)])
    full = idx.search("pain filler3")
    assert len(full) == 30
    for k in [1, 2, 5, 29, 30, 100]:
        assert idx.search("pain filler3", top_k=k) == full[:k]
    assert idx.search("pain", top_k=0) == []
    with pytest.raises(InvalidInput):
        idx.search("pain", top_k=-1)


def test_allowed_filters_before_ranking_with_corpus_wide_stats() -> None:
    idx = KeywordIndex()
    idx.load([(f"k{i}", "pain" if i < 5 else f"pain and more words here {i}") for i in range(10)])
    full = dict(idx.search("pain"))
    odd = {f"k{i}" for i in range(10) if i % 2}
    hits = idx.search("pain", top_k=3, allowed=odd.__contains__)
    # the best allowed keys fill top_k even though better disallowed keys exist
    assert [k for k, _ in hits] == ["k1", "k3", "k5"]
    # scores are the unfiltered ones: N and avgdl do not shrink to the allowed subset
    assert all(s == full[k] for k, s in hits)
    assert idx.search("pain", allowed=lambda key: False) == []


def test_unknown_terms_and_empty_queries() -> None:
    idx = KeywordIndex()
    assert idx.search("anything") == []
    idx.add("a", "chest pain")
    assert idx.search("") == [] and idx.search("?!") == [] and idx.search("headache") == []
    assert [k for k, _ in idx.search("headache CHEST")] == ["a"]


def test_stopwords_are_off_by_default_and_optional() -> None:
    plain = KeywordIndex()
    plain.load([("a", "the patient"), ("b", "no pain")])
    assert [k for k, _ in plain.search("the")] == ["a"]
    stop = KeywordIndex(stopwords=ENGLISH_STOPWORDS)
    stop.load([("a", "the patient"), ("b", "no pain"), ("c", "of the")])
    assert stop.search("the") == [] and "c" not in stop
    assert stop.stats()["avgdl"] == 1.5
    assert [k for k, _ in stop.search("no")] == ["b"]  # negation is kept


def test_invalid_parameters() -> None:
    with pytest.raises(InvalidInput):
        KeywordIndex(k1=-1)
    with pytest.raises(InvalidInput):
        KeywordIndex(b=1.5)


# --- property: incremental index == BM25 recomputed from scratch ---------------------------------

K1, B = 0.9, 0.4
_KEYS = [f"d{i}" for i in range(8)]
_VOCAB = ["pain", "Chest", "fever", "cough", "HbA1c", "7", "s/p", "CABG", "x3", "no", "sepsis", "the"]


def _ref_tokens(text: str | None) -> list[str]:
    """Independent ASCII tokenizer (the vocabulary above is ASCII)."""
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def _ref_search(docs: dict[str, str], query: str) -> dict[str, float]:
    """BM25 recomputed from the raw texts, summing once per query token occurrence."""
    tokenized = {k: _ref_tokens(t) for k, t in docs.items()}
    tokenized = {k: v for k, v in tokenized.items() if v}
    n = len(tokenized)
    if n == 0:
        return {}
    avgdl = sum(len(v) for v in tokenized.values()) / n
    df = Counter(t for v in tokenized.values() for t in set(v))
    out: dict[str, float] = {}
    for key, toks in tokenized.items():
        tf = Counter(toks)
        score = 0.0
        for q in _ref_tokens(query):
            if tf[q]:
                idf = math.log(1 + (n - df[q] + 0.5) / (df[q] + 0.5))
                score += idf * tf[q] * (K1 + 1) / (tf[q] + K1 * (1 - B + B * len(toks) / avgdl))
        if score > 0:
            out[key] = score
    return out


_text = st.one_of(
    st.none(),
    st.just(""),
    st.lists(st.sampled_from(_VOCAB), min_size=0, max_size=6).map(" ".join),
    st.lists(st.sampled_from(_VOCAB), min_size=1, max_size=4).map(lambda ws: ", ".join(ws) + "."),
)
_op = st.tuples(st.sampled_from(["add", "remove", "replace"]), st.sampled_from(_KEYS), _text)
_query = st.tuples(
    st.lists(st.sampled_from(_VOCAB + ["absent"]), min_size=1, max_size=4).map(" ".join),
    st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
    st.one_of(st.none(), st.frozensets(st.sampled_from(_KEYS))),
)


def _check(idx: KeywordIndex, docs: dict[str, str], order: dict[str, int], query: tuple) -> None:
    text, top_k, allowed = query
    ref = _ref_search(docs, text)
    if allowed is not None:
        ref = {k: s for k, s in ref.items() if k in allowed}
    got = idx.search(text, top_k=top_k, allowed=None if allowed is None else allowed.__contains__)

    assert len(got) == (len(ref) if top_k is None else min(top_k, len(ref)))
    assert len({k for k, _ in got}) == len(got)
    for key, score in got:
        assert key in ref and abs(score - ref[key]) <= 1e-9 and score > 0
    # nothing better than the last returned hit was left out
    if got:
        floor = min(ref[k] for k, _ in got)
        assert all(s <= floor + 1e-9 for k, s in ref.items() if k not in dict(got))
    # best first; exact ties by first-indexed order; the reference agrees wherever it separates scores
    for (ka, sa), (kb, sb) in pairwise(got):
        assert sa > sb or (sa == sb and order[ka] < order[kb])
        assert ref[ka] >= ref[kb] - 1e-9
    # documents indistinguishable for this query (same length, same counts of every query term) tie exactly
    qt = set(_ref_tokens(text))
    sig = {k: (len(_ref_tokens(docs[k])), tuple(_ref_tokens(docs[k]).count(t) for t in sorted(qt))) for k, _ in got}
    for i, (ka, sa) in enumerate(got):
        for kb, sb in got[i + 1 :]:
            if sig[ka] == sig[kb]:
                assert sa == sb and order[ka] < order[kb]


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(_op, _query), min_size=1, max_size=25))
def test_incremental_matches_from_scratch_bm25(steps: list) -> None:
    idx = KeywordIndex(k1=K1, b=B)
    docs: dict[str, str] = {}  # key -> text, indexed documents only
    order: dict[str, int] = {}
    seq = 0
    for (op, key, text), query in steps:
        has_tokens = bool(_ref_tokens(text))
        if op == "add":
            if key in docs:
                with pytest.raises(DuplicateId):
                    idx.add(key, text)
            else:
                idx.add(key, text)
                if has_tokens:
                    docs[key], order[key], seq = text, seq, seq + 1
        elif op == "remove":
            assert idx.remove(key) is (key in docs)
            docs.pop(key, None)
            order.pop(key, None)
        else:
            idx.replace(key, text)
            if has_tokens:
                if key not in order:
                    order[key], seq = seq, seq + 1
                docs[key] = text
            else:
                docs.pop(key, None)
                order.pop(key, None)

        assert len(idx) == len(docs) and all(k in idx for k in docs)
        lens = [len(_ref_tokens(t)) for t in docs.values()]
        stats = idx.stats()
        assert stats["docs"] == len(docs)
        assert stats["terms"] == len({t for d in docs.values() for t in _ref_tokens(d)})
        assert stats["avgdl"] == (sum(lens) / len(lens) if lens else 0.0)
        _check(idx, docs, order, query)
