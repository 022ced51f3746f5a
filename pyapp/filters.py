"""Metadata filters with MongoDB query semantics, compiled once into a tree of small predicates.

Why compile: a filter is checked against every candidate row, so parsing, validation and operator
dispatch happen once in :func:`compile_filter`; what remains per row is a few closure calls. The tree
(``Filter.root``) is also what :mod:`pyapp.metadata_table` walks to answer indexed fields with columns.

Semantics (MongoDB's, not vectra's): a missing field differs from null except that ``{f: None}`` matches
both; ``$eq``/``$in`` on a list match the whole list or any element, and ``$ne``/``$nin`` are their exact
negations (so they match rows lacking the field); comparisons only relate number/number or string/string
(bool is not a number); ``1 == 1.0`` but ``True != 1``; objects compare equal regardless of key order.
Dotted paths traverse objects and, with a numeric segment, index lists (no implicit fan-out over lists).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import InvalidFilter
from .metadata import MAX_DEPTH, MISSING, copy_json, format_path, list_index, resolve, split_path

Test = Callable[[Any], bool]
Matcher = Callable[[dict[str, Any]], bool]
Parts = list[str | int]


class _BoolKey:
    """Stands in for a bool in hash keys, so that ``True`` and ``1`` (equal in Python) stay distinct."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"<{self.value}>"


TRUE_KEY = _BoolKey(True)
FALSE_KEY = _BoolKey(False)


def scalar_key(value: Any) -> Any:
    """Hashable key under which JSON-equal scalars coincide (``1``/``1.0``) and bools stay apart."""
    if value is True:
        return TRUE_KEY
    if value is False:
        return FALSE_KEY
    return value


def is_scalar(value: Any) -> bool:
    """True for JSON null, bool, number and string."""
    return value is None or value.__class__ in (str, int, float, bool)


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, bool only equals bool, objects ignore key order, lists keep it."""
    ta = a.__class__
    tb = b.__class__
    if ta is list:
        return tb is list and len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        if tb is not dict or len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not json_equal(v, b[k]):
                return False
        return True
    if tb is list or tb is dict:
        return False
    return bool(scalar_key(a) == scalar_key(b))


def _element_equal(x: Any) -> Test:
    """A test for ``e == x`` on a single value (no list expansion), specialised by the operand's type."""
    t = x.__class__
    if x is None:
        return lambda e: e is None
    if t is bool:
        return lambda e: e is x
    if t is str:
        return lambda e: bool(e == x)
    if t is int or t is float:

        def num_eq(e: Any) -> bool:
            te = e.__class__
            return (te is int or te is float) and bool(e == x)

        return num_eq
    return lambda e: json_equal(e, x)


def _any_element(ok: Test) -> Test:
    """A test that a value is a list with an element passing ``ok``: MongoDB's matching into arrays, shared by
    ``$eq``, the comparisons and ``$contains`` (the callers check ``v.__class__ is list`` first where a scalar
    is the common case, so that case pays no extra call)."""

    def test(v: Any) -> bool:
        if v.__class__ is not list:
            return False
        for e in v:
            if ok(e):
                return True
        return False

    return test


# --------------------------------------------------------------------------- field conditions


class Cond:
    """A test of one field's value; ``test`` receives the value or ``MISSING`` when the path is absent."""

    test: Test


class EqCond(Cond):
    """``$eq`` (and the implicit ``{field: value}``): the value, or any element of a list value, equals it."""

    def __init__(self, value: Any) -> None:
        self.value = value
        x = value
        if x is None:

            def test(v: Any) -> bool:
                return v is None or v is MISSING or (v.__class__ is list and None in v)

        elif x.__class__ is str:

            def test(v: Any) -> bool:  # a str only equals a str, so == and `in` are exact here
                return bool(v == x) or (v.__class__ is list and x in v)

        else:
            eq = _element_equal(x)
            in_list = _any_element(eq)

            def test(v: Any) -> bool:
                return eq(v) or (v.__class__ is list and in_list(v))

        self.test = test

    def __repr__(self) -> str:
        return f"EqCond({self.value!r})"


class InCond(Cond):
    """``$in``: ``$eq`` against any of the listed values (scalars by hash lookup)."""

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = list(values)
        keys = {scalar_key(x) for x in self.values if is_scalar(x)}
        compounds = [x for x in self.values if not is_scalar(x)]
        has_none = None in keys

        def compound_hit(v: Any) -> bool:
            for c in compounds:
                if json_equal(v, c):
                    return True
            return False

        def test(v: Any) -> bool:
            if v is MISSING:
                return has_none
            t = v.__class__
            if t is list:
                for e in v:
                    te = e.__class__
                    if te is list or te is dict:
                        if compounds and compound_hit(e):
                            return True
                    elif (TRUE_KEY if e is True else FALSE_KEY if e is False else e) in keys:
                        return True
                return bool(compounds) and compound_hit(v)
            if t is dict:
                return bool(compounds) and compound_hit(v)
            return (TRUE_KEY if v is True else FALSE_KEY if v is False else v) in keys

        self.test = test

    def __repr__(self) -> str:
        return f"InCond({self.values!r})"


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


