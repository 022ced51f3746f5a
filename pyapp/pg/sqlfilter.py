"""Compile a checked clinvec filter (``pyapp.filters``) into a PostgreSQL ``WHERE`` clause over a JSONB column.

Why a second compiler and not a translation of the filter spec: ``compile_filter`` has already validated the
spec and rejected unknown operators (``InvalidFilter`` before any SQL is built), and its tree is the one
definition of the semantics; this module walks that tree. Every value travels as a query parameter (``%s``);
the SQL text holds only fixed fragments. Mongo semantics in SQL need care (see docs for ``PgIndex``):

- a missing path is SQL NULL, so every field condition is wrapped in ``COALESCE(..., false)`` and a negation
  (``$ne``/``$nin``/``$not``) of it is true on rows lacking the field, as in ``Filter.matches``;
- ``#>`` indexes arrays with path segments such as ``-1`` or ``01``, which Python treats as absent keys: such
  segments are guarded so that they resolve only on objects;
- comparisons only relate number/number (in float8, exact for the values PgIndex accepts: integers within
  +-2**53) or string/string (``COLLATE "C"``: UTF-8 byte order is code point order, as Python compares);
  casts sit inside ``CASE`` because SQL ``AND`` does not short-circuit;
- jsonb ``=`` is JSON equality (1 = 1.0, true != 1, key order ignored); ``@>`` is used only with scalar
  elements, where it means "has an element equal to", and ``EXISTS`` over the elements otherwise.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..filters import (
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
    is_scalar,
)
from ..metadata import list_index

SQL = tuple[str, list[Any]]
_PG_INT = re.compile(r"\s*[+-]?\d+\s*\Z")  # what jsonb's #> would take as an array subscript
_SQL_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def to_sql(flt: Filter, column: str = "metadata") -> SQL:
    """``(sql, params)``: a boolean SQL expression (never NULL) true exactly where ``flt.matches`` is."""
    return _node(flt.root, column)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _node(node: Node, column: str) -> SQL:
    if isinstance(node, MatchAll):
        return "TRUE", []
    if isinstance(node, FieldNode):
        value = _value(node.segments, column)
        sql, params = _cond(node.cond, value)
        return f"COALESCE(({sql}), FALSE)", params
    if isinstance(node, (AndNode, OrNode)):
        parts = [_node(child, column) for child in node.children]
        joiner = " AND " if isinstance(node, AndNode) else " OR "
        return "(" + joiner.join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    if isinstance(node, NotNode):
        sql, params = _node(node.child, column)
        return f"(NOT {sql})", params
    raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover - the compiler makes no other nodes


def _value(segments: tuple[str, ...], column: str) -> SQL:
    """The jsonb value at a dotted path, NULL when absent (``pyapp.metadata.resolve``'s rules)."""
    guards: list[str] = []
    params: list[Any] = []
    for i, seg in enumerate(segments):
        if list_index(seg) < 0 and _PG_INT.match(seg):
            guards.append(f"jsonb_typeof({column} #> %s::text[]) IS DISTINCT FROM 'array'")
            params.append(list(segments[:i]))
    params.append(list(segments))
    path = f"{column} #> %s::text[]"
    if not guards:
        return path, params
    return f"(CASE WHEN {' AND '.join(guards)} THEN {path} END)", params


def _cond(cond: Cond, value: SQL) -> SQL:
    v, vp = value
    if isinstance(cond, EqCond):
        return _equals(cond.value, value, whole=True)
    if isinstance(cond, InCond):
        if not cond.values:
            return "FALSE", []
        parts = [_equals(x, value, whole=True) for x in cond.values]
        return "(" + " OR ".join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    if isinstance(cond, ExistsCond):
        return (f"({v} IS NOT NULL)" if cond.flag else f"({v} IS NULL)"), list(vp)
    if isinstance(cond, ContainsCond):
        return _equals(cond.value, value, whole=False)
    if isinstance(cond, CmpCond):
        return _compare(cond.op, cond.value, value)
    if isinstance(cond, NotCond):
        sql, params = _cond(cond.inner, value)
        return f"(NOT COALESCE(({sql}), FALSE))", params
    if isinstance(cond, AllCond):
        parts = [_cond(c, value) for c in cond.conds]
        return "(" + " AND ".join(f"COALESCE(({s}), FALSE)" for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    raise TypeError(f"unknown filter condition {cond!r}")  # pragma: no cover


def _equals(x: Any, value: SQL, whole: bool) -> SQL:
    """``$eq`` (``whole``: the value itself or any element of a list value) or ``$contains`` (elements only)."""
    v, vp = value
    if is_scalar(x):
        element = f"(jsonb_typeof({v}) = 'array' AND {v} @> %s::jsonb)"
        element_params = [*vp, *vp, _json([x])]
    else:
        element = (
            f"(CASE WHEN jsonb_typeof({v}) = 'array' THEN EXISTS "
            f"(SELECT 1 FROM jsonb_array_elements({v}) AS e(x) WHERE e.x = %s::jsonb) ELSE FALSE END)"
        )
        element_params = [*vp, *vp, _json(x)]
    if not whole:
        return element, element_params
    if x is None:
        return f"({v} IS NULL OR {v} = 'null'::jsonb OR {element})", [*vp, *vp, *element_params]
    return f"({v} = %s::jsonb OR {element})", [*vp, _json(x), *element_params]


def _compare(op: str, x: int | float | str, value: SQL) -> SQL:
    v, vp = value
    sql_op = _SQL_OPS[op]
    if isinstance(x, str):
        kind, operand = "string", '(%s::text COLLATE "C")'

        def cast(e: str) -> str:
            return f"(({e}) #>> '{{}}') COLLATE \"C\""

    else:
        kind, operand = "number", "%s::float8"
        x = float(x)  # exact: PgIndex accepts integers within +-2**53 only

        def cast(e: str) -> str:
            return f"(({e})::numeric::float8)"

    def one(e: str) -> str:
        return f"CASE WHEN jsonb_typeof({e}) = '{kind}' THEN {cast(e)} {sql_op} {operand} ELSE FALSE END"

    sql = (
        f"(CASE jsonb_typeof({v}) WHEN 'array' THEN EXISTS "
        f"(SELECT 1 FROM jsonb_array_elements({v}) AS e(x) WHERE {one('e.x')}) ELSE {one(v)} END)"
    )
    return sql, [*vp, *vp, x, *vp, *vp, x]


def operands(flt: Filter) -> list[Any]:
    """Every literal operand of a compiled filter (PgIndex checks them against what jsonb can hold)."""
    out: list[Any] = []

    def cond(c: Cond) -> None:
        if isinstance(c, (EqCond, ContainsCond, CmpCond)):
            out.append(c.value)
        elif isinstance(c, InCond):
            out.extend(c.values)
        elif isinstance(c, NotCond):
            cond(c.inner)
        elif isinstance(c, AllCond):
            for inner in c.conds:
                cond(inner)

    def node(n: Node) -> None:
        if isinstance(n, FieldNode):
            out.extend(n.segments)
            cond(n.cond)
        elif isinstance(n, (AndNode, OrNode)):
            for child in n.children:
                node(child)
        elif isinstance(n, NotNode):
            node(n.child)

    node(flt.root)
    return out
