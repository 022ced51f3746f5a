"""Metadata is plain JSON: validate (and copy) it on the way in, and read values out of it by dotted path.

Validation happens once, when metadata enters an index, so that everything downstream (filters, the
metadata table, every store's encoder, the browser's JSON bridge) can rely on exact JSON types and never
meets NaN, bytes, sets or shared mutable objects owned by the caller.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from .errors import ClinvecError, InvalidInput, InvalidMetadata

MAX_DEPTH = 100
"""Deepest nesting accepted; guards the recursive validators and comparers against stack exhaustion."""

MAX_INT_DIGITS = 4300
"""Longest integer accepted, in decimal digits: CPython's default int<->str limit, which every JSON reader
and writer of the stores meets (Pyodide's too); longer integers are rejected, shorter ones round-trip exactly."""

_INT_BOUND = 10**MAX_INT_DIGITS
_NEG_INT_BOUND = -_INT_BOUND  # precomputed: negating a 4,300-digit int on every check would allocate


def check_no_lone_surrogates(value: str, what: str) -> None:
    """Raise ``InvalidInput`` when ``value`` holds a lone surrogate (``"\\ud800"``).

    Why reject up front: such a string is not Unicode text, so no UTF-8 file, terminal or browser API
    can carry it; accepting it would make export and CLI output fail later, far from the cause.
    """
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what}: holds a lone surrogate {value[exc.start : exc.end]!r} at position {exc.start}; "
            "strings must be valid Unicode text"
        ) from None


def check_int(value: int, what: str, error: type[ClinvecError] = InvalidInput) -> None:
    """Raise ``error`` for an integer longer than ``MAX_INT_DIGITS`` digits (it would not survive JSON)."""
    if not _NEG_INT_BOUND < value < _INT_BOUND:
        raise error(f"{what}: integer has more than {MAX_INT_DIGITS} digits")