class CmpCond(Cond):
    """``$gt/$gte/$lt/$lte``: number against number or string against string; a list matches by any element."""

    def __init__(self, op: str, value: int | float | str) -> None:
        self.op = op
        self.value = value
        fn = _COMPARE[op]
        x = value
        if x.__class__ is str:

            def ok(e: Any) -> bool:
                return e.__class__ is str and fn(e, x)

        else:

            def ok(e: Any) -> bool:
                t = e.__class__
                return (t is int or t is float) and fn(e, x)

        in_list = _any_element(ok)

        def test(v: Any) -> bool:
            return in_list(v) if v.__class__ is list else ok(v)

        self.test = test

    def __repr__(self) -> str:
        return f"CmpCond({self.op!r}, {self.value!r})"


class ExistsCond(Cond):
    """``$exists``: the path is present (even as null) or absent."""

    def __init__(self, flag: bool) -> None:
        self.flag = flag
        if flag:
            self.test = lambda v: v is not MISSING
        else:
            self.test = lambda v: v is MISSING

    def __repr__(self) -> str:
        return f"ExistsCond({self.flag!r})"


class ContainsCond(Cond):
    """``$contains``: the value is a list with an element equal to the operand; false on anything else."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.test = _any_element(_element_equal(value))

    def __repr__(self) -> str:
        return f"ContainsCond({self.value!r})"


class NotCond(Cond):
    """Field-level ``$not`` (also ``$ne``/``$nin``): the exact negation, so it matches a missing field."""

    def __init__(self, inner: Cond) -> None:
        self.inner = inner
        t = inner.test
        self.test = lambda v: not t(v)

    def __repr__(self) -> str:
        return f"NotCond({self.inner!r})"


class AllCond(Cond):
    """Several operators on one field (``{"$gte": 1, "$lt": 5}``): all must hold."""

    def __init__(self, conds: Sequence[Cond]) -> None:
        self.conds = list(conds)
        tests = [c.test for c in self.conds]

        def test(v: Any) -> bool:
            for t in tests:
                if not t(v):
                    return False
            return True

        self.test = test

    def __repr__(self) -> str:
        return f"AllCond({self.conds!r})"


# --------------------------------------------------------------------------- row-level nodes


class Node:
    """A predicate over a whole metadata object."""

    def matcher(self) -> Matcher:
        """A fast closure computing this node on one metadata dict."""
        raise NotImplementedError


class MatchAll(Node):
    """The empty filter ``{}``."""

    def matcher(self) -> Matcher:
        return lambda m: True

    def __repr__(self) -> str:
        return "MatchAll()"


class FieldNode(Node):
    """A condition on the value at one dotted path."""

    def __init__(self, path: str, cond: Cond) -> None:
        self.path = path
        self.segments = split_path(path)
        self.indexes = tuple(list_index(s) for s in self.segments)
        self.cond = cond

    def matcher(self) -> Matcher:
        test = self.cond.test
        if len(self.segments) == 1:
            key = self.segments[0]
            return lambda m: test(m.get(key, MISSING))
        segs, idxs = self.segments, self.indexes
        return lambda m: test(resolve(m, segs, idxs))

    def __repr__(self) -> str:
        return f"FieldNode({self.path!r}, {self.cond!r})"


class _Combine(Node):
    """A node over several child filters (``$and``, ``$or``): one place for the children and their repr."""

    def __init__(self, children: Sequence[Node]) -> None:
        self.children = list(children)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.children!r})"


class AndNode(_Combine):
    """``$and`` and the implicit AND across a filter's keys."""

    def matcher(self) -> Matcher:
        fns = [c.matcher() for c in self.children]
        if len(fns) == 2:
            a, b = fns
            return lambda m: a(m) and b(m)

        def fn(m: dict[str, Any]) -> bool:
            for f in fns:
                if not f(m):
                    return False
            return True

        return fn


class OrNode(_Combine):
    """``$or``: any child matches."""

    def matcher(self) -> Matcher:
        fns = [c.matcher() for c in self.children]

        def fn(m: dict[str, Any]) -> bool:
            for f in fns:
                if f(m):
                    return True
            return False

        return fn


class NotNode(Node):
    """Top-level ``$not``: the negation of a whole filter."""

    def __init__(self, child: Node) -> None:
        self.child = child

    def matcher(self) -> Matcher:
        f = self.child.matcher()
        return lambda m: not f(m)

    def __repr__(self) -> str:
        return f"NotNode({self.child!r})"


