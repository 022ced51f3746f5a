"""int8-accelerated numpy kernel: exact cosine top-k that reads a quarter of the bytes per query.

Why: a float32 scan is memory-bandwidth bound (50k x 768 is 153 MB read per query). This
kernel keeps the float32 matrix as the truth (``get``, snapshots, export, hybrid scores) and beside it an int8
copy with one scale per row, scanned by simsimd's SIMD int8 dot product (38 MB at 50k: a quarter). The int8
scores are *bounded*, not trusted: every row carries the norms needed for a rigorous error bound, the rows
that could still reach the top k are re-scored in float32, and the result is exactly ``NumpyKernel``'s
(same rows, same scores, same ties). ``simsimd`` is optional (the ``server`` extra); without it
``default_kernel`` falls back to ``NumpyKernel``.

The bound, for a unit query q (quantised as q' with residual norm rho) and a row x (quantised as x', one
scale per row): |x.q - x'.q'| <= |(x - x').q| + |x'.(q - q')| <= ||x - x'|| + ||x'|| * rho. Both row
norms are stored when the row is quantised; a small constant covers float32 rounding of the exact score.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import simsimd

from .base import Buffer
from .numpy_kernel import NumpyKernel, _dot, _ranked

QMAX = 127.0
CHUNK_ROWS = 256  # rows quantised per step: the float32 temporary stays in L2 instead of a 150 MB allocation
# The re-scored float32 cosine of unit vectors is within dims * 2**-24 of the real one (naive summation, worst
# case); the bounds are widened by twice that plus a margin, so pruning compares like with like at any dims.
SLACK = 1e-4
SMALL = 2048  # below this many candidate rows a direct float32 scan is as cheap as the int8 pass
# Rounding x * (127 / max|x|) in float32 is off by at most 0.5 + 127 * 2**-23 per element (rounded up); with the
# reconstruction x' = scale * code taken as exact, ||x - x'|| <= scale * sqrt(dims) * ROUNDING.
ROUNDING = 0.5 + 1e-4


def _quantise(rows: np.ndarray, codes: np.ndarray, scale: np.ndarray) -> None:
    """Write int8 codes and per-row scales (max |x| / 127) of float32 ``rows`` into ``codes``/``scale``.

    Five vectorised passes per L2-sized chunk (max, min, multiply, round, cast): part of every open and bulk
    load, so it is kept to whole-array numpy operations.
    """
    n = rows.shape[0]
    tmp = np.empty((min(n, CHUNK_ROWS), rows.shape[1]), dtype=np.float32)
    for start in range(0, n, CHUNK_ROWS):
        block = rows[start : start + CHUNK_ROWS]
        t = tmp[: block.shape[0]]
        amax = np.maximum(block.max(axis=1), -block.min(axis=1))
        s = amax / np.float32(QMAX)
        s[s == 0] = 1.0  # only a zero row, which prepare() never lets in; keeps the division defined
        np.multiply(block, (np.float32(1.0) / s)[:, None], out=t)
        np.rint(t, out=t)
        codes[start : start + block.shape[0]] = t
        scale[start : start + block.shape[0]] = s


def _int8_dots(qc: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Exact int32 dot products of the int8 query with every row of ``codes``, as float64."""
    return np.asarray(simsimd.cdist(qc[None, :], codes, metric="dot", threads=1), dtype=np.float64)[0]


