"""IVF arithmetic in Pyodide without numpy: centroids in a ``JsKernel``, batch work in ``ivf_kernel.mjs``.

Why: the browser build opens partitions saved by any writer (the centroids and assignments come from the
snapshot) and only has to assign new rows and rank centroids per query; it trains (k-means in JS) only when it
must, e.g. a bulk load or a restore past the threshold in the page. Row lists and policy stay in
``pyapp.kernels.ivf`` (shared with the server).
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from typing import Any

from ..kernels.base import Buffer, VectorKernel
from ._bridge import js_module, to_i32, to_u8
from .js_kernel import JsKernel, JsRows

MODULE = "clinvec_ivf"
SAMPLE_PER_LIST = 32  # as pyapp.kernels.ivf_numpy
ITERATIONS = 8


class JsCentroids:
    """Unit centroids held by a ``JsKernel`` (its Matrix scores a query against all of them in WASM SIMD)."""

    def __init__(self, data: bytes, nlist: int, dims: int) -> None:
        self.nlist = nlist
        self._kernel = JsKernel(dims)
        self._kernel.load(data, nlist)
        self._mod: Any = js_module(MODULE)

    def nearest(self, data: Buffer, n: int) -> tuple[list[int], list[float]]:
        if n == 0:
            return [], []
        flat = array("d", self._mod.nearest(self._kernel._m, to_u8(data), n).to_bytes())
        return [int(x) for x in flat[0::2]], flat[1::2].tolist()

    def rank(self, query: Buffer) -> list[int]:
        return [row for row, _ in self._kernel.topk(query, self.nlist)]

    def to_bytes(self) -> bytes:
        return self._kernel.to_bytes()

    def list_copies(self) -> JsListCopies:
        return JsListCopies(self._mod.ListStore.new(self.nlist))


class JsListCopies:
    """List rows held by ``ivf_kernel.mjs``'s ``ListStore``: a probe passes list numbers in and gets a ``JsRows``
    (a JS Int32Array) back, which ``JsKernel.topk`` scans without converting it."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def put(self, lst: int, rows: list[int]) -> None:
        self._store.put(lst, to_i32(rows))

    def get(self, lst: int) -> list[int]:
        return array("i", self._store.get(lst).to_bytes()).tolist()

    def gather(self, lists: Sequence[int]) -> JsRows:
        return JsRows(self._store.gather(to_i32(lists)))


class JsIvfMath:
    """``IvfMath`` over the JS kernel."""

    def centroids(self, data: bytes, nlist: int, dims: int) -> JsCentroids:
        return JsCentroids(data, nlist, dims)

    def train(self, kernel: VectorKernel, nlist: int, seed: int) -> JsCentroids:
        n, dims = kernel.size, kernel.dims
        rnd = random.Random(seed)
        m = min(n, SAMPLE_PER_LIST * nlist)
        sample = sorted(rnd.sample(range(n), m)) if m < n else list(range(n))
        data = kernel.get_rows(sample)
        init = to_i32(rnd.sample(range(m), nlist))
        raw = js_module(MODULE).kmeans(to_u8(data), m, dims, nlist, ITERATIONS, init)
        return JsCentroids(bytes(raw.to_bytes()), nlist, dims)

    def neighbours(self, kernel: VectorKernel, queries: bytes, n: int, k: int) -> list[list[int]]:
        """Exact top-``k`` per query, all queries in one call of the kernel's WASM SIMD (``JsKernel.topk_many``).
        This math runs beside a ``JsKernel`` only: ``default_math`` picks it where ``default_kernel`` picks that."""
        assert isinstance(kernel, JsKernel), kernel
        return kernel.topk_many(queries, n, k)