def parse_json(text: str | bytes, what: str, error: type[ClinvecError] = InvalidInput) -> Any:
    """``json.loads`` whose every failure is ``error`` naming ``what``: syntax, bad UTF-8, nesting too deep
    for the parser's recursion (``RecursionError``) and integers over Python's digit limit (``ValueError``)."""
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except json.JSONDecodeError as exc:
        raise error(f"{what}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what}: not UTF-8 text (bad byte at offset {exc.start})") from None
    except RecursionError:
        raise error(f"{what}: JSON nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise error(f"{what}: not accepted JSON ({exc})") from None


class _Missing:
    """The value of a path that does not exist (distinct from JSON null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Sentinel returned by :func:`resolve` for a path that is absent; compares equal only to itself."""

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INDEX = re.compile(r"(?:0|[1-9][0-9]*)\Z")


def format_path(root: str, parts: Sequence[str | int]) -> str:
    """Render a location like ``metadata.labs[2]`` for error messages."""
    out = [root]
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif _IDENT.match(p) or (p.startswith("$") and _IDENT.match(p[1:])):
            out.append(f".{p}")
        else:
            out.append(f"[{json.dumps(p)}]")
    return "".join(out)


def _type_name(value: object) -> str:
    return type(value).__name__


def copy_json(value: Any, root: str, error: type[ClinvecError], strict: bool = True) -> Any:
    """Deep-copy ``value`` into exact JSON types, raising ``error`` with the offending path.

    Subclasses of str/int/float/bool/list/dict are converted to the base types and tuples to lists;
    anything else (bytes, sets, NaN/inf, non-str keys, arbitrary objects, cycles, nesting deeper than
    ``MAX_DEPTH``, integers over ``MAX_INT_DIGITS`` digits, strings or keys with lone surrogates) is rejected.
    ``strict=False`` skips the last two checks, for data already stored (an older index may hold them).
    """
    parts: list[str | int] = []
    active: set[int] = set()

    def walk(v: Any, depth: int) -> Any:
        if v is None or v is True or v is False:
            return v
        if isinstance(v, str):
            if strict and not v.isascii():
                _check_text(v, parts, root, error)
            return v if type(v) is str else str.__str__(v)
        if isinstance(v, int):
            if strict and not _NEG_INT_BOUND < v < _INT_BOUND:
                check_int(v, format_path(root, parts), error)
            return v if type(v) is int else int(v)
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise error(f"{format_path(root, parts)}: float {v!r} is not JSON (NaN/inf are not allowed)")
            return v if type(v) is float else float(v)
        if isinstance(v, (list, tuple, dict)):
            if depth >= MAX_DEPTH:
                raise error(f"{format_path(root, parts)}: nested deeper than {MAX_DEPTH} levels")
            if id(v) in active:
                raise error(f"{format_path(root, parts)}: {_type_name(v)} contains itself (cycle)")
            active.add(id(v))
            try:
                if isinstance(v, dict):
                    out: dict[str, Any] = {}
                    for k, item in v.items():
                        if not isinstance(k, str):
                            raise error(f"{format_path(root, parts)}: key {k!r} ({_type_name(k)}) is not a string")
                        if strict and not k.isascii():
                            _check_text(k, parts, root, error, key=True)
                        parts.append(k)
                        out[str.__str__(k)] = walk(item, depth + 1)
                        parts.pop()
                    return out
                items: list[Any] = []
                for i, item in enumerate(v):
                    parts.append(i)
                    items.append(walk(item, depth + 1))
                    parts.pop()
                return items
            finally:
                active.discard(id(v))
        raise error(f"{format_path(root, parts)}: {_type_name(v)} is not JSON")

    return walk(value, 0)


def _check_text(value: str, parts: list[str | int], root: str, error: type[ClinvecError], key: bool = False) -> None:
    where = f"{format_path(root, parts)}: key {value!r}" if key else format_path(root, parts)
    try:
        check_no_lone_surrogates(value, where)
    except InvalidInput as exc:
        raise error(str(exc)) from None


def validate_metadata(obj: Any) -> dict[str, Any]:
    """Return a deep copy of ``obj`` holding only JSON data, or raise ``InvalidMetadata`` naming the path.

    The top level must be an object (dict with string keys). Rejected as well, so that every store,
    export file and terminal can carry what was accepted: nesting deeper than ``MAX_DEPTH`` levels,
    integers longer than ``MAX_INT_DIGITS`` digits, and keys or strings holding lone surrogates.
    """
    if not isinstance(obj, dict):
        raise InvalidMetadata(f"metadata: {_type_name(obj)} is not a JSON object (expected a dict)")
    if _is_flat(obj):  # the common case (flat fields of plain scalars): a shallow copy is a deep copy
        return dict(obj)
    out: dict[str, Any] = copy_json(obj, "metadata", InvalidMetadata)
    return out


_FLAT_TYPES = frozenset((str, int, bool, type(None)))
_SCALAR_TYPES = frozenset((str, int, bool, float, type(None)))


def copy_stored(metadata: dict[str, Any]) -> dict[str, Any]:
    """A private copy of metadata that ``validate_metadata`` already accepted (what the index hands out).

    Flat objects, nearly all of them, are copied shallowly after one C-level type scan; nested ones go
    through ``copy_json``.
    """
    if set(map(type, metadata.values())) <= _SCALAR_TYPES:
        return dict(metadata)
    out: dict[str, Any] = copy_json(metadata, "metadata", InvalidMetadata, strict=False)
    return out


def _is_flat(obj: dict[Any, Any]) -> bool:
    """True when every key is an ASCII str and every value an exact ASCII str, bool, None, finite float or
    an int within ``MAX_INT_DIGITS`` digits (anything else takes the checking path, ``copy_json``)."""
    for key, value in obj.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(value)
        if kind is str:
            if not value.isascii():
                return False
        elif kind is int:
            if not _NEG_INT_BOUND < value < _INT_BOUND:
                return False
        elif kind not in _FLAT_TYPES and not (kind is float and math.isfinite(value)):
            return False
    return True


def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into segments; raises ``ValueError`` for an empty path or empty segment."""
    if not isinstance(path, str):
        raise ValueError(f"path must be a string, got {_type_name(path)}")
    segs = tuple(path.split("."))
    if any(s == "" for s in segs):
        raise ValueError(f"path {path!r} has an empty segment")
    return segs


def list_index(segment: str) -> int:
    """The list index a path segment denotes (canonical decimal, no sign or leading zeros), else -1."""
    return int(segment) if _INDEX.match(segment) else -1


def resolve(metadata: Any, segments: Sequence[str], indexes: Sequence[int] | None = None) -> Any:
    """Value at ``segments`` in ``metadata``, or ``MISSING``. ``indexes`` are precomputed ``list_index`` values.

    A segment looks up a key in an object; on a list, a numeric segment indexes it. Anything else
    (a key on a list or a scalar, an index out of range) means the path is absent.
    """
    cur = metadata
    for i, seg in enumerate(segments):
        if type(cur) is dict:
            cur = cur.get(seg, MISSING)
            if cur is MISSING:
                return MISSING
        elif type(cur) is list:
            idx = indexes[i] if indexes is not None else list_index(seg)
            if idx < 0 or idx >= len(cur):
                return MISSING
            cur = cur[idx]
        else:
            return MISSING
    return cur


def get_path(metadata: dict[str, Any], path: str) -> tuple[bool, Any]:
    """Look up a dotted path (``"patient.age"``, ``"labs.0.value"``): ``(found, value)``.

    ``(False, None)`` when absent; a present JSON null is ``(True, None)``.
    """
    value = resolve(metadata, split_path(path))
    if value is MISSING:
        return False, None
    return True, value