class Int8Kernel(NumpyKernel):
    """``NumpyKernel`` plus an int8 shadow matrix (one float32 scale per row) used to prune the exact scan."""

    def __init__(self, dims: int) -> None:
        super().__init__(dims)
        self._codes = np.empty((0, dims), dtype=np.int8)
        self._scale = np.empty(0, dtype=np.float32)
        # Contiguous int8 codes + scales of probed IVF lists, keyed by the id of the list's row array
        # (``ProbedRows.parts``; a weak reference proves it is the same array). Any write drops them all.
        self._lists: dict[int, tuple[weakref.ref[Any], np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ keeping the shadow in step
    def _reserve(self, total: int) -> None:
        super()._reserve(total)
        capacity = self._data.shape[0]
        if self._codes.shape[0] >= capacity:
            return
        live = self._n
        codes = np.empty((capacity, self.dims), dtype=np.int8)
        codes[:live] = self._codes[:live]
        scale = np.empty(capacity, dtype=np.float32)
        scale[:live] = self._scale[:live]
        self._codes, self._scale = codes, scale

    def _shadow(self, start: int, stop: int) -> None:
        self._lists.clear()
        _quantise(self._data[start:stop], self._codes[start:stop], self._scale[start:stop])

    def load(self, data: Buffer, n: int) -> None:
        super().load(data, n)
        capacity = self._data.shape[0]
        self._codes = np.empty((capacity, self.dims), dtype=np.int8)
        self._scale = np.empty(capacity, dtype=np.float32)
        self._shadow(0, n)

    def append(self, data: Buffer, n: int) -> None:
        start = self._n
        super().append(data, n)
        self._shadow(start, start + n)

    def set_row(self, row: int, data: Buffer) -> None:
        super().set_row(row, data)
        self._shadow(row, row + 1)

    def swap_remove(self, row: int) -> None:
        last = self._n - 1
        self._lists.clear()
        if row != last:
            self._codes[row] = self._codes[last]
            self._scale[row] = self._scale[last]
        super().swap_remove(row)

    def _list_codes(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One probed list's codes and scales, gathered once and kept until the next write or until the list's
        row array is replaced (its list changed): a query then scans contiguous blocks instead of gathering."""
        key = id(part)
        entry = self._lists.get(key)
        if entry is not None and entry[0]() is part:
            return entry[1], entry[2]
        lists = self._lists

        def forget(ref: weakref.ref[Any], key: int = key) -> None:
            if lists.get(key, (None,))[0] is ref:
                del lists[key]

        codes, scale = np.take(self._codes, part, axis=0), self._scale[part]
        lists[key] = (weakref.ref(part, forget), codes, scale)
        return codes, scale

    # ------------------------------------------------------------------ search
    def _bounds(
        self, q: np.ndarray, index: np.ndarray | None, parts: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of every candidate's exact cosine, from one int8 pass."""
        qs = float(np.abs(q).max()) / QMAX
        qc = np.rint(q * np.float32(1.0 / qs)).astype(np.int8)
        rho = float(np.linalg.norm(q.astype(np.float64) - qc.astype(np.float64) * qs))
        if parts is not None:  # probed IVF lists: scan each list's kept contiguous block
            blocks = [self._list_codes(p) for p in parts]
            scale = np.concatenate([s for _, s in blocks])
            approx = np.concatenate([_int8_dots(qc, c) for c, _ in blocks])
        else:
            if index is None:
                codes, scale = self._codes[: self._n], self._scale[: self._n]
            else:
                codes, scale = np.take(self._codes, index, axis=0), self._scale[index]  # take: a faster row gather
            approx = _int8_dots(qc, codes)
        approx *= scale  # exact int32 dot products, scaled in float64
        approx *= qs
        # |x.q - x'.q'| <= ||x - x'|| ||q|| + ||x'|| rho, with ||x - x'|| <= scale * sqrt(dims) * ROUNDING,
        # ||x'|| <= ||x|| + ||x - x'|| and ||x||, ||q|| <= 1 + 1e-5 (prepared rows are unit to float32 precision)
        unit = 1.0 + 1e-5
        width = np.multiply(scale, math.sqrt(self.dims) * ROUNDING * (unit + rho), dtype=np.float64)
        width += unit * rho + SLACK + self.dims * 2.0**-23
        lower = approx - width
        approx += width
        return lower, approx

    def topk(self, query: Buffer, k: int, rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        count = self._n if rows is None else len(rows)
        if k <= 0 or count == 0 or k >= count or count < SMALL:
            return super().topk(query, k, rows)
        q = self._rows(query, 1)[0]
        parts = getattr(rows, "parts", None)  # ivf_numpy.ProbedRows
        index = None if rows is None else np.asarray(rows, dtype=np.int64)
        lower, upper = self._bounds(q, index, parts)
        floor = np.partition(lower, count - k)[count - k]  # the true k-th best score is at least this
        local = np.flatnonzero(upper >= floor)  # every row that could reach the top k (or tie it)
        candidates = local if index is None else index[local]
        return _ranked(_dot(self._data[candidates], q), k, candidates)
