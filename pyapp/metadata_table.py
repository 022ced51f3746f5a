"""Per-row metadata of one index, aligned with the vector kernel's rows, and fast filtering over it.

Rows are dense ``0..n-1`` and deleted by swapping the last row into the hole, exactly like the kernel,
so a row number means the same item in both. Fields listed as ``indexed`` are also kept columnar:
each scalar value is dictionary-encoded into an int32 code column (one code per distinct JSON-equal
scalar, ``1`` and ``1.0`` share one, ``True`` does not) plus, with numpy, a float64 column holding the
numbers (NaN elsewhere). A filter on an indexed field then costs a vectorised compare over codes or
numbers, or one predicate call per *distinct* value; only rows whose value is a list/object (or an int
too large for a float64) are evaluated one by one. Other fields are evaluated per row with the
compiled predicate. Without numpy (the browser build may lack it) the same columns live in
``array('i')`` and everything runs in pure Python with identical results.

Every operation is O(1) amortised per row except ``load`` and ``select``/``count`` (O(n)): codes that
fall out of use are recycled through a free list, so nothing is ever rebuilt in place.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from .errors import InvalidInput, InvalidMetadata, describe
from .filters import (
    AllCond,
    AndNode,
    CmpCond,
    Cond,
    ContainsCond,
    EqCond,
    ExistsCond,
    FieldNode,
    Filter,
    InCond,
    MatchAll,
    Node,
    NotCond,
    NotNode,
    OrNode,
    compile_filter,
    is_scalar,
    scalar_key,
)
from .metadata import MISSING, list_index, resolve, split_path

MISSING_CODE = -1  # the path is absent in this row
COMPLEX_CODE = -2  # list/object value (or an int float64 cannot hold): evaluated per row

_NAN = math.nan
_COLUMN_UIDS = itertools.count(1)


def _load_numpy(use_numpy: bool | None) -> Any:
    """numpy when asked for (``True``) or when importable (``None``); ``None`` for pure Python."""
    if use_numpy is False:
        return None
    try:
        import numpy
    except ImportError:
        if use_numpy:
            raise
        return None
    return numpy


def _float_exact(value: int | float) -> bool:
    """Whether ``value`` survives a trip through float64 unchanged (big ints may not)."""
    if value.__class__ is float:
        return True
    try:
        return float(value) == value
    except OverflowError:
        return False


class _Column:
    """The dictionary-encoded values of one indexed path, one code per row."""

    def __init__(self, path: str, np: Any) -> None:
        self.path = path
        self.segments = split_path(path)
        self.indexes = tuple(list_index(s) for s in self.segments)
        self.np = np
        self.code_of: dict[Any, int] = {}
        self.values: list[Any] = []  # code -> a representative value (None once freed)
        self.refs: list[int] = []  # code -> number of rows holding it; 0 means free
        self.free: list[int] = []
        self.complex: set[int] = set()  # rows with COMPLEX_CODE
        self.n = 0
        self.uid = next(_COLUMN_UIDS)  # names this column in a kernel's copy of the codes
        self.version = 0  # bumped by every change, so a copy of the codes elsewhere (a JS kernel) knows it is stale
        self.codes: Any
        self.num: Any = None
        self._reset_storage(0)

    # ------------------------------------------------------------------ storage

    def _reset_storage(self, capacity: int) -> None:
        if self.np is None:
            self.codes = array("i")
        else:
            cap = max(16, capacity)
            self.codes = self.np.empty(cap, dtype=self.np.int32)
            self.num = self.np.empty(cap, dtype=self.np.float64)

    def _reserve(self, need: int) -> None:
        cap = len(self.codes)
        if need <= cap:
            return
        np = self.np
        new_cap = max(need, cap * 2)
        codes = np.empty(new_cap, dtype=np.int32)
        num = np.empty(new_cap, dtype=np.float64)
        codes[: self.n] = self.codes[: self.n]
        num[: self.n] = self.num[: self.n]
        self.codes, self.num = codes, num

    def _encode(self, metadata: dict[str, Any]) -> tuple[int, float]:
        """The row's code (interning its value) and its float64 number (NaN when not a number)."""
        return self._encode_value(resolve(metadata, self.segments, self.indexes))

    def _encode_value(self, v: Any) -> tuple[int, float]:
        if v is MISSING:
            return MISSING_CODE, _NAN
        t = v.__class__
        if t is list or t is dict:
            return COMPLEX_CODE, _NAN
        if t is int or t is float:
            if not _float_exact(v):
                return COMPLEX_CODE, _NAN
            x = float(v)
        else:
            x = _NAN
        k = scalar_key(v)
        code = self.code_of.get(k)
        if code is None:
            if self.free:
                code = self.free.pop()
                self.values[code] = v
                self.refs[code] = 1
            else:
                code = len(self.values)
                self.values.append(v)
                self.refs.append(1)
            self.code_of[k] = code
        else:
            self.refs[code] += 1
        return code, x

    def _release(self, code: int) -> None:
        if code < 0:
            return
        self.refs[code] -= 1
        if self.refs[code] == 0:
            del self.code_of[scalar_key(self.values[code])]
            self.values[code] = None
            self.free.append(code)

    def append(self, metadata: dict[str, Any]) -> None:
        code, x = self._encode(metadata)
        row = self.n
        self.version += 1
        if self.np is None:
            self.codes.append(code)
        else:
            self._reserve(row + 1)
            self.codes[row] = code
            self.num[row] = x
        if code == COMPLEX_CODE:
            self.complex.add(row)
        self.n = row + 1

    def set(self, row: int, metadata: dict[str, Any]) -> None:
        code, x = self._encode(metadata)  # intern the new value first so an unchanged value keeps its code
        self.version += 1
        self._release(int(self.codes[row]))
        self.codes[row] = code
        if self.np is not None:
            self.num[row] = x
        if code == COMPLEX_CODE:
            self.complex.add(row)
        else:
            self.complex.discard(row)

    def swap_remove(self, row: int) -> None:
        last = self.n - 1
        self.version += 1
        self._release(int(self.codes[row]))
        self.complex.discard(row)
        if row != last:
            self.codes[row] = self.codes[last]
            if self.np is not None:
                self.num[row] = self.num[last]
            if last in self.complex:
                self.complex.discard(last)
                self.complex.add(row)
        if self.np is None:
            self.codes.pop()
        self.n = last

    def load(self, rows: Sequence[dict[str, Any]]) -> None:
        self.version += 1
        self.code_of.clear()
        self.values.clear()
        self.refs.clear()
        self.free.clear()
        self.complex.clear()
        if len(self.segments) == 1:  # a top-level field: one C-level get per row instead of resolve()
            seg = self.segments[0]
            values = [m.get(seg, MISSING) for m in rows]
        else:
            values = [resolve(m, self.segments, self.indexes) for m in rows]
        # Opening an index: intern each distinct str/bool/int once and count the repeats (calling _encode per
        # row was a visible share of the open). Floats and anything else take the general path.
        encoded: list[tuple[int, float]] = []
        memo: dict[tuple[type, Any], tuple[int, float]] = {}
        refs = self.refs
        for v in values:
            t = v.__class__
            if t is str or t is int or t is bool:
                key = (t, v)
                hit = memo.get(key)
                if hit is None:
                    hit = memo[key] = self._encode_value(v)
                elif hit[0] >= 0:
                    refs[hit[0]] += 1
                encoded.append(hit)
            else:
                encoded.append(self._encode_value(v))
        self.complex.update(i for i, (c, _) in enumerate(encoded) if c == COMPLEX_CODE)
        self.n = len(rows)
        if self.np is None:
            self.codes = array("i", [c for c, _ in encoded])
        else:
            self._reset_storage(self.n)
            self.codes[: self.n] = [c for c, _ in encoded]
            self.num[: self.n] = [x for _, x in encoded]

    # ------------------------------------------------------------------ evaluation

    def value_at(self, row: int, rows: Sequence[dict[str, Any]]) -> Any:
        return resolve(rows[row], self.segments, self.indexes)

    def mask(self, cond: Cond, rows: Sequence[dict[str, Any]]) -> Any:
        """numpy bool mask over all rows of ``cond`` applied to this path."""
        np = self.np
        codes = self.codes[: self.n]
        m = self._scalar_mask(cond, codes)
        m &= codes >= 0
        test = cond.test
        if test(MISSING):
            m |= codes == MISSING_CODE
        if self.complex:
            idx = np.fromiter(self.complex, dtype=np.int64, count=len(self.complex))
            m[idx] = np.fromiter((test(self.value_at(i, rows)) for i in idx.tolist()), dtype=bool, count=len(idx))
        return m

    def _scalar_mask(self, cond: Cond, codes: Any) -> Any:
        """A mask that is exact at rows holding a scalar (code >= 0); other rows are fixed up by ``mask``."""
        np = self.np
        n = self.n
        if isinstance(cond, EqCond):
            if not is_scalar(cond.value):
                return np.zeros(n, dtype=bool)  # a scalar never equals a list/object
            code = self.code_of.get(scalar_key(cond.value))
            return np.zeros(n, dtype=bool) if code is None else codes == code
        if isinstance(cond, InCond):
            found = [self.code_of.get(scalar_key(x)) for x in cond.values if is_scalar(x)]
            wanted = sorted({c for c in found if c is not None})
            if not wanted:
                return np.zeros(n, dtype=bool)
            if len(wanted) == 1:
                return codes == wanted[0]
            return np.isin(codes, np.array(wanted, dtype=np.int32))
        if isinstance(cond, CmpCond) and cond.value.__class__ is not str and _float_exact(cond.value):
            num = self.num[:n]
            x = float(cond.value)
            if cond.op == "$gt":
                return num > x
            if cond.op == "$gte":
                return num >= x
            if cond.op == "$lt":
                return num < x
            return num <= x
        if isinstance(cond, NotCond):
            return ~self._scalar_mask(cond.inner, codes)
        if isinstance(cond, AllCond):
            m = self._scalar_mask(cond.conds[0], codes)
            for c in cond.conds[1:]:
                m &= self._scalar_mask(c, codes)
            return m
        if isinstance(cond, ExistsCond):
            return np.full(n, cond.flag, dtype=bool)
        if isinstance(cond, ContainsCond):
            return np.zeros(n, dtype=bool)
        # Anything else (string ranges, big-int operands): one call per distinct live value.
        test = cond.test
        lut = [refs > 0 and test(v) for v, refs in zip(self.values, self.refs, strict=True)]
        lut.extend((False, False))  # codes -2/-1 index these two entries
        return np.array(lut, dtype=bool)[codes]

    def filter_rows(self, cond: Cond, cand: Iterable[int], rows: Sequence[dict[str, Any]]) -> list[int]:
        """Pure-Python: the rows of ``cand`` (in order) whose value satisfies ``cond``."""
        test = cond.test
        codes = self.codes
        values = self.values
        lut: list[bool | None] = [None] * len(values)
        miss = test(MISSING)
        out: list[int] = []
        for i in cand:
            c = codes[i]
            if c >= 0:
                r = lut[c]
                if r is None:
                    r = lut[c] = test(values[c])
                if r:
                    out.append(i)
            elif c == MISSING_CODE:
                if miss:
                    out.append(i)
            elif test(self.value_at(i, rows)):
                out.append(i)
        return out

    def lut(self, cond: Cond) -> bytes | None:
        """One byte per code (1: rows holding it match ``cond``), then MISSING's, then COMPLEX's; None when
        a row holds a list/object (those need the per-row test). The same per-code test as ``filter_rows``."""
        if self.complex:
            return None
        test = cond.test
        out = bytearray(refs > 0 and bool(test(v)) for v, refs in zip(self.values, self.refs, strict=True))
        out += bytes((bool(test(MISSING)), 0))
        return bytes(out)


