"""``JsKernel``: the ``VectorKernel`` for Pyodide without numpy, over a JS ``Float32Array``.

Why: numpy is not loadable from a local Pyodide install (its wheel lives on the Pyodide CDN), and
brute force in pure Python is orders of magnitude slower than JS. All per-element work happens in
``js_kernel.mjs``; Python only moves whole buffers (one typed-array copy per call).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

from pyodide.ffi import JsException  # type: ignore[import-not-found]

from ..errors import InvalidVector
from ..kernels.base import Buffer, VectorKernel, pack_rows, reject_booleans
from ._bridge import js_module, to_i32, to_u8

MODULE = "clinvec_kernel"


def _nbytes(data: Buffer) -> int:
    return memoryview(data).nbytes


class JsKernel(VectorKernel):
    """A growable float32 matrix held by JS; cosine top-k computed in JS."""

    def __init__(self, dims: int) -> None:
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        self.dims = dims
        self._mod: Any = js_module(MODULE)
        self._m: Any = self._mod.Matrix.new(dims)

    @property
    def size(self) -> int:
        return int(self._m.size)

    @property
    def engine(self) -> str:
        """Which loop computes dot products: "wasm-simd" (dims a multiple of 4) or "js"."""
        return str(self._m.engine)

    def _check(self, data: Buffer, n: int) -> None:
        if _nbytes(data) != n * self.dims * 4:
            raise InvalidVector(f"expected {n} x {self.dims} float32 values, got {_nbytes(data) // 4}")

    def _row(self, row: int) -> int:
        if not isinstance(row, int) or not 0 <= row < self.size:
            raise IndexError(f"row {row!r} is out of range (size {self.size})")
        return row

    def pack(self, vectors: Sequence[object]) -> bytes:
        """Lists of numbers -> float32 bytes at C level (``pack_rows``); booleans found by ``suspectRows`` in JS."""
        packed = pack_rows(vectors, self.dims).tobytes()
        if packed:
            suspects = self._mod.suspectRows(to_u8(packed), len(packed) // (self.dims * 4), self.dims)
            reject_booleans(vectors, list(suspects.to_py()))
        return packed

    def prepare(self, data: Buffer, n: int) -> bytes:
        self._check(data, n)
        if n == 0:
            return b""
        u8 = to_u8(data)
        bad = int(self._mod.prepare(u8, n, self.dims))
        if bad >= 0:
            width = self.dims * 4
            row = array("f", bytes(memoryview(data).cast("B")[bad * width : (bad + 1) * width]))
            if not all(math.isfinite(x) for x in row):
                raise InvalidVector(f"vector {bad} contains NaN or infinity")
            raise InvalidVector(f"vector {bad} is all zeros: it has no direction to compare")
        return bytes(u8.to_bytes())

    def load(self, data: Buffer, n: int) -> None:
        self._check(data, n)
        self._m.load(to_u8(data), n)

    def append(self, data: Buffer, n: int) -> None:
        self._check(data, n)
        if n:
            self._m.append(to_u8(data), n)

    def set_row(self, row: int, data: Buffer) -> None:
        self._check(data, 1)
        self._m.setRow(self._row(row), to_u8(data))

    def swap_remove(self, row: int) -> None:
        self._m.swapRemove(self._row(row))

    def get_row(self, row: int) -> bytes:
        return bytes(self._m.getRow(self._row(row)).to_bytes())

    def get_rows(self, rows: Sequence[int]) -> bytes:
        if len(rows) == 0:
            return b""
        try:
            return bytes(self._m.getRows(to_i32(rows)).to_bytes())
        except JsException as exc:
            raise IndexError(str(exc)) from None

    def to_bytes(self) -> bytes:
        return bytes(self._m.toBytes().to_bytes())

    def _rows_arg(self, rows: Sequence[int] | None) -> Any:
        return None if rows is None else to_i32(rows)

    def topk(self, query: Buffer, k: int, rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        self._check(query, 1)
        if k <= 0 or (rows is not None and len(rows) == 0):
            return []
        try:
            flat = array("d", self._m.topk(to_u8(query), int(k), self._rows_arg(rows)).to_bytes())
        except (JsException, OverflowError) as exc:
            raise IndexError(str(exc)) from None
        return [(int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]

    def scores(self, query: Buffer, rows: Sequence[int]) -> list[float]:
        self._check(query, 1)
        if len(rows) == 0:
            return []
        try:
            return array("d", self._m.scores(to_u8(query), self._rows_arg(rows)).to_bytes()).tolist()
        except (JsException, OverflowError) as exc:
            raise IndexError(str(exc)) from None
