"""The benchmark workload, bit-identical to the vectra peer's ``bench.mjs``.

Why a port and not our own generator: comparing clinvec with vectra is only fair when both index the
very same vectors and metadata. ``bench.mjs`` draws from mulberry32 (seed 42), maps each draw to
``Math.fround(r * 2 - 1)`` and fills items one after another (item ``i`` takes draws
``i*dim .. i*dim+dim-1``); queries come from a second stream seeded ``seed + 1000003``.

mulberry32's state is a plain counter (``s += 0x6D2B79F5`` per draw), so draw ``k`` depends only on
``seed + (k+1) * 0x6D2B79F5 mod 2**32``: ``draws`` computes any slice of the stream at once with numpy
uint32 arithmetic (which wraps exactly like ``Math.imul``/``>>> 0``). ``Mulberry32`` is the scalar
reference, a line-by-line port, kept to check the vectorised one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

GOLDEN = 0x6D2B79F5
MASK = 0xFFFFFFFF
QUERY_SEED_OFFSET = 1000003
CATEGORIES = tuple(f"c{i}" for i in range(10))
FILTER: dict[str, Any] = {"category": {"$eq": "c3"}}
_CHUNK_DRAWS = 1 << 22  # ~4M draws per numpy pass keeps temporaries near 100 MB


class Mulberry32:
    """Scalar mulberry32, exactly as ``bench.mjs`` writes it (``Math.imul`` = multiply mod 2**32)."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK

    def __call__(self) -> float:
        self.state = (self.state + GOLDEN) & MASK
        t = self.state
        t = ((t ^ (t >> 15)) * (t | 1)) & MASK
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & MASK)) & MASK
        return ((t ^ (t >> 14)) & MASK) / 4294967296


def draws(seed: int, start: int, count: int) -> np.ndarray:
    """Draws ``start .. start+count-1`` of the mulberry32 stream as float64 in [0, 1)."""
    k = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    s = ((np.uint64(seed & MASK) + k * np.uint64(GOLDEN)) & np.uint64(MASK)).astype(np.uint32)
    with np.errstate(over="ignore"):
        t = (s ^ (s >> np.uint32(15))) * (s | np.uint32(1))
        t ^= t + (t ^ (t >> np.uint32(7))) * (t | np.uint32(61))
        t ^= t >> np.uint32(14)
    return t.astype(np.float64) / 4294967296.0


def vectors(seed: int, n: int, dim: int, first: int = 0) -> np.ndarray:
    """Rows ``first .. first+n-1`` of the stream as an ``n x dim`` float32 matrix (``Math.fround(r*2-1)``)."""
    out = np.empty((n, dim), dtype=np.float32)
    rows_per_chunk = max(1, _CHUNK_DRAWS // dim)
    for lo in range(0, n, rows_per_chunk):
        hi = min(n, lo + rows_per_chunk)
        r = draws(seed, (first + lo) * dim, (hi - lo) * dim)
        out[lo:hi] = (r * 2.0 - 1.0).astype(np.float32).reshape(hi - lo, dim)  # round-to-nearest, as fround
    return out


def query_vectors(seed: int, count: int, dim: int) -> np.ndarray:
    """The query stream of ``bench.mjs`` (independent of the data stream)."""
    return vectors(seed + QUERY_SEED_OFFSET, count, dim)


def metadata(i: int) -> dict[str, Any]:
    """Item ``i``'s metadata, as ``bench.mjs`` builds it."""
    return {"doc": f"doc-{i % 1000}", "category": CATEGORIES[i % 10], "year": 2000 + (i % 25), "flag": i % 2 == 0}


def item_id(i: int) -> str:
    return f"item-{i}"


def items(matrix: np.ndarray, as_lists: bool = False) -> Iterator[dict[str, Any]]:
    """Items for ``insert_many``: vectors as float32 rows (an embedder's output) or as Python lists (JSON input)."""
    for i in range(matrix.shape[0]):
        row = matrix[i]
        yield {"id": item_id(i), "vector": row.tolist() if as_lists else row, "metadata": metadata(i)}


__all__ = [
    "CATEGORIES",
    "FILTER",
    "Mulberry32",
    "draws",
    "item_id",
    "items",
    "metadata",
    "query_vectors",
    "vectors",
]
