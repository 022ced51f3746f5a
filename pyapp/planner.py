"""Query planning: check the arguments, pick the legs, run them over the filtered rows, fuse, cut.

A filter selects rows first (vectorised on columnar fields), so exactly ``top_k`` hits come back when that
many match. The vector leg is the kernel's exact top-k, the keyword leg BM25; hybrid fuses both. Every leg
and the fused list break score ties by insertion order (``Row.seq``), so an answer never depends on the
history of the index (live, reopened or compacted: same ids, same scores, same order).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .embed.base import Embedder
from .errors import InvalidInput, NoEmbedder, describe
from .filters import Filter, compile_filter
from .fusion import check_rrf_k, is_finite_number, reciprocal_rank_fusion, weighted_fusion
from .kernels.ivf import check_nprobe, row_mask, use_exact
from .rows import IndexRows
from .staging import check_text
from .types import Result

MODES = ("auto", "vector", "keyword", "hybrid")
# Abbreviation expansion (pyapp.abbreviations): which legs see the expanded query. True means "both", the best
# measured (docs/BENCHMARKS.md, "Clinical abbreviations").
EXPANSIONS = ("off", "keyword", "both")
FUSIONS = ("rrf", "weighted")
HYBRID_DEPTH = 200  # candidates each hybrid leg contributes before fusion
# Hybrid defaults, chosen on the DEV half of the ICD-10-CM retrieval set (bench/retrieval.py tune); the figures
# behind them are in docs/BENCHMARKS.md.
DEFAULT_FUSION = "rrf"
DEFAULT_WEIGHTS = (0.7, 0.3)  # (vector, keyword)
DEFAULT_RRF_K = 5.0


@dataclass(frozen=True)
class QueryPlan:
    """A checked query: which leg(s) run, on what, with which fusion."""

    mode: str
    text: str | None
    filter: Filter | None
    top_k: int
    min_score: float | None
    fusion: str
    weights: tuple[float, float]
    rrf_k: float
    keyword_text: str | None = None  # the keyword leg's query: ``text``, or ``text`` + abbreviation meanings
    vector_text: str | None = None  # the text the vector leg embeds: ``text``, or with meanings inline
    exact: bool = False  # scan every (filtered) row even when the index is partitioned
    nprobe: int | None = None  # partitions to probe (None: automatic)


def plan(
    rows_have_embedder: bool,
    vector: Any,
    text: Any,
    top_k: Any,
    filter: Any,
    mode: Any,
    min_score: Any,
    fusion: Any,
    weights: Any,
    rrf_k: Any,
    expand: Any = "off",
    exact: Any = False,
    nprobe: Any = None,
) -> QueryPlan:
    """Check every argument (``InvalidInput``/``InvalidFilter``/``NoEmbedder``) and resolve ``auto``."""
    expand = check_expansion(expand)
    if not isinstance(exact, bool):
        raise InvalidInput(f"exact must be True or False, got {describe(exact)}")
    nprobe = check_nprobe(nprobe)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise InvalidInput(f"top_k must be a positive integer, got {describe(top_k)}")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {MODES}, got {describe(mode)}")
    if fusion not in FUSIONS:
        raise InvalidInput(f"fusion must be one of {FUSIONS}, got {describe(fusion)}")
    check_rrf_k(rrf_k)
    if min_score is not None and not (is_finite_number(min_score) or min_score in (math.inf, -math.inf)):
        raise InvalidInput(f"min_score must be a number, got {describe(min_score)}")
    if (
        isinstance(weights, (str, bytes, dict))
        or not isinstance(weights, Sequence)
        or len(weights) != 2
        or not all(is_finite_number(w) and w >= 0 for w in weights)
    ):
        raise InvalidInput(f"weights must be two finite numbers >= 0 (vector, keyword), got {describe(weights)}")
    text = check_text(text)
    flt = None if filter is None else compile_filter(filter)
    can_vector = vector is not None or (bool(text) and rows_have_embedder)
    if mode == "auto":
        mode = "hybrid" if (text and can_vector) else "vector" if can_vector else "keyword"
    if mode in ("vector", "hybrid") and not can_vector:
        if not rows_have_embedder and vector is None and text:
            raise NoEmbedder(f"mode {mode!r} needs a vector, or an index opened with an embedder to embed the text")
        raise InvalidInput(f"mode {mode!r} needs a vector or text")
    if mode in ("keyword", "hybrid") and not text:
        raise InvalidInput(f"mode {mode!r} needs query text")
    keyword_text = vector_text = text
    if text and expand != "off":
        from . import abbreviations  # lazy: the list is read on the first expanding query only

        keyword_text = abbreviations.expand_appended(text)
        if expand == "both":
            vector_text = abbreviations.expand_inline(text)
    pair = (float(weights[0]), float(weights[1]))
    return QueryPlan(
        mode, text, flt, top_k, min_score, fusion, pair, float(rrf_k), keyword_text, vector_text, exact, nprobe
    )


def check_expansion(expand: Any) -> str:
    """``expand_abbreviations`` as one of ``EXPANSIONS`` (False -> "off", True -> "both")."""
    if expand is False:
        return "off"
    if expand is True:
        return "both"
    if expand not in EXPANSIONS:
        raise InvalidInput(f"expand_abbreviations must be True, False or one of {EXPANSIONS}, got {describe(expand)}")
    return expand


async def run(state: IndexRows, embedder: Embedder | None, vector: Any, p: QueryPlan) -> list[Result]:
    """Execute a checked plan over the committed rows."""
    kernel = state.kernel
    prepared = None
    if p.mode in ("vector", "hybrid"):
        if vector is not None:
            raw = kernel.pack([vector])
        else:
            assert embedder is not None and p.text
            raw = await embedder.embed_raw([p.vector_text or p.text])
        prepared = kernel.prepare(raw, 1)

    rows = None if p.filter is None else select_rows(state, p.filter)
    if rows is not None and len(rows) == 0:
        return []
    records, row_of = state.rows, state.row_of

    def by_score_then_seq(hit: tuple[Any, float], key: Any) -> tuple[float, int]:
        return (-hit[1], records[key].seq)

    if p.mode == "vector":
        assert prepared is not None
        hits = kernel.topk(prepared, p.top_k, _scan_rows(state, prepared, p.top_k, rows, p))
        if not _settled(hits):
            hits.sort(key=lambda h: by_score_then_seq(h, h[0]))
        hits = hits[: p.top_k]
        items = state.items([r for r, _ in hits])
        return _cut([Result(item, s, vector_score=s) for item, (_, s) in zip(items, hits)], p.min_score)

    allowed = None
    if rows is not None:
        allowed_rows = {int(r) for r in rows}
        allowed = lambda key: row_of[key] in allowed_rows  # noqa: E731
    keyword = state.keyword()
    if p.mode == "keyword":
        assert p.text is not None
        # ties: insertion order (seq)
        keyword_hits = keyword.search(p.keyword_text or p.text, top_k=p.top_k, allowed=allowed)
        items = state.items([row_of[k] for k, _ in keyword_hits])
        return _cut([Result(item, s, keyword_score=s) for item, (_, s) in zip(items, keyword_hits)], p.min_score)

    assert prepared is not None and p.text is not None
    depth = max(p.top_k, HYBRID_DEPTH)
    vector_hits = kernel.topk(prepared, depth, _scan_rows(state, prepared, depth, rows, p))
    if not _settled(vector_hits):
        vector_hits.sort(key=lambda h: by_score_then_seq(h, h[0]))
    vector_leg = [(records[r].id, s) for r, s in vector_hits[:depth]]
    keyword_leg = keyword.search(p.keyword_text or p.text, top_k=depth, allowed=allowed)
    if p.fusion == "rrf":
        ranked = [[k for k, _ in vector_leg], [k for k, _ in keyword_leg]]
        fused = reciprocal_rank_fusion(ranked, k=p.rrf_k, weights=list(p.weights))
    else:
        fused = weighted_fusion([vector_leg, keyword_leg], list(p.weights))
    if len(fused) > p.top_k:  # only hits at or above the top_k-th score can place: order just those (ties included)
        floor = heapq.nlargest(p.top_k, [s for _, s in fused])[-1]
        fused = [h for h in fused if h[1] >= floor]
    fused.sort(key=lambda h: by_score_then_seq(h, row_of[h[0]]))
    fused = fused[: p.top_k]
    keyword_scores = dict(keyword_leg)
    fused_rows = [row_of[k] for k, _ in fused]
    cosines = kernel.scores(prepared, fused_rows)
    items = state.items(fused_rows)
    results = [
        Result(item, s, vector_score=c, keyword_score=keyword_scores.get(k))
        for (k, s), item, c in zip(fused, items, cosines)
    ]
    return _cut(results, p.min_score)


def _settled(hits: list[tuple[int, float]]) -> bool:
    """Whether kernel hits are already best first with no two scores equal: then ordering them by (score,
    insertion order) would move none, and the per-hit insertion-order lookups can be skipped."""
    scores = [s for _, s in hits]
    return len(set(scores)) == len(scores) and scores == sorted(scores, reverse=True)


def _scan_rows(state: IndexRows, query: Any, k: int, rows: Sequence[int] | None, p: QueryPlan) -> Sequence[int] | None:
    """The rows the vector leg scans: the filter's rows (None: all) when exact, else the probed partitions'.

    Filters come first: a selective one is scanned exactly over its matches (``use_exact``)."""
    parts = state.ivf
    if parts is None or p.exact:
        return rows
    n = len(state)
    matches = n if rows is None else len(rows)
    if p.nprobe is None and use_exact(matches, n, parts.target(k)):
        return rows
    allowed = None if rows is None else row_mask(rows, n)
    return parts.candidates(query, k, p.nprobe, allowed)


def select_rows(state: IndexRows, flt: Filter) -> Sequence[int]:
    """The filter's rows, ascending: picked by the kernel from its own copy of the code columns when it keeps one
    (the browser's JS kernel: no per-row bridge crossing, no pure-Python scan), else by the metadata table."""
    if state.kernel.keeps_code_columns:
        luts = state.table.column_luts(flt)
        if luts is not None:
            rows = state.kernel.select_where(luts)
            if rows is not None:
                return rows
    return state.table.select(flt)


def _cut(results: list[Result], min_score: float | None) -> list[Result]:
    return results if min_score is None else [r for r in results if r.score >= min_score]
