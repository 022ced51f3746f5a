"""Incremental Okapi BM25 over item texts: the keyword leg of hybrid search.

Pure Python (no numpy) so it runs unchanged in Pyodide. Postings are kept up to date on every
add/remove/replace, so a query only walks the postings of its own terms; vectra instead rebuilds its
whole BM25 index on every query, so its keyword queries grow with the corpus, not with the query.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypedDict

from .errors import DuplicateId, InvalidInput

_TOKEN = re.compile(r"[^\W_]+")
# For ASCII text, [^\W_]+ is exactly [A-Za-z0-9]+: mapping every other ASCII character to a space and splitting
# gives the same tokens in a fraction of the regex's time in Pyodide, which matters when an index is loaded.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalnum()})

# Offered, never applied by default (see ``KeywordIndex``). Deliberately excludes "no", "not", "without",
# "a" and other words that carry clinical meaning ("no chest pain", "hepatitis a", "vitamin a").
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    "an and are as at be been by for from had has have he her his in is it its of on or she that the their "
    "then there these they this to was were which who will with".split()
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase Unicode letter/digit runs.

    Punctuation, whitespace and ``_`` separate tokens, so "HbA1c 7.2%" gives ["hba1c", "7", "2"] and
    "s/p CABG x3" gives ["s", "p", "cabg", "x3"]. Non-ASCII text is NFKC-normalised and case-folded first
    so that composed/decomposed accents, ligatures and full-width forms match their plain spellings.
    """
    if text.isascii():
        return text.lower().translate(_ASCII_SEPARATORS).split()
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


class KeywordStats(TypedDict):
    docs: int
    terms: int
    avgdl: float