def _is_cheap(node: Node, columns: dict[str, _Column]) -> bool:
    """True when the node is answered from columns alone (no per-row predicate over every row)."""
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, FieldNode):
        return node.path in columns
    if isinstance(node, (AndNode, OrNode)):
        return all(_is_cheap(c, columns) for c in node.children)
    if isinstance(node, NotNode):
        return _is_cheap(node.child, columns)
    return False


def _scan(node: FieldNode, metas: Sequence[dict[str, Any]]) -> list[int]:
    """Per-row evaluation of a non-indexed field: the positions in ``metas`` that match.

    Top-level fields skip the path walk, and the commonest filters (equality to a string or a bool) are
    inlined with no call per row: that call was a large part of the scan's cost.
    """
    cond = node.cond
    if len(node.segments) == 1:
        key = node.segments[0]
        if isinstance(cond, EqCond):
            x = cond.value
            if x.__class__ is str:  # only a str equals a str: == and list membership are exact here
                return [j for j, m in enumerate(metas) if (v := m.get(key)) == x or (v.__class__ is list and x in v)]
            if x is True or x is False:  # bools are singletons: identity is exact
                return [
                    j
                    for j, m in enumerate(metas)
                    if (v := m.get(key)) is x or (v.__class__ is list and any(e is x for e in v))
                ]
        test = cond.test
        return [j for j, m in enumerate(metas) if test(m.get(key, MISSING))]
    fn = node.matcher()
    return [j for j, m in enumerate(metas) if fn(m)]


