"""What a search result shows: a document's best passage and the character spans to highlight in it.

Why here and not in the page: the spans must follow the keyword leg's own tokenizer rule
(``pyapp.keyword.tokenize``: lowercase letter/digit runs, NFKC + case-folding for non-ASCII), so a highlighted
word is exactly a word BM25 matched. The page (``web/app/app.mjs``) and ``python -m pyapp docs query`` both get
the same plain dict and only render it: the page as text nodes and ``<mark>`` elements, never as HTML.
"""

from __future__ import annotations

import re
from typing import Any

from .documents import DocumentResult
from .keyword import tokenize

# A letter/digit run as ``tokenize`` sees one, plus the combining marks that NFKC folds into it (so "Cafe" +
# U+0301 is one run, as it is one token "café" after normalisation).
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_RUN = re.compile(rf"[^\W_](?:[^\W_]|[{_MARKS}])*")


def term_spans(text: str, query: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of ``text`` whose tokens include a token of ``query``, in order.

    Each letter/digit run of the original text is tokenized on its own with the BM25 rule and kept when one
    of its tokens is a query token; offsets therefore point into the text as stored (CRLF, NFD accents and
    full-width forms untouched), never into its normalised form."""
    terms = set(tokenize(query))
    if not terms:
        return []
    return [(m.start(), m.end()) for m in _RUN.finditer(text) if not terms.isdisjoint(tokenize(m.group()))]


def passage_view(result: DocumentResult, query: str, mode: str) -> dict[str, Any]:
    """One grouped hit as shown: the best chunk, where it sits in the note, and the spans to mark.

    ``mode`` is the index mode (``vector``, ``keyword``, ``hybrid``). Keyword and hybrid mark the query's terms
    found in the passage; semantic search, or a hybrid hit whose best chunk came by meaning alone, marks the
    chunk itself (it is what matched). ``highlights`` are relative to ``passage``; ``span`` is the passage's
    place in the whole note."""
    best = result.passages[0]
    highlights = term_spans(best.text, query) if mode != "vector" else []
    if not highlights and best.text:
        highlights = [(0, len(best.text))]
    return {
        "id": result.uri,
        "score": result.score,
        "vector_score": best.vector_score,
        "keyword_score": best.keyword_score,
        "metadata": result.metadata,
        "passage": best.text,
        "span": [best.start, best.end],
        "highlights": [list(span) for span in highlights],
        "chunk": best.chunk,
        "chunks": result.chunks,
    }
