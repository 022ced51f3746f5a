"""Highlight spans follow BM25's tokenizer rule and point into the text as stored (pyapp.highlight)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp.documents import DocumentResult, Passage
from pyapp.highlight import passage_view, term_spans
from pyapp.keyword import tokenize


def marked(text: str, query: str) -> list[str]:
    return [text[a:b] for a, b in term_spans(text, query)]


def test_terms_are_matched_as_bm25_tokens_not_substrings() -> None:
    text = "Pt c/o SOB; s/p CABG x3. HbA1c 7.2%. No chest pain; chest-wall tenderness."
    assert marked(text, "chest pain") == ["chest", "pain", "chest"]
    assert marked(text, "CABG hba1c") == ["CABG", "HbA1c"]
    assert marked(text, "7.2") == ["7", "2"]  # "7.2" is the tokens 7 and 2, as BM25 indexes it
    assert marked(text, "ches") == []  # whole tokens only
    assert marked(text, "x3 s") == ["s", "x3"]
    assert marked(text, "... ;") == [] and marked(text, "") == []


def test_offsets_point_into_the_original_text() -> None:
    text = "Line one\r\nCafe\u0301 au lait (NFD), Caf\u00e9 (NFC), ＣＡＢＧ full-width, Mu\u0308ller.\r\n"
    assert marked(text, "café") == ["Cafe\u0301", "Caf\u00e9"]
    assert marked(text, "cabg") == ["ＣＡＢＧ"]
    assert marked(text, "MÜLLER") == ["Mu\u0308ller"]
    assert marked(text, "line") == ["Line"]


WORDS = st.sampled_from(["chest", "Pain", "CABG", "x3", "café", "Cafe\u0301", "７", "HbA1c", "no", "s", "ＡＢ", "e"])
SEPARATORS = st.sampled_from([" ", "\r\n", "/", ", ", "-", "_", ".", "\u00a0", "  "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=12), st.lists(WORDS, min_size=1, max_size=3))
def test_every_span_is_a_query_term_and_every_query_term_is_marked(parts: list, query_words: list) -> None:
    text = "".join(w + s for w, s in parts)
    query = " ".join(query_words)
    terms = set(tokenize(query))
    spans = term_spans(text, query)
    assert spans == sorted(spans) and all(a < b for a, b in spans)
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))  # disjoint
    assert all(terms & set(tokenize(text[a:b])) for a, b in spans)  # each mark is a matched token
    # and no matched token is left unmarked: masking the marks leaves no query term in the text
    masked = list(text)
    for a, b in spans:
        masked[a:b] = " " * (b - a)
    assert not terms & set(tokenize("".join(masked)))


def _result(text: str, start: int = 100) -> DocumentResult:
    passage = Passage(text, start, start + len(text), 0.5, 3, vector_score=0.4, keyword_score=2.0)
    return DocumentResult("n1", 0.5, {"ward": "ICU"}, [passage], chunks=5)


def test_passage_view_marks_terms_or_the_whole_chunk() -> None:
    text = "Final diagnosis: pheochromocytoma of the left adrenal gland."
    keyword = passage_view(_result(text), "pheochromocytoma", "keyword")
    assert keyword == {
        "id": "n1",
        "score": 0.5,
        "vector_score": 0.4,
        "keyword_score": 2.0,
        "metadata": {"ward": "ICU"},
        "passage": text,
        "span": [100, 100 + len(text)],
        "highlights": [[17, 33]],
        "chunk": 3,
        "chunks": 5,
    }
    assert passage_view(_result(text), "pheochromocytoma", "vector")["highlights"] == [[0, len(text)]]
    # hybrid: the terms when the chunk has them, else the chunk itself (it matched by meaning)
    assert passage_view(_result(text), "adrenal tumour", "hybrid")["highlights"] == [[46, 53]]
    assert passage_view(_result(text), "tumour", "hybrid")["highlights"] == [[0, len(text)]]
