"""The SQL that ``pyapp.pg.sqlfilter`` compiles selects exactly the rows ``Filter.matches`` selects.

Hypothesis draws random metadata (nested objects and lists, nulls, bools, ints, floats, odd strings) and
random filters over paths that hit the traps of JSONB (``a.0`` on lists and objects, ``-1``/``01``
segments, missing fields under negation, bool vs number, string order); PostgreSQL evaluates the compiled
SQL over the rows sent as one ``unnest`` (no table, so an example costs one round trip) and must answer
what the in-memory filter answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp.filters import compile_filter
from pyapp.metadata import validate_metadata
from pyapp.pg.sqlfilter import to_sql

psycopg = pytest.importorskip("psycopg")

KEYS = ["a", "b", "0", "x"]
PATHS = ["a", "b", "a.0", "a.1", "a.x", "a.-1", "a.01", "b.x.0", "0", "a.b", "x"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([2**53, -(2**53), 0.5, -0.0, 1.0, 2.5, 1e300]),
    st.sampled_from(["", "a", "B", "ab", "é", "\U0001f600", "Z", "10", "9"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=8,
)
metadata = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)
operand = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.sampled_from(KEYS), scalars, max_size=2))
comparable = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2**53, "a", "", "B", "é"]))


def field_conditions() -> st.SearchStrategy[Any]:
    one = st.one_of(
        operand,  # implicit $eq
        st.builds(lambda v: {"$eq": v}, operand),
        st.builds(lambda v: {"$ne": v}, operand),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), comparable),
        st.builds(lambda v: {"$in": v}, st.lists(operand, max_size=3)),
        st.builds(lambda v: {"$nin": v}, st.lists(operand, max_size=3)),
        st.builds(lambda b: {"$exists": b}, st.booleans()),
        st.builds(lambda v: {"$contains": v}, operand),
        st.builds(lambda op, v: {"$not": {op: v}}, st.sampled_from(["$gt", "$lte", "$eq"]), comparable),
        st.builds(lambda lo, hi: {"$gte": lo, "$lt": hi}, st.integers(-3, 3), st.integers(-3, 3)),
    )
    return one


leaf = st.builds(lambda path, cond: {path: cond}, st.sampled_from(PATHS), field_conditions())
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda f: {"$not": f}, inner),
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def conn(pg_dsn: str) -> Iterator[Any]:
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        yield connection


def matching_in_sql(
    conn: Any, rows: list[dict[str, Any]], spec: dict[str, Any], indexed: frozenset[tuple[str, ...]] = frozenset()
) -> list[int]:
    sql, params = to_sql(compile_filter(spec), indexed=indexed)
    query = (
        "SELECT n FROM unnest(%s::int[], %s::jsonb[]) AS r(n, metadata) "  # noqa: S608 - fixed SQL, values bound
        f"WHERE {sql} ORDER BY n"
    )
    texts = [json.dumps(m) for m in rows]
    return [n for (n,) in conn.execute(query, [list(range(len(rows))), texts, *params]).fetchall()]


def check_agreement(
    conn: Any, rows: list[dict[str, Any]], specs: list[Any], indexed: frozenset[tuple[str, ...]] = frozenset()
) -> None:
    """``indexed``: paths compiled in their indexed-field forms (tests/pg/test_pg_field_indexes.py)."""
    rows = [validate_metadata(m) for m in rows]
    for spec in specs:
        try:
            compiled = compile_filter(spec)
        except Exception:  # noqa: BLE001 - a random spec may be invalid (e.g. a literal with a $ key): not this test's
            continue
        expected = [n for n, m in enumerate(rows) if compiled.matches(m)]
        assert matching_in_sql(conn, rows, spec, indexed) == expected, (spec, rows)


TABLES = st.lists(metadata, min_size=1, max_size=12)
SPECS = st.lists(filters, min_size=1, max_size=4)
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=TABLES, specs=SPECS)
def test_compiled_sql_agrees_with_the_in_memory_filter(conn: Any, rows: list[dict[str, Any]], specs: list[Any]) -> None:
    check_agreement(conn, rows, specs)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=TABLES, specs=SPECS)
def test_compiled_sql_agrees_deeply(conn: Any, rows: list[dict[str, Any]], specs: list[Any]) -> None:
    check_agreement(conn, rows, specs)


def test_the_contract_filter_table_in_sql(conn: Any) -> None:
    """The contract's hand-written operator table, row by row (a fixed, readable subset of the above)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contract"))
    import cases

    rows = [validate_metadata(m) for m in cases.PATIENTS]
    for spec, want in cases.FILTER_TABLE:
        assert matching_in_sql(conn, rows, spec) == want, spec


def test_values_are_parameters_never_sql_text() -> None:
    """A hostile string in a filter travels as a parameter: the SQL text is the same for any value."""
    evil = "x'; DROP TABLE clinvec_indexes; --"
    sql_a, params_a = to_sql(compile_filter({"ward": evil, "n": {"$gt": "'"}}))
    sql_b, params_b = to_sql(compile_filter({"ward": "ICU", "n": {"$gt": "b"}}))
    assert sql_a == sql_b and "DROP" not in sql_a and any(evil in str(p) for p in params_a)
    path_sql, _ = to_sql(compile_filter({"a'b": 1}))
    assert "a'b" not in path_sql