class Filter:
    """A compiled filter. ``matches`` expects validated metadata (see ``pyapp.metadata.validate_metadata``)."""

    __slots__ = ("root", "paths", "spec", "_fn")

    def __init__(self, root: Node, paths: frozenset[str], spec: dict[str, Any]) -> None:
        self.root = root
        self.paths = paths
        self.spec = spec
        self._fn = root.matcher()

    def matches(self, metadata: dict[str, Any]) -> bool:
        """Whether one item's metadata satisfies the filter."""
        return self._fn(metadata)

    def __repr__(self) -> str:
        return f"Filter({self.spec!r})"


# --------------------------------------------------------------------------- compiler

MAX_FILTER_DEPTH = MAX_DEPTH
"""Deepest filter accepted, counting every object and list level (``{"$and": [...]}`` is two): the compiler
and its cache key are recursive, so a hostile filter must be refused before it exhausts the stack."""

_FIELD_OPS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$not"})
_TOP_OPS = frozenset({"$and", "$or", "$not"})


def _where(parts: Parts) -> str:
    return format_path("filter", parts)


def _operand(value: Any, parts: Parts) -> Any:
    """A literal JSON operand (copied); operator keys inside it are almost surely a mistake, so reject them."""
    out = copy_json(value, _where(parts), InvalidFilter)

    def scan(v: Any, at: Parts) -> None:
        if v.__class__ is dict:
            for k, item in v.items():
                if k.startswith("$"):
                    raise InvalidFilter(
                        f"{_where(at + [k])}: operator {k} inside a literal value; operators apply to fields only"
                    )
                scan(item, at + [k])
        elif v.__class__ is list:
            for i, item in enumerate(v):
                scan(item, at + [i])

    scan(out, parts)
    return out


def _compare_operand(value: Any, parts: Parts) -> int | float | str:
    op = parts[-1]
    if value is True or value is False:
        raise InvalidFilter(f"{_where(parts)}: {op} needs a number or a string, got bool (bool is not a number)")
    if not isinstance(value, (int, float, str)):
        raise InvalidFilter(f"{_where(parts)}: {op} needs a number or a string, got {type(value).__name__}")
    out: int | float | str = copy_json(value, _where(parts), InvalidFilter)
    return out


def _check_depth(parts: Parts) -> None:
    if len(parts) > MAX_FILTER_DEPTH:
        raise InvalidFilter(f"{_where(parts[:8])}...: filter nested deeper than {MAX_FILTER_DEPTH} levels")


def _compile_ops(doc: Mapping[str, Any], parts: Parts) -> Cond:
    """An operator document such as ``{"$gte": 1, "$lt": 5}`` (every key starts with ``$``)."""
    _check_depth(parts)
    conds: list[Cond] = []
    for op, arg in doc.items():
        at = parts + [op]
        if op == "$eq":
            conds.append(EqCond(_operand(arg, at)))
        elif op == "$ne":
            conds.append(NotCond(EqCond(_operand(arg, at))))
        elif op in _COMPARE:
            conds.append(CmpCond(op, _compare_operand(arg, at)))
        elif op in ("$in", "$nin"):
            if not isinstance(arg, (list, tuple)):
                raise InvalidFilter(f"{_where(at)}: {op} needs a list of values, got {type(arg).__name__}")
            cond: Cond = InCond([_operand(x, at + [i]) for i, x in enumerate(arg)])
            conds.append(cond if op == "$in" else NotCond(cond))
        elif op == "$exists":
            if arg is not True and arg is not False:
                raise InvalidFilter(f"{_where(at)}: $exists needs true or false, got {type(arg).__name__}")
            conds.append(ExistsCond(arg))
        elif op == "$contains":
            conds.append(ContainsCond(_operand(arg, at)))
        elif op == "$not":
            if not isinstance(arg, dict):
                raise InvalidFilter(
                    f'{_where(at)}: $not on a field needs an operator document such as {{"$gt": 5}}, '
                    f"got {type(arg).__name__}"
                )
            conds.append(NotCond(_compile_operator_doc(arg, at, "$not")))
        elif op in _TOP_OPS:
            raise InvalidFilter(f"{_where(at)}: {op} is only allowed at the top level of a filter, not on a field")
        else:
            raise InvalidFilter(f"{_where(at)}: unknown operator {op}")
    return conds[0] if len(conds) == 1 else AllCond(conds)


def _check_keys(doc: Mapping[Any, Any], parts: Parts) -> None:
    for k in doc:
        if not isinstance(k, str):
            raise InvalidFilter(f"{_where(parts)}: key {k!r} ({type(k).__name__}) is not a string")


