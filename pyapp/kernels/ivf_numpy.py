"""numpy arithmetic for IVF partitions: spherical k-means training, nearest centroid, centroid ranking.

Why numpy here: training and assignment are matrix products (rows x centroids), the one place where BLAS's
sgemm beats a scan; a bulk write assigns its rows in blocks so the temporary score matrix stays small.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Buffer, VectorKernel

SAMPLE_PER_LIST = 32  # k-means trains on up to 32 rows per list (a uniform sample): enough for stable centroids
ITERATIONS = 8
BLOCK = 4096  # rows assigned per matrix product
NEIGHBOUR_BLOCK = 16384  # index rows per product when finding the calibration queries' exact neighbours
NEIGHBOUR_HEAD = 4096  # rows whose k-th best score per query is the floor for the rest


class NumpyCentroids:
    """A unit centroid matrix (nlist x dims, float32)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.nlist = self.matrix.shape[0]

    def nearest(self, data: Buffer, n: int) -> tuple[list[int], list[float]]:
        rows = np.frombuffer(data, dtype="<f4").reshape(n, -1)
        lists, scores = nearest(rows, self.matrix)
        return lists.tolist(), scores.astype(np.float64).tolist()

    def rank(self, query: Buffer) -> list[int]:
        scores = np.einsum("ij,j->i", self.matrix, np.frombuffer(query, dtype="<f4"))
        return np.argsort(-scores, kind="stable").tolist()

    def to_bytes(self) -> bytes:
        return self.matrix.astype("<f4").tobytes()

    @staticmethod
    def list_copies() -> NumpyListCopies:
        return NumpyListCopies()


class NumpyListCopies:
    """Each list's rows as an int64 array: a query concatenates a few arrays instead of converting Python ints."""

    def __init__(self) -> None:
        self._parts: dict[int, np.ndarray] = {}

    def put(self, lst: int, rows: list[int]) -> None:
        self._parts[lst] = np.array(rows, dtype=np.int64)

    def get(self, lst: int) -> np.ndarray:
        return self._parts[lst]

    def gather(self, lists: Sequence[int]) -> np.ndarray:
        parts = [self._parts[lst] for lst in lists]
        if not parts:
            return np.empty(0, dtype=np.int64)
        out = np.concatenate(parts).view(ProbedRows)
        out.parts = parts
        return out


class ProbedRows(np.ndarray):
    """The probed lists' rows, concatenated, remembering each list's array (``parts``): an array stays the same
    object while its list is unchanged, so ``Int8Kernel`` can keep each list's int8 codes gathered contiguously
    instead of gathering tens of thousands of scattered rows on every query."""

    parts: list[np.ndarray]


def nearest(rows: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (largest cosine) of every row and that cosine, in blocks of ``BLOCK`` rows."""
    n = rows.shape[0]
    lists = np.empty(n, dtype=np.int64)
    scores = np.empty(n, dtype=np.float32)
    t = centroids.T
    for start in range(0, n, BLOCK):
        block = rows[start : start + BLOCK] @ t
        best = block.argmax(axis=1)
        lists[start : start + block.shape[0]] = best
        scores[start : start + block.shape[0]] = block[np.arange(block.shape[0]), best]
    return lists, scores


def kmeans(rows: np.ndarray, nlist: int, seed: int, iterations: int = ITERATIONS) -> np.ndarray:
    """Spherical k-means (cosine) over unit ``rows``: random distinct rows to start, empty lists re-seeded with
    the rows farthest from their centroid. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = rows.shape[0]
    centroids = rows[np.sort(rng.choice(n, nlist, replace=False))].astype(np.float32)
    for _ in range(iterations):
        lists, scores = nearest(rows, centroids)
        counts = np.bincount(lists, minlength=nlist)
        order = np.argsort(lists, kind="stable")
        used = np.flatnonzero(counts)
        starts = np.concatenate(([0], np.cumsum(counts[used])[:-1]))
        sums = np.zeros_like(centroids)
        sums[used] = np.add.reduceat(rows[order], starts, axis=0)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            sums[empty] = rows[np.argsort(scores, kind="stable")[: empty.size]]
        norms = np.linalg.norm(sums, axis=1)
        norms[norms == 0] = 1.0
        centroids = (sums / norms[:, None]).astype(np.float32)
    return centroids


class NumpyIvfMath:
    """``IvfMath`` with numpy (server, and Pyodide when numpy loads)."""

    def centroids(self, data: bytes, nlist: int, dims: int) -> NumpyCentroids:
        return NumpyCentroids(np.frombuffer(data, dtype="<f4").reshape(nlist, dims).copy())

    def train(self, kernel: VectorKernel, nlist: int, seed: int) -> NumpyCentroids:
        n = kernel.size
        rng = np.random.default_rng(seed)
        m = min(n, SAMPLE_PER_LIST * nlist)
        if m < n:
            sample = np.frombuffer(kernel.get_rows(np.sort(rng.choice(n, m, replace=False))), dtype="<f4")
        else:
            sample = np.frombuffer(kernel.to_bytes(), dtype="<f4")
        return NumpyCentroids(kmeans(sample.reshape(m, kernel.dims), nlist, seed))

    def neighbours(self, kernel: VectorKernel, queries: bytes, n: int, k: int) -> list[list[int]]:
        """Exact top-``k`` rows for ``n`` queries at once: one sgemm per block of index rows (far cheaper than
        ``n`` kernel scans). A per-query floor (the k-th best score among the first rows, a lower bound of the
        true k-th best) keeps only the few scores that can matter, so no block is sorted; ties by row order."""
        q = np.frombuffer(queries, dtype="<f4").reshape(n, kernel.dims)
        rows = np.frombuffer(kernel.to_bytes(), dtype="<f4").reshape(-1, kernel.dims)
        head = rows[:NEIGHBOUR_HEAD] @ q.T  # (head rows, n)
        if n == 0 or head.shape[0] <= k:
            floor = np.full(n, -np.inf, dtype=np.float32)
        else:
            floor = np.partition(head, head.shape[0] - k, axis=0)[head.shape[0] - k]
        hit_q, hit_r, hit_s = [], [], []
        for start in range(0, rows.shape[0], NEIGHBOUR_BLOCK):
            block = rows[start : start + NEIGHBOUR_BLOCK] @ q.T  # (block rows, n)
            r, i = np.nonzero(block >= floor)
            hit_q.append(i)
            hit_r.append(r + start)
            hit_s.append(block[r, i])
        qs, rs, ss = (np.concatenate(a) if a else np.empty(0) for a in (hit_q, hit_r, hit_s))
        order = np.lexsort((rs, -ss, qs))  # per query: best score first, then row order
        qs, rs = qs[order], rs[order]
        starts = np.searchsorted(qs, np.arange(n))
        return [rs[a : a + k].tolist() for a in starts.tolist()]
