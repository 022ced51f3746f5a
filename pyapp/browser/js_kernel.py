"""``JsKernel``: the ``VectorKernel`` for Pyodide without numpy, over a JS ``Float32Array``.

Why: numpy is not loadable from a local Pyodide install (its wheel lives on the Pyodide CDN), and
brute force in pure Python is orders of magnitude slower than JS. All per-element work happens in
``js_kernel.mjs``; Python only moves whole buffers (one typed-array copy per call).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException  # type: ignore[import-not-found]

from ..errors import InvalidVector
from ..kernels.base import Buffer, VectorKernel, pack_rows, reject_booleans
from ._bridge import js_module, to_i32, to_u8

MODULE = "clinvec_kernel"
IN_PLACE_ROWS = 64  # from this many rows prepare normalises in Python's memory (below: the old copy is cheaper)


def _nbytes(data: Buffer) -> int:
    return memoryview(data).nbytes


_FORMAT, _NDIM, _CONTIGUOUS = attrgetter("format"), attrgetter("ndim"), attrgetter("c_contiguous")


def _join_float32(vectors: Sequence[object], dims: int) -> bytearray | None:
    """The vectors joined at C speed when every one is a float32 buffer of ``dims`` values, else None."""
    if not isinstance(vectors, list) or not vectors:
        return None
    kinds = set(map(type, vectors))
    if kinds == {memoryview}:  # the bulk case, checked column-wise in C (ndim before len: a 0-d view has none)
        ok = (
            set(map(_FORMAT, vectors)) == {"f"}
            and set(map(_NDIM, vectors)) == {1}
            and set(map(len, vectors)) == {dims}
            and all(map(_CONTIGUOUS, vectors))
        )
        return bytearray().join(vectors) if ok else None
    for v in vectors:
        kind = type(v)
        if kind is memoryview:
            if v.format != "f" or v.ndim != 1 or len(v) != dims or not v.c_contiguous:  # type: ignore[attr-defined]
                return None
        elif kind is array:
            if v.typecode != "f" or len(v) != dims:  # type: ignore[attr-defined]
                return None
        else:
            return None
    return bytearray().join(vectors)  # type: ignore[arg-type]


class JsRows(Sequence[int]):
    """Ascending row numbers held by JS (an ``Int32Array``): handed back to the kernel without a copy, read in
    Python (one buffer copy) only when a keyword leg needs them."""

    def __init__(self, rows: Any) -> None:
        self.js = rows
        self._py: array | None = None

    def _list(self) -> array:
        if self._py is None:
            self._py = array("i", self.js.to_bytes())
        return self._py

    def __len__(self) -> int:
        return int(self.js.length)

    def __getitem__(self, i: Any) -> Any:
        return self._list()[i]

    def __iter__(self) -> Iterator[int]:
        return iter(self._list())


class JsKernel(VectorKernel):
    """A growable float32 matrix held by JS; cosine top-k computed in JS."""

    keeps_code_columns = True

    def __init__(self, dims: int) -> None:
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        self.dims = dims
        self._mod: Any = js_module(MODULE)
        self._m: Any = self._mod.Matrix.new(dims)
        self._columns: Any = None  # CodeColumns, made on the first filtered query
        self._packed: bytearray | None = None  # pack's last join: prepare may normalise it in place

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
        """Lists of numbers -> float32 bytes at C level (``pack_rows``); booleans found by ``suspectRows`` in JS.

        Vectors that already are float32 buffers (a ``Float32Array``'s bytes as ``memoryview``/``array('f')``)
        are joined as they are: no per-element work in Python, and no boolean can hide in them."""
        joined = _join_float32(vectors, self.dims)
        if joined is not None:
            self._packed = joined  # fresh and ours: prepare may normalise this one in place
            return joined  # type: ignore[return-value]  # a bytes-like buffer
        self._packed = None
        packed = pack_rows(vectors, self.dims).tobytes()
        if packed:
            suspects = self._mod.suspectRows(to_u8(packed), len(packed) // (self.dims * 4), self.dims)
            reject_booleans(vectors, list(suspects.to_py()))
        return packed

    def prepare(self, data: Buffer, n: int) -> bytes:
        """Normalised rows. A bulk call (``IN_PLACE_ROWS`` or more) gets a ``bytearray`` normalised by JS where it
        lies in Python's memory (``prepareInPlace``): no copy into JS and back; ``pack``'s own join is used as is,
        anything else is copied once in Python first, since the caller's buffer must not change."""
        self._check(data, n)
        packed, self._packed = self._packed, None  # never kept past the next prepare (it may be 30 MB)
        if n == 0:
            return b""
        if n >= IN_PLACE_ROWS:
            out = data if type(data) is bytearray and data is packed else bytearray(data)
            self._fail_on(int(self._mod.prepareInPlace(out, n, self.dims)), data)
            return out  # type: ignore[return-value]  # a bytes-like buffer, as the interface promises
        u8 = to_u8(data)
        self._fail_on(int(self._mod.prepare(u8, n, self.dims)), data)
        return u8.to_bytes()

    def _fail_on(self, bad: int, data: Buffer) -> None:
        """Raise for row ``bad`` (-1: every row was fine); rows before it may be normalised, ``bad`` itself is not."""
        if bad >= 0:
            width = self.dims * 4
            row = array("f", bytes(memoryview(data).cast("B")[bad * width : (bad + 1) * width]))
            if not all(math.isfinite(x) for x in row):
                raise InvalidVector(f"vector {bad} contains NaN or infinity")
            raise InvalidVector(f"vector {bad} is all zeros: it has no direction to compare")

    def load(self, data: Buffer, n: int) -> None:
        self._check(data, n)
        self._m.loadPy(data, n)  # read where it lies in Python's memory: one copy, into the matrix

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

    def to_bytes(self) -> Buffer:
        return bytes(self._m.toBytes().to_bytes())

    def _rows_arg(self, rows: Sequence[int] | None) -> Any:
        if rows is None:
            return None
        return rows.js if isinstance(rows, JsRows) else to_i32(rows)

    def select_where(self, luts: Sequence[Any]) -> JsRows | None:
        """The filter's rows picked in JS from copies of the code columns (``CodeColumns``), re-sent only after
        a column changed; the rows stay a JS ``Int32Array`` that ``topk`` scans as is. None: let the table do it."""
        cols = self._columns
        if cols is None:
            cols = self._columns = self._mod.CodeColumns.new()
        uids = js.Array.new()
        tables = js.Array.new()
        for entry in luts:
            col = entry.column
            if int(cols.version(col.uid)) != col.version:
                cols.put(col.uid, col.version, to_u8(entry.codes()))
            uids.push(col.uid)
            tables.push(to_u8(entry.lut))
        try:
            return JsRows(self._mod.selectRows(cols, self.size, uids, tables))
        except JsException:  # a column copy out of step with the matrix: the table's own select answers
            return None

    def topk(self, query: Buffer, k: int, rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        self._check(query, 1)
        if k <= 0 or (rows is not None and len(rows) == 0):
            return []
        try:
            flat = array("d", self._m.topk(to_u8(query), int(k), self._rows_arg(rows)).to_bytes())
        except (JsException, OverflowError) as exc:
            raise IndexError(str(exc)) from None
        return [(int(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]

    def topk_many(self, queries: Buffer, n: int, k: int) -> list[list[int]]:
        """The rows of each prepared query's exact top ``k`` (ties by row: ``topk``'s first ``k``), all queries in
        one JS call that scores blocks of rows against groups of queries (``Matrix.topkMany``)."""
        self._check(queries, n)
        if n == 0:
            return []
        flat = array("i", self._m.topkMany(to_u8(queries), n, int(k)).to_bytes())
        width = len(flat) // n
        return [flat[i * width : (i + 1) * width].tolist() for i in range(n)]

    def scores(self, query: Buffer, rows: Sequence[int]) -> list[float]:
        self._check(query, 1)
        if len(rows) == 0:
            return []
        try:
            return array("d", self._m.scores(to_u8(query), self._rows_arg(rows)).to_bytes()).tolist()
        except (JsException, OverflowError) as exc:
            raise IndexError(str(exc)) from None
