"""numpy vector kernel: a contiguous, growable float32 matrix with exact cosine top-k.

Rows are L2-normalised on the way in, so cosine similarity is one matrix-vector product.
Capacity grows geometrically so appends are amortised O(dims); deletes swap the last row in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidVector
from .base import Buffer, VectorKernel, pack_rows, reject_booleans

UNIT_TOLERANCE = 1e-6  # a float32 vector normalised in float64 has |norm - 1| well below this


def _bytes_view(arr: np.ndarray) -> memoryview:
    """A zero-copy byte view of a C-contiguous float32 array (bulk paths move 150 MB at 50k x 768)."""
    if arr.size == 0:
        return memoryview(b"")
    return memoryview(np.ascontiguousarray(arr, dtype="<f4")).cast("B")


def _dot(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row scores with numpy's own SIMD loop: one thread, so no BLAS thread pool burning the second core
    (on a busy 2-core machine threaded gemv cost more CPU time than one thread for the same answer)."""
    return np.einsum("ij,j->i", matrix, query)


def _ranked(scores: np.ndarray, k: int, index: np.ndarray | None) -> list[tuple[int, float]]:
    """``(row, score)`` of the best ``k`` scores and every score tied with the k-th, best first, ties in
    ``scores`` order; ``index`` maps positions in ``scores`` to rows (None: they are the rows)."""
    count = scores.shape[0]
    if count == 0 or k <= 0:
        return []
    if k < count:
        kth = np.partition(scores, count - k)[count - k]
        picked = np.flatnonzero(scores >= kth)  # every row tied with the k-th score too
    else:
        picked = np.arange(count)
    order = picked[np.argsort(-scores[picked], kind="stable")]
    chosen = order if index is None else index[order]
    return list(zip(chosen.tolist(), scores[order].astype(np.float64).tolist()))


def _numeric_row(vector: np.ndarray, i: int) -> list[float]:
    if vector.dtype.kind not in "fiu":
        raise InvalidVector(f"vector {i} is a {vector.dtype} array, not numbers")
    if vector.ndim != 1:
        raise InvalidVector(f"vector {i} is not a flat list of numbers")
    return vector.astype(np.float64).tolist()


