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

On an ``indexed`` field (``schema.field_indexes``) the path is a SQL constant, so the expression is the index's,
and the conditions an index can answer take that form: ``$eq``/``$in`` of a non-null scalar become ``value @>
scalar`` (true for an equal value or an equal element of a list: the same rule), ranges a comparison of the
value as a number or string (``schema.typed_value``) ORed with the list case. Same rows either way
(tests/pg/test_pg_field_indexes.py reruns the hypothesis test of tests/pg/test_pg_filters.py in these forms).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .. import filters as f
from ..metadata import list_index
from .schema import path_literal, typed_value

SQL = tuple[str, list[Any]]
_PG_INT = re.compile(r"\s*[+-]?\d+\s*\Z")  # what jsonb's #> would take as an array subscript
_SQL_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def to_sql(flt: f.Filter, column: str = "metadata", indexed: frozenset[tuple[str, ...]] = frozenset()) -> SQL:
    """``(sql, params)``: a boolean SQL expression for a ``WHERE`` clause, true exactly where ``flt.matches`` is.

    ``indexed``: the paths (split) that have field indexes. A condition on one that no negation encloses takes
    the indexable form without ``COALESCE`` (an index cannot see through it): there it may be NULL where the
    filter does not match, which a ``WHERE`` treats as false under ``AND``/``OR``. Without ``indexed`` the
    expression is never NULL."""
    return _node(flt.root, column, indexed, True)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _node(node: f.Node, column: str, indexed: frozenset[tuple[str, ...]], positive: bool) -> SQL:
    """``positive``: no negation encloses this node (NULL then acts as false in the ``WHERE``)."""
    if isinstance(node, f.MatchAll):
        return "TRUE", []
    if isinstance(node, f.FieldNode):
        if positive and node.segments in indexed and not _guarded(node.segments):
            value = f"({column} #> {path_literal(node.segments, placeholders=True)})"
            return _cond(node.cond, (value, []), fast=True)
        sql, params = _cond(node.cond, _value(node.segments, column))
        return f"COALESCE(({sql}), FALSE)", params
    if isinstance(node, (f.AndNode, f.OrNode)):
        parts = [_node(child, column, indexed, positive) for child in node.children]
        joiner = " AND " if isinstance(node, f.AndNode) else " OR "
        return "(" + joiner.join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    if isinstance(node, f.NotNode):
        sql, params = _node(node.child, column, indexed, False)
        return f"(NOT {sql})", params
    raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover - the compiler makes no other nodes


def _guarded(segments: tuple[str, ...]) -> bool:
    """Whether a path needs ``_value``'s guards (a segment PostgreSQL would take as an array subscript)."""
    return any(list_index(seg) < 0 and _PG_INT.match(seg) for seg in segments)


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


def _cond(cond: f.Cond, value: SQL, fast: bool = False) -> SQL:
    """``fast``: the value is an indexed field's constant-path expression; use the indexable forms."""
    v, vp = value
    if isinstance(cond, f.EqCond):
        return _equals(cond.value, value, whole=True, fast=fast)
    if isinstance(cond, f.InCond):
        if not cond.values:
            return "FALSE", []
        parts = [_equals(x, value, whole=True, fast=fast) for x in cond.values]
        return "(" + " OR ".join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    if isinstance(cond, f.ExistsCond):
        return (f"({v} IS NOT NULL)" if cond.flag else f"({v} IS NULL)"), list(vp)
    if isinstance(cond, f.ContainsCond):
        return _equals(cond.value, value, whole=False)
    if isinstance(cond, f.CmpCond):
        return _compare(cond.op, cond.value, value, fast)
    if isinstance(cond, f.NotCond):
        sql, params = _cond(cond.inner, value)
        return f"(NOT COALESCE(({sql}), FALSE))", params
    if isinstance(cond, f.AllCond):
        parts = [_cond(c, value, fast) for c in cond.conds]
        each = "({})" if fast else "COALESCE(({}), FALSE)"  # fast: positive, so NULL acts as false
        return "(" + " AND ".join(each.format(s) for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    raise TypeError(f"unknown filter condition {cond!r}")  # pragma: no cover


def _equals(x: Any, value: SQL, whole: bool, fast: bool = False) -> SQL:
    """``$eq`` (``whole``: the value itself or any element of a list value) or ``$contains`` (elements only).

    ``fast`` (indexed field), ``$eq`` of a non-null scalar: jsonb ``@>`` with a scalar on the right is true
    for an equal scalar and for a list with an equal element (not deeper, not in objects): the same rule."""
    v, vp = value
    if fast and whole and x is not None and f.is_scalar(x):
        return f"({v} @> %s::jsonb)", [*vp, _json(x)]
    if f.is_scalar(x):
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


def _compare(op: str, x: int | float | str, value: SQL, fast: bool = False) -> SQL:
    """A range condition: true when the value, or one element of a list value, compares as asked.

    ``fast`` (indexed field, positive context): the plain value's comparison is on ``schema.typed_value``
    (the range B-tree's expression), ORed with the list case (the partial index of list rows)."""
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

    elements = f"EXISTS (SELECT 1 FROM jsonb_array_elements({v}) AS e(x) WHERE {one('e.x')})"
    if fast:
        return f"({typed_value(v, kind)} {sql_op} {operand} OR (jsonb_typeof({v}) = 'array' AND {elements}))", [x, x]
    sql = f"(CASE jsonb_typeof({v}) WHEN 'array' THEN {elements} ELSE {one(v)} END)"
    return sql, [*vp, *vp, x, *vp, *vp, x]


def operands(flt: f.Filter) -> list[Any]:
    """Every literal operand of a compiled filter (PgIndex checks them against what jsonb can hold)."""
    out: list[Any] = []

    def cond(c: f.Cond) -> None:
        if isinstance(c, (f.EqCond, f.ContainsCond, f.CmpCond)):
            out.append(c.value)
        elif isinstance(c, f.InCond):
            out.extend(c.values)
        elif isinstance(c, f.NotCond):
            cond(c.inner)
        elif isinstance(c, f.AllCond):
            for inner in c.conds:
                cond(inner)

    def node(n: f.Node) -> None:
        if isinstance(n, f.FieldNode):
            out.extend(n.segments)
            cond(n.cond)
        elif isinstance(n, (f.AndNode, f.OrNode)):
            for child in n.children:
                node(child)
        elif isinstance(n, f.NotNode):
            node(n.child)

    node(flt.root)
    return out