class ColumnLut(NamedTuple):
    """One column and which of its codes match (``_Column.lut``): the rows where ``lut[code]`` is 1.

    ``codes()`` gives the code column as int32 bytes; ``column.version`` says when a copy of it went stale."""

    column: _Column
    lut: bytes

    def codes(self) -> bytes:
        col = self.column
        return bytes(memoryview(col.codes)[: col.n].cast("B"))


MAX_AUTO_COLUMNS = 16
"""At most this many non-declared fields are made columnar automatically (about 12 bytes a row each)."""


class MetadataTable:
    """Row-aligned metadata store with columnar indexed fields; see the module docstring.

    The table keeps the dicts it is given (callers pass validated copies and must not mutate them).
    """

    def __init__(self, indexed: Sequence[str] = (), use_numpy: bool | None = None) -> None:
        if isinstance(indexed, str):
            raise InvalidInput("indexed must be a list of field paths, not a string")
        paths: list[str] = []
        for p in indexed:
            try:
                split_path(p)
            except ValueError as exc:
                raise InvalidInput(f"indexed field {p!r}: {exc}") from None
            if p not in paths:
                paths.append(p)
        self._np = _load_numpy(use_numpy)
        self._rows: list[dict[str, Any]] = []
        self._columns: dict[str, _Column] = {p: _Column(p, self._np) for p in paths}
        self._declared = tuple(paths)
        self._auto: list[str] = []

    def _auto_column(self, path: str) -> _Column:
        """Make a field filtered on over the whole table columnar from now on (numpy mode, or for a kernel
        that selects rows itself: ``column_luts``): the first filter on it pays one scan, every later one is
        vectorised. Bounded by ``MAX_AUTO_COLUMNS``."""
        col = _Column(path, self._np)
        col.load(self._rows)
        self._columns[path] = col
        self._auto.append(path)
        return col

    @property
    def indexed(self) -> tuple[str, ...]:
        """The declared columnar field paths, in the order given (automatic columns not included)."""
        return self._declared

    @property
    def uses_numpy(self) -> bool:
        return self._np is not None

    def __len__(self) -> int:
        return len(self._rows)

    def _check_row(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            raise IndexError(f"row {row} out of range 0..{len(self._rows) - 1}")

    @staticmethod
    def _check_metadata(metadata: Any) -> None:
        if metadata.__class__ is not dict:
            raise InvalidMetadata(f"metadata: {type(metadata).__name__} is not a JSON object (expected a dict)")

    def append(self, metadata: dict[str, Any]) -> None:
        """Add a row at the end (row number ``len(self)`` before the call)."""
        self._check_metadata(metadata)
        self._rows.append(metadata)
        for col in self._columns.values():
            col.append(metadata)

    def set(self, row: int, metadata: dict[str, Any]) -> None:
        """Replace one row's metadata."""
        self._check_row(row)
        self._check_metadata(metadata)
        self._rows[row] = metadata
        for col in self._columns.values():
            col.set(row, metadata)

    def swap_remove(self, row: int) -> None:
        """Delete ``row`` by moving the last row into its place (mirrors ``VectorKernel.swap_remove``)."""
        self._check_row(row)
        last = self._rows.pop()
        if row < len(self._rows):
            self._rows[row] = last
        for col in self._columns.values():
            col.swap_remove(row)

    def get(self, row: int) -> dict[str, Any]:
        """The stored metadata of ``row`` (not a copy: do not mutate)."""
        self._check_row(row)
        return self._rows[row]

    def load(self, metadatas: Iterable[dict[str, Any]]) -> None:
        """Replace every row at once (used when an index is opened)."""
        rows = list(metadatas)
        if not all(m.__class__ is dict for m in rows):  # one C-driven pass; the slow loop only names the culprit
            for m in rows:
                self._check_metadata(m)
        self._rows = rows
        for col in self._columns.values():
            col.load(rows)

    # ------------------------------------------------------------------ queries

    def distinct(self, path: str) -> list[Any]:
        """The distinct scalar values stored at ``path`` (first-seen order; lists and objects left out).

        An indexed path answers from its column's dictionary without touching the rows."""
        try:
            segments = split_path(path)
        except ValueError as exc:
            raise InvalidInput(f"field {describe(path)}: {exc}") from None
        col = self._columns.get(path)
        if col is not None:
            return [v for v, refs in zip(col.values, col.refs) if refs > 0]
        indexes = tuple(list_index(s) for s in segments)
        seen: dict[Any, Any] = {}
        for metadata in self._rows:
            v = resolve(metadata, segments, indexes)
            if v is MISSING or v.__class__ is list or v.__class__ is dict:
                continue
            seen.setdefault(scalar_key(v), v)
        return list(seen.values())

    def select(self, flt: Filter | dict[str, Any] | None) -> Sequence[int]:
        """Ascending rows matching ``flt`` (all rows when None): numpy int64 array with numpy, else list."""
        n = len(self._rows)
        np = self._np
        if flt is None:
            return np.arange(n, dtype=np.int64) if np is not None else list(range(n))
        root = compile_filter(flt).root
        if np is not None:
            return np.flatnonzero(self._np_eval(root, None)).astype(np.int64, copy=False)
        return self._py_eval(root, range(n))

    def column_luts(self, flt: Filter) -> list[ColumnLut] | None:
        """The filter as per-column match tables that must all hold, or None when it is not that shape.

        Why: a vector kernel that keeps its own copy of the code columns (the browser's JS kernel) then selects
        the matching rows itself, vectorised, with no per-row crossing of the Python/JS bridge. Only a field
        condition, or an ``$and`` of them, on fields whose rows are all scalars qualifies; a field filtered on
        that is not columnar yet becomes an automatic column (as ``select`` does with numpy)."""
        root = flt.root
        nodes = root.children if isinstance(root, AndNode) else (root,)
        out: list[ColumnLut] = []
        for node in nodes:
            if not isinstance(node, FieldNode):
                return None
            col = self._columns.get(node.path)
            if col is None:
                if len(self._auto) >= MAX_AUTO_COLUMNS:
                    return None
                col = self._auto_column(node.path)
            lut = col.lut(node.cond)
            if lut is None:
                return None
            out.append(ColumnLut(col, lut))
        return out or None

    def count(self, flt: Filter | dict[str, Any] | None) -> int:
        """Number of rows matching ``flt`` (all rows when None)."""
        if flt is None:
            return len(self._rows)
        if self._np is not None:
            return int(self._np_eval(compile_filter(flt).root, None).sum())
        return len(self._py_eval(compile_filter(flt).root, range(len(self._rows))))

    def _ordered(self, children: Sequence[Node]) -> list[Node]:
        """Children answered from columns first, so per-row predicates run on fewer candidates."""
        return sorted(children, key=lambda c: not _is_cheap(c, self._columns))

    def _np_eval(self, node: Node, cand: Any) -> Any:
        """Bool mask of ``node`` over ``cand`` (an int64 row array), or over all rows when ``cand`` is None."""
        np = self._np
        size = len(self._rows) if cand is None else len(cand)
        if isinstance(node, MatchAll):
            return np.ones(size, dtype=bool)
        if isinstance(node, FieldNode):
            col = self._columns.get(node.path)
            if col is None and cand is None and len(self._auto) < MAX_AUTO_COLUMNS:
                col = self._auto_column(node.path)
            if col is not None:
                full = col.mask(node.cond, self._rows)
                return full if cand is None else full[cand]
            rows = self._rows
            metas = rows if cand is None else [rows[i] for i in cand.tolist()]
            mask = np.zeros(size, dtype=bool)
            mask[_scan(node, metas)] = True  # a list of hits then one scatter beats np.fromiter of bools
            return mask
        if isinstance(node, NotNode):
            return ~self._np_eval(node.child, cand)
        if isinstance(node, (AndNode, OrNode)):
            is_and = isinstance(node, AndNode)
            res: Any = None
            for child in self._ordered(node.children):
                if res is None:
                    res = self._np_eval(child, cand)
                elif _is_cheap(child, self._columns):
                    sub = self._np_eval(child, cand)
                    if is_and:
                        res &= sub
                    else:
                        res |= sub
                else:
                    pos = np.flatnonzero(res if is_and else ~res)  # rows still undecided
                    if pos.size == 0:
                        break
                    rows_sub = pos.astype(np.int64) if cand is None else cand[pos]
                    res[pos] = self._np_eval(child, rows_sub)
            return res
        raise TypeError(f"unknown filter node {node!r}")

    def _py_eval(self, node: Node, cand: Sequence[int]) -> list[int]:
        """The rows of ``cand`` (ascending) that match ``node``, in pure Python."""
        if isinstance(node, MatchAll):
            return list(cand)
        if isinstance(node, FieldNode):
            col = self._columns.get(node.path)
            if col is None and cand is None and len(self._auto) < MAX_AUTO_COLUMNS:
                col = self._auto_column(node.path)
            if col is not None:
                return col.filter_rows(node.cond, cand, self._rows)
            rows = self._rows
            if isinstance(cand, range) and len(cand) == len(rows):
                return _scan(node, rows)
            cand = list(cand)
            return [cand[j] for j in _scan(node, [rows[i] for i in cand])]
        if isinstance(node, NotNode):
            hit = set(self._py_eval(node.child, cand))
            return [i for i in cand if i not in hit]
        if isinstance(node, AndNode):
            out = list(cand)
            for child in self._ordered(node.children):
                if not out:
                    break
                out = self._py_eval(child, out)
            return out
        if isinstance(node, OrNode):
            remaining = list(cand)
            hits: set[int] = set()
            for child in self._ordered(node.children):
                if not remaining:
                    break
                got = self._py_eval(child, remaining)
                if got:
                    hits.update(got)
                    remaining = [i for i in remaining if i not in hits]
            return [i for i in cand if i in hits]
        raise TypeError(f"unknown filter node {node!r}")
