"""The vector kernel interface: all per-element vector math lives behind it.

One implementation per environment (httpx transports style): ``numpy_kernel`` for CPython and for
Pyodide when numpy loads, ``pyapp.browser.js_kernel`` over a JS ``Float32Array`` when it does not.
The core never loops over vector elements in Python.

Vectors cross this interface as raw little-endian float32 bytes (``bytes``/``memoryview``/``array('f')``):
the one format numpy, JS typed arrays and the stores all read without conversion.
Rows are dense ``0..size-1``; deleting swaps the last row into the hole (O(dims), not O(n*dims)).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from collections.abc import Sequence
from typing import Any

from ..errors import DimensionMismatch, InvalidVector

Buffer = bytes | bytearray | memoryview


def pack_rows(vectors: Sequence[Any], dims: int) -> array:
    """float32 values of list-like vectors at C speed (``array.fromlist``, which refuses str, bytes and None
    where numpy would parse a numeric string). Booleans pass here: see ``reject_booleans``."""
    if isinstance(vectors, (str, bytes, bytearray, dict)) or not hasattr(vectors, "__len__"):
        raise InvalidVector("vectors must be a list of vectors")
    out = array("f")
    for i, vector in enumerate(vectors):
        if type(vector) is not list:
            if type(vector) is array and vector.typecode == "f":  # float32 already (a bundle's rows): memcpy
                if len(vector) != dims:
                    raise DimensionMismatch(f"vector {i} has {len(vector)} dimensions; the index has {dims}")
                out.extend(vector)
                continue
            if isinstance(vector, (str, bytes, bytearray, dict)) or not hasattr(vector, "__len__"):
                raise InvalidVector(f"vector {i} is not a list of numbers")
            vector = list(vector)
        if len(vector) != dims:
            raise DimensionMismatch(f"vector {i} has {len(vector)} dimensions; the index has {dims}")
        try:
            out.fromlist(vector)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidVector(f"vector {i} holds a value that is not a number ({exc})") from None
    return out


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")  # numpy's bool scalar too


def reject_booleans(vectors: Sequence[Any], suspects: Sequence[int]) -> None:
    """``InvalidVector`` if a suspect vector (one holding an exact 0 or 1: what a boolean converts to) holds a
    boolean. Only suspects are looked at element by element, so real embeddings cost nothing here."""
    for i in suspects:
        if any(map(_is_boolean, vectors[int(i)])):
            raise InvalidVector(f"vector {int(i)} holds a boolean; vector components must be numbers")


class VectorKernel(ABC):
    """A growable float32 matrix of L2-normalised rows plus cosine top-k over it."""

    dims: int
    keeps_code_columns = False  # True: ``select_where`` answers filters (see there)

    def pack(self, vectors: Sequence[Any]) -> Buffer:
        """Turn user vectors (lists of numbers, arrays) into float32 bytes, checking every length and value.

        Raises ``DimensionMismatch`` or ``InvalidVector`` naming the first bad vector: strings (numeric or
        not), booleans and None are not numbers. Kernels may override it with a faster path.
        """
        out = pack_rows(vectors, self.dims)
        reject_booleans(vectors, [i for i, v in enumerate(vectors) if 0.0 in v or 1.0 in v])
        return out.tobytes()

    def get_rows(self, rows: Sequence[int]) -> bytes:
        """Many rows back to back as float32 bytes: one call (one bridge crossing in the browser) per listing."""
        return b"".join(self.get_row(int(r)) for r in rows)

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of rows."""

    @abstractmethod
    def prepare(self, data: Buffer, n: int) -> Buffer:
        """Validate ``n`` rows (finite, non-zero) and return them L2-normalised.

        Rows whose norm is already within 1e-6 of 1 are returned bit-identical (re-import stays exact).
        A writable ``data`` may be normalised in place: callers pass buffers they own (``pack``'s, an embedder's).

        Raises ``InvalidVector`` naming the first bad row; never touches the matrix.
        """

    @abstractmethod
    def load(self, data: Buffer, n: int) -> None:
        """Replace the whole matrix with ``n`` prepared rows (used on open)."""

    @abstractmethod
    def append(self, data: Buffer, n: int) -> None:
        """Append ``n`` prepared rows at the end."""

    @abstractmethod
    def set_row(self, row: int, data: Buffer) -> None:
        """Overwrite one row with a prepared vector."""

    @abstractmethod
    def swap_remove(self, row: int) -> None:
        """Delete ``row`` by moving the last row into its place."""

    @abstractmethod
    def get_row(self, row: int) -> bytes:
        """One row as float32 bytes."""

    @abstractmethod
    def to_bytes(self) -> Buffer:
        """The whole matrix, rows in order, as float32 bytes (for snapshots)."""

    @abstractmethod
    def topk(self, query: Buffer, k: int, rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Cosine top-k of a prepared query over ``rows`` (all rows when None).

        Returns ``(row, score)`` pairs, best first, and also every row tied with the k-th score, so
        the caller can break ties by insertion order exactly. ``k >= candidates`` returns all of them.
        """

    def select_where(self, luts: Sequence[Any]) -> Sequence[int] | None:
        """Ascending rows where every column match table of ``MetadataTable.column_luts`` holds, selected by the
        kernel itself; None (the default) when it keeps no copy of the code columns and the table selects.

        Why: the browser's JS kernel would otherwise get the filter's rows from a pure-Python scan; with the codes
        on its side of the bridge the filter is one vectorised loop next to the vectors it narrows.
        """
        return None

    @abstractmethod
    def scores(self, query: Buffer, rows: Sequence[int]) -> list[float]:
        """Cosine scores of a prepared query against the given rows (for hybrid re-scoring)."""