def _divide(rows: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """rows / norms; in float64 when a norm overflows float32 (a row of 3e38s), which would give zeros."""
    with np.errstate(over="ignore"):
        scale = norms.astype(np.float32)
    if np.isfinite(scale).all():
        if rows.flags.writeable:  # a buffer pack()/an embedder just made: normalise in place, no 150 MB copy
            rows /= scale[:, None]
            return rows
        return rows / scale[:, None]
    return (rows / norms[:, None]).astype(np.float32)


class NumpyKernel(VectorKernel):
    """The server kernel (and the browser's when Pyodide can load numpy)."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self._data = np.empty((0, dims), dtype=np.float32)
        self._n = 0

    @property
    def size(self) -> int:
        return self._n

    @property
    def matrix(self) -> np.ndarray:
        """A view of the live rows (no copy)."""
        return self._data[: self._n]

    def _rows(self, data: Buffer, n: int) -> np.ndarray:
        arr = np.frombuffer(data, dtype="<f4")
        if arr.size != n * self.dims:
            raise InvalidVector(f"expected {n} x {self.dims} float32 values, got {arr.size}")
        return arr.reshape(n, self.dims)

    def pack(self, vectors: Sequence[object]) -> Buffer:
        """One vectorised conversion for numeric arrays; ``pack_rows`` (C-level, refuses strings) for lists."""
        dims = self.dims
        if vectors and all(type(v) is np.ndarray and v.shape == (dims,) and v.dtype.kind in "fiu" for v in vectors):
            # rows from an embedder or a matrix: one concatenate (np.asarray over the rows is much slower)
            return _bytes_view(np.concatenate(vectors, dtype="<f4", casting="same_kind").reshape(-1, dims))
        rows = [_numeric_row(v, i) if type(v) is np.ndarray else v for i, v in enumerate(vectors)]
        packed = np.frombuffer(pack_rows(rows, dims), dtype="<f4").reshape(-1, dims)
        # a boolean converts to an exact 0 or 1: only rows holding one are looked at element by element
        reject_booleans(rows, np.flatnonzero(((packed == 0) | (packed == 1)).any(axis=1)).tolist())
        return _bytes_view(packed)

    def prepare(self, data: Buffer, n: int) -> Buffer:
        rows = self._rows(data, n)
        # float64 accumulation: no overflow for large finite values; NaN/inf rows give a non-finite norm
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
        if n == 1:  # a query or a single write: the same arithmetic with scalar checks (numpy's per-call overhead)
            return self._prepare_one(rows, float(norms[0]))
        finite = np.isfinite(norms)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise InvalidVector(f"vector {bad} contains NaN or infinity")
        zero = norms == 0
        if zero.any():
            bad = int(np.flatnonzero(zero)[0])
            raise InvalidVector(f"vector {bad} is all zeros: it has no direction to compare")
        # Rows already unit-length (to float32 precision) stay bit-identical, so export -> import is exact.
        scale = np.where(np.abs(norms - 1.0) <= UNIT_TOLERANCE, 1.0, norms)
        if (scale == 1.0).all():
            return _bytes_view(rows)
        return _bytes_view(_divide(rows, scale))

    @staticmethod
    def _prepare_one(rows: np.ndarray, norm: float) -> Buffer:
        if not math.isfinite(norm):
            raise InvalidVector("vector 0 contains NaN or infinity")
        if norm == 0:
            raise InvalidVector("vector 0 is all zeros: it has no direction to compare")
        if abs(norm - 1.0) <= UNIT_TOLERANCE:
            return _bytes_view(rows)
        return _bytes_view(_divide(rows, np.array([norm])))

    def _reserve(self, total: int) -> None:
        if total <= self._data.shape[0]:
            return
        capacity = max(total, int(self._data.shape[0] * 1.5) + 16)
        grown = np.empty((capacity, self.dims), dtype=np.float32)
        grown[: self._n] = self._data[: self._n]
        self._data = grown

    def load(self, data: Buffer, n: int) -> None:
        rows = self._rows(data, n)
        # A writable buffer (the file store's private copy-on-write map) is used in place: no second copy.
        self._data = rows if rows.flags.writeable else rows.copy()
        self._n = n

    def append(self, data: Buffer, n: int) -> None:
        rows = self._rows(data, n)
        self._reserve(self._n + n)
        self._data[self._n : self._n + n] = rows
        self._n += n

    def set_row(self, row: int, data: Buffer) -> None:
        self._data[row] = self._rows(data, 1)[0]

    def swap_remove(self, row: int) -> None:
        last = self._n - 1
        if row != last:
            self._data[row] = self._data[last]
        self._n = last

    def get_row(self, row: int) -> bytes:
        return self._data[row].tobytes()

    def get_rows(self, rows: Sequence[int]) -> bytes:
        return self._data[np.asarray(rows, dtype=np.int64)].tobytes()

    def to_bytes(self) -> Buffer:
        return _bytes_view(self.matrix)

    def topk(self, query: Buffer, k: int, rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        q = self._rows(query, 1)[0]
        if rows is None:
            scores = _dot(self.matrix, q)
            index = None
        else:
            index = np.asarray(rows, dtype=np.int64)
            scores = _dot(self._data[index], q) if index.size else np.empty(0, dtype=np.float32)
        return _ranked(scores, k, index)

    def scores(self, query: Buffer, rows: Sequence[int]) -> list[float]:
        q = self._rows(query, 1)[0]
        index = np.asarray(rows, dtype=np.int64)
        if index.size == 0:
            return []
        return _dot(self._data[index], q).astype(np.float64).tolist()