def _compile_operator_doc(doc: Mapping[str, Any], parts: Parts, owner: str) -> Cond:
    """The argument of a field-level ``$not``: a non-empty document of operators only."""
    _check_keys(doc, parts)
    if not doc:
        raise InvalidFilter(f"{_where(parts)}: {owner} needs at least one operator")
    plain = [k for k in doc if not k.startswith("$")]
    if plain:
        raise InvalidFilter(
            f"{_where(parts)}: {owner} on a field takes operators only (such as $gt), found plain key {plain[0]!r}"
        )
    return _compile_ops(doc, parts)


def _compile_field(value: Any, parts: Parts) -> Cond:
    """The value of a field key: an operator document, or a literal meaning equality."""
    if isinstance(value, dict):
        _check_keys(value, parts)
        ops = [k for k in value if k.startswith("$")]
        if ops:
            plain = [k for k in value if not k.startswith("$")]
            if plain:
                raise InvalidFilter(
                    f"{_where(parts)}: cannot mix operators ({', '.join(ops)}) with plain keys "
                    f'({", ".join(repr(k) for k in plain)}); use {{"$eq": {{...}}}} to match an object'
                )
            return _compile_ops(value, parts)
    return EqCond(_operand(value, parts))


def _compile_doc(doc: Any, parts: Parts, paths: set[str]) -> Node:
    _check_depth(parts)
    if not isinstance(doc, dict):
        raise InvalidFilter(f"{_where(parts)}: a filter must be an object (dict), got {type(doc).__name__}")
    _check_keys(doc, parts)
    nodes: list[Node] = []
    for key, value in doc.items():
        at = parts + [key]
        if key.startswith("$"):
            if key in ("$and", "$or"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise InvalidFilter(f"{_where(at)}: {key} needs a non-empty list of filters")
                children = [_compile_doc(item, at + [i], paths) for i, item in enumerate(value)]
                nodes.append(AndNode(children) if key == "$and" else OrNode(children))
            elif key == "$not":
                nodes.append(NotNode(_compile_doc(value, at, paths)))
            elif key in _FIELD_OPS:
                raise InvalidFilter(
                    f'{_where(at)}: {key} must be applied to a field, as in {{"field": {{"{key}": ...}}}}'
                )
            else:
                raise InvalidFilter(f"{_where(at)}: unknown operator {key}")
        else:
            try:
                split_path(key)
            except ValueError as exc:
                raise InvalidFilter(f"{_where(at)}: bad field path: {exc}") from None
            nodes.append(FieldNode(key, _compile_field(value, at)))
            paths.add(key)
    if not nodes:
        return MatchAll()
    return nodes[0] if len(nodes) == 1 else AndNode(nodes)


def compile_filter(spec: Mapping[str, Any] | Filter) -> Filter:
    """Validate and compile a MongoDB-style filter; raises ``InvalidFilter`` saying what and where.

    A ``Filter`` is returned as is, so callers may accept either form. Filters nested deeper than
    ``MAX_FILTER_DEPTH`` levels are rejected.
    """
    if isinstance(spec, Filter):
        return spec
    key = _freeze(spec)
    if key is not None:
        cached = _COMPILED.get(key)
        if cached is not None:
            return cached
    paths: set[str] = set()
    root = _compile_doc(spec, [], paths)
    compiled = Filter(root, frozenset(paths), copy_json(spec, "filter", InvalidFilter))
    if key is not None:
        if len(_COMPILED) >= _CACHE_SIZE:
            _COMPILED.pop(next(iter(_COMPILED)))  # oldest first: dicts keep insertion order
        _COMPILED[key] = compiled
    return compiled


# Compiled filters by structure: an application sends the same few filters over and over, and compiling
# one costs as much as scoring a small index's vectors. Only plain JSON is cached, keyed with its types, so
# 1, 1.0 and True (or "1" and 1 as keys) never share an entry and anything unusual is compiled afresh.
_CACHE_SIZE = 256
_COMPILED: dict[Any, Filter] = {}
_PLAIN = (str, int, float, bool, type(None))


def _freeze(value: Any, depth: int = 0) -> Any:
    """A hashable, type-exact image of plain JSON ``value``; None when it holds anything else or is nested
    deeper than ``MAX_FILTER_DEPTH`` (the compiler then rejects it)."""
    if depth > MAX_FILTER_DEPTH:
        return None
    kind = type(value)
    if kind is dict:
        items = []
        for k, v in value.items():
            if type(k) is not str:
                return None
            frozen = _freeze(v, depth + 1)
            if frozen is None:
                return None
            items.append((k, frozen))
        return ("d", tuple(items))
    if kind is list or kind is tuple:
        out = []
        for v in value:
            frozen = _freeze(v, depth + 1)
            if frozen is None:
                return None
            out.append(frozen)
        return ("l" if kind is list else "t", tuple(out))
    if kind in _PLAIN:
        if kind is float and value != value:
            return ("nan",)  # NaN != NaN would make every lookup miss
        return (kind.__name__, value)
    return None
