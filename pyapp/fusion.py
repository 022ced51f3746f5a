"""Fuse the ranked hit lists of several search legs (vector, keyword) into one ranking.

Which to use:

- ``reciprocal_rank_fusion`` is the default for hybrid queries. It looks only at ranks: cosine similarities
  and BM25 scores live on unrelated scales (BM25 is unbounded and grows with query length), so ranks are the
  one thing the legs agree on, and one leg's score outliers cannot swamp the other. ``LocalIndex.query`` uses
  it with k=5 and weights 0.7 (vector) / 0.3 (keyword) over 200 candidates per leg, tuned on the DEV half of
  the ICD-10-CM retrieval set (docs/BENCHMARKS.md); this function's own default, k=60 with equal weights, is
  the untuned textbook choice and scored lower there.
- ``weighted_fusion`` uses the scores themselves, min-max normalised per leg, and a weight per leg. Use it
  when the margins matter (a hit far ahead in one leg should win) and you can tune the weights on your own
  relevance judgements. Min-max is sensitive to each leg's best and worst hit, hence to the candidate depth.

Both are pure Python, deterministic, and return only keys that at least one leg returned: a hybrid query
never ranks a document that every leg missed. Ties are broken by first appearance, scanning the legs in
order and each leg best first. Within a leg only a key's first occurrence counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import InvalidInput, describe


def is_finite_number(x: object) -> bool:
    """A real number (not a bool) that is finite as a float: 10**5000 is not (``math.isfinite`` would raise)."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _check_weights(weights: Sequence[float] | None, n_legs: int) -> list[float]:
    if weights is None:
        return [1.0] * n_legs
    if isinstance(weights, (str, bytes, dict)) or not isinstance(weights, Sequence):
        raise InvalidInput(f"weights must be a list of numbers, got {describe(weights)}")
    if len(weights) != n_legs:
        raise InvalidInput(f"{len(weights)} weights given for {n_legs} legs")
    if not all(is_finite_number(x) and x >= 0 for x in weights):
        raise InvalidInput(f"weights must be finite and >= 0, got {describe(weights)}")
    return [float(x) for x in weights]


def check_rrf_k(k: object) -> None:
    """``InvalidInput`` unless ``k`` is a finite real number >= 0 (what ``reciprocal_rank_fusion`` needs)."""
    if not (is_finite_number(k) and k >= 0):  # type: ignore[operator]
        raise InvalidInput(f"rrf k must be a finite number >= 0, got {describe(k)}")


def _rank(scores: dict[str, float], first_seen: dict[str, int]) -> list[tuple[str, float]]:
    return sorted(scores.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))


def reciprocal_rank_fusion(
    legs: Sequence[Sequence[str]],
    k: float = 60,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over legs holding d of weight / (k + rank), rank from 1.

    ``legs`` are key lists, each best first. ``k`` (60, as in Cormack et al. 2009) flattens the gap between
    the first few ranks so that agreement between legs beats a single first place.
    """
    check_rrf_k(k)
    w = _check_weights(weights, len(legs))
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for leg, weight in zip(legs, w, strict=True):
        seen: set[str] = set()
        rank = 0
        for key in leg:
            if key in seen:
                continue
            seen.add(key)
            rank += 1
            if key not in first_seen:
                first_seen[key] = len(first_seen)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return _rank(scores, first_seen)


def weighted_fusion(
    legs: Sequence[Sequence[tuple[str, float]]],
    weights: Sequence[float],
) -> list[tuple[str, float]]:
    """Weighted sum of per-leg min-max normalised scores; ``legs`` hold ``(key, score)``, best first.

    Each leg's scores map to [0, 1] by (s - min) / (max - min); a leg with one hit or all-equal scores maps
    to 1.0 (nothing to tell its hits apart, and they did match). A key missing from a leg gets 0 from it,
    the same as that leg's worst hit. With weights summing to 1 the fused score is in [0, 1].
    """
    w = _check_weights(weights, len(legs))
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for leg, weight in zip(legs, w, strict=True):
        first: dict[str, float] = {}
        for key, score in leg:
            if key not in first:
                s = float(score)
                if not math.isfinite(s):
                    raise InvalidInput(f"score of {key!r} is not finite: {score!r}")
                first[key] = s
        if not first:
            continue
        lo, hi = min(first.values()), max(first.values())
        if not math.isfinite(hi - lo):  # e.g. -1e308 .. 1e308: halve so the span is representable
            first = {key: s / 2 for key, s in first.items()}
            lo, hi = lo / 2, hi / 2
        span = hi - lo
        for key, s in first.items():
            if key not in first_seen:
                first_seen[key] = len(first_seen)
            norm = (s - lo) / span if span > 0 else 1.0
            scores[key] = scores.get(key, 0.0) + weight * norm
    return _rank(scores, first_seen)