class KeywordIndex:
    """Okapi BM25 over ``key -> text``, maintained incrementally.

    Score of a document d for query q (tf = term count in d, dl = d's token count, qtf = term count in q)::

        sum over distinct terms t of q:  qtf * idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
        idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

    This idf is Lucene's non-negative form (often called the BM25+ idf; no BM25+ tf lower bound is added):
    unlike Robertson's ln((N - df + 0.5) / (df + 0.5)) it never goes below zero, so a very common term
    still adds a little instead of pushing documents down, and every document that holds a query term
    scores > 0. N (documents indexed), df and avgdl are corpus-wide statistics over every indexed document,
    also when ``search`` is restricted with ``allowed``: a filter selects candidates, it does not change how
    informative a term is. Document lengths are exact (Lucene quantises them), so scores are reproducible.

    Defaults k1=0.9, b=0.4 are Anserini's, tuned on short documents like clinical snippets and codes.

    No stopwords are removed by default: idf already makes "the" or "of" nearly worthless, and the usual
    lists drop words that matter in clinical text (negations, "a" in "hepatitis a"). Pass
    ``stopwords=ENGLISH_STOPWORDS`` (or your own set) to trade that for smaller postings and faster queries
    that contain very common words; stopwords are dropped from documents and queries alike.

    A text that is None, empty or has no tokens is not indexed (it does not count in N), as in Lucene,
    whose document count covers only documents with at least one term in the field.
    """

    def __init__(self, k1: float = 0.9, b: float = 0.4, stopwords: Iterable[str] | None = None) -> None:
        if not (k1 >= 0 and math.isfinite(k1)):
            raise InvalidInput(f"k1 must be a finite number >= 0, got {k1!r}")
        if not 0 <= b <= 1:
            raise InvalidInput(f"b must be in [0, 1], got {b!r}")
        self.k1 = float(k1)
        self.b = float(b)
        self._stop: frozenset[str] = frozenset(tokenize(" ".join(stopwords))) if stopwords else frozenset()
        self._postings: dict[str, dict[str, int]] = {}  # term -> {key: tf}
        self._doc_len: dict[str, int] = {}  # key -> token count
        self._doc_terms: dict[str, tuple[str, ...]] = {}  # key -> its distinct terms, to undo postings on remove
        self._order: dict[str, int] = {}  # key -> sequence number, breaks score ties
        self._seq = 0
        self._total_len = 0  # kept as an int so avgdl stays exact under add/remove

    # --- maintenance -------------------------------------------------------------------------------

    def _terms(self, text: str | None) -> list[str]:
        if not text:
            return []
        tokens = tokenize(text)
        if self._stop:
            tokens = [t for t in tokens if t not in self._stop]
        return tokens

    def _index(self, key: str, tokens: list[str], order: int) -> None:
        tf = dict.fromkeys(tokens, 1)
        if len(tf) < len(tokens):  # repeated terms are the exception in short texts: count only then
            tf = dict.fromkeys(tokens, 0)
            for t in tokens:
                tf[t] += 1
        postings = self._postings
        for t, n in tf.items():
            plist = postings.get(t)
            if plist is None:
                postings[t] = {key: n}
            else:
                plist[key] = n
        self._doc_len[key] = len(tokens)
        self._doc_terms[key] = tuple(tf)
        self._order[key] = order
        self._total_len += len(tokens)

    def _order_for(self, order: int | None) -> int:
        """The tie-break position: the caller's (an index passes each row's insertion ``seq``, so ties break
        the same way live and after a reload), else the next in this index's own sequence."""
        if order is None:
            order = self._seq
        self._seq = max(self._seq, order + 1)
        return order

    def add(self, key: str, text: str | None, order: int | None = None) -> None:
        """Index ``text`` under ``key``; a text with no tokens is skipped. ``order`` breaks score ties.

        Raises DuplicateId if ``key`` is already indexed (use ``replace``), changing nothing.
        """
        if key in self._doc_len:
            raise DuplicateId(f"{key!r} is already in the keyword index")
        tokens = self._terms(text)
        if tokens:
            self._index(key, tokens, self._order_for(order))

    def remove(self, key: str) -> bool:
        """Forget ``key``; True if it was indexed. df, N and avgdl are updated exactly."""
        length = self._doc_len.pop(key, None)
        if length is None:
            return False
        postings = self._postings
        for t in self._doc_terms.pop(key):
            plist = postings[t]
            del plist[key]
            if not plist:
                del postings[t]
        del self._order[key]
        self._total_len -= length
        return True

    def replace(self, key: str, text: str | None, order: int | None = None) -> None:
        """Index ``text`` under ``key`` whether or not it was indexed (upsert); no tokens means removal.

        Without ``order``, a key that stays indexed keeps its tie-break position, like an updated row keeps its
        place, and a new one goes last.
        """
        if order is None:
            order = self._order.get(key)
        self.remove(key)
        tokens = self._terms(text)
        if tokens:
            self._index(key, tokens, self._order_for(order))

    def load(self, pairs: Iterable[tuple[str, str | None] | tuple[str, str | None, int]]) -> int:
        """Bulk-add ``(key, text)`` or ``(key, text, order)`` tuples (e.g. every row when an index is opened);
        returns docs added.

        All or nothing: raises DuplicateId, changing nothing, if a key repeats or is already indexed.
        """
        items = list(pairs)
        seen: set[str] = set()
        for key, *_ in items:
            if key in seen or key in self._doc_len:
                raise DuplicateId(f"{key!r} appears twice in the keyword index load")
            seen.add(key)
        added = 0
        for key, text, *order in items:
            tokens = self._terms(text)
            if tokens:
                self._index(key, tokens, self._order_for(order[0] if order else None))
                added += 1
        return added

    def clear(self) -> None:
        """Drop every document (e.g. before reloading after a rollback)."""
        self._postings.clear()
        self._doc_len.clear()
        self._doc_terms.clear()
        self._order.clear()
        self._total_len = 0

    def __len__(self) -> int:
        return len(self._doc_len)

    def __contains__(self, key: object) -> bool:
        return key in self._doc_len

    def stats(self) -> KeywordStats:
        """Documents indexed, distinct terms, and mean document length in tokens (0.0 when empty)."""
        n = len(self._doc_len)
        return {"docs": n, "terms": len(self._postings), "avgdl": self._total_len / n if n else 0.0}

    # --- query -------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        top_k: int | None = None,
        allowed: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, float]]:
        """BM25 hits for ``query`` as ``(key, score)``, best first; only scores > 0.

        Ties keep the order keys were indexed (``replace`` keeps a key's place; removing and adding it
        again puts it last). ``allowed`` is a filter applied before ranking, so
        ``top_k`` hits are returned among the allowed keys (N, df and avgdl stay corpus-wide).
        """
        if top_k is not None and top_k < 0:
            raise InvalidInput(f"top_k must be >= 0, got {top_k!r}")
        n_docs = len(self._doc_len)
        if n_docs == 0 or top_k == 0:
            return []
        qtf: dict[str, int] = {}
        for t in self._terms(query):
            if t in self._postings:
                qtf[t] = qtf.get(t, 0) + 1
        if not qtf:
            return []
        k1, b = self.k1, self.b
        # denominator tf + k1 * (1 - b + b * dl / avgdl), split into a per-query constant and slope
        c0 = k1 * (1.0 - b)
        c1 = k1 * b * n_docs / self._total_len
        doc_len = self._doc_len
        scores: dict[str, float] = {}
        for i, (t, q) in enumerate(qtf.items()):
            plist = self._postings[t]
            df = len(plist)
            w = q * math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)) * (k1 + 1.0)
            if i == 0:  # a comprehension is markedly faster than the accumulating loop
                scores = {key: w * tf / (tf + c0 + c1 * doc_len[key]) for key, tf in plist.items()}
                continue
            get = scores.get
            for key, tf in plist.items():
                scores[key] = get(key, 0.0) + w * tf / (tf + c0 + c1 * doc_len[key])
        if allowed is not None:
            scores = {key: s for key, s in scores.items() if allowed(key)}
        if top_k is not None and top_k < len(scores):
            # sort only the keys at or above the k-th best score (ties at the cut-off are all kept and ordered)
            floor = heapq.nlargest(top_k, scores.values())[-1]
            keys = [key for key, s in scores.items() if s >= floor]
        else:
            keys = list(scores)
        order = self._order
        keys.sort(key=lambda key: (-scores[key], order[key]))
        if top_k is not None:
            del keys[top_k:]
        return [(key, scores[key]) for key in keys]
