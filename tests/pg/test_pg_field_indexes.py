"""``PgIndex.create(indexed=[...])``: the fields get indexes that the compiled filters use, the answers stay
the same, a filtered vector query still walks HNSW, and the indexes go with the table.

The plans are PostgreSQL's own choice (``EXPLAIN``) on a table large enough that an index pays (10,000 rows,
``ANALYZE``d); the agreement with ``Filter.matches`` is the hypothesis test of ``test_pg_filters`` rerun with
every path indexed.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from test_pg_filters import FIXTURE_OK, PATHS, SPECS, TABLES, check_agreement, conn  # noqa: F401 - a fixture

from pyapp import PgIndex
from pyapp.filters import compile_filter
from pyapp.metadata import split_path
from pyapp.pg import schema
from pyapp.pg.sqlfilter import to_sql

psycopg = pytest.importorskip("psycopg")
N = 10_000
DIMS = 8


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def meta(k: int) -> dict[str, Any]:
    return {"ward": f"w{k % 100}", "k": k, "tags": [f"t{k % 7}", f"t{k % 11}"], "free": k % 3}


@pytest.fixture(scope="module")
def twins(pg_dsn: str) -> Any:
    """Two indexes over the same 10,000 rows: one with ``ward``, ``k`` and ``tags`` indexed, one without."""
    rng = random.Random(5)
    vectors = [[rng.gauss(0, 1) for _ in range(DIMS)] for _ in range(N)]
    names = {"fast": f"fx_{uuid.uuid4().hex[:8]}", "plain": f"fx_{uuid.uuid4().hex[:8]}"}

    async def build() -> None:
        for kind, name in names.items():
            indexed = ["ward", "k", "tags"] if kind == "fast" else []
            idx = await PgIndex.create(pg_dsn, name, dims=DIMS, indexed=indexed)
            await idx.drop_vector_index()
            items = [{"id": f"i{k}", "vector": vectors[k], "metadata": meta(k)} for k in range(N)]
            await idx.insert_many(items)
            if kind == "fast":  # the plain twin only answers filters
                await idx.build_vector_index("64MB", 0)
            await idx.compact()
            await idx.close()

    run(build())
    yield pg_dsn, names, vectors
    for name in names.values():
        run(PgIndex.drop(pg_dsn, name))


FILTERS = [
    {"ward": "w42"},
    {"ward": {"$in": ["w1", "w2", "w3"]}},
    {"k": {"$gte": 9_950}},
    {"k": {"$gt": 100, "$lte": 130}},
    {"k": {"$lt": 40}},
    {"tags": "t3"},
    {"$and": [{"ward": "w7"}, {"k": {"$lt": 5000}}]},
]


async def plan_of(idx: PgIndex, flt: dict[str, Any]) -> str:
    where, params = idx._where(flt)
    rows = await idx._read(f"EXPLAIN SELECT id FROM {schema.table(idx.name)} WHERE {where}", params)
    return "\n".join(r[0] for r in rows)


def test_filters_on_indexed_fields_use_their_indexes_and_answer_the_same(twins: Any) -> None:
    dsn, names, _ = twins

    async def go() -> None:
        fast, plain = await PgIndex.open(dsn, names["fast"]), await PgIndex.open(dsn, names["plain"])
        try:
            for flt in FILTERS:
                explained = await plan_of(fast, flt)
                assert f"clinvec_{names['fast']}_f" in explained, (flt, explained)
                assert "Seq Scan" not in explained, (flt, explained)
                assert "Seq Scan" in await plan_of(plain, flt)  # the twin without indexes scans
                assert [i.id for i in await fast.list(flt)] == [i.id for i in await plain.list(flt)], flt
                assert await fast.count(flt) == await plain.count(flt) > 0, flt
            # a negation or an unindexed field is still answered (row by row), the same on both
            for flt in (
                {"ward": {"$ne": "w3"}},
                {"free": 1},
                {"$not": {"k": {"$gt": 10}}},
                {"$or": [{"ward": "w1"}, {"free": 2}]},
            ):
                assert await fast.count(flt) == await plain.count(flt), flt
        finally:
            await fast.close()
            await plain.close()

    run(go())


def test_a_filtered_vector_query_still_walks_hnsw_with_recall(twins: Any) -> None:
    dsn, names, vectors = twins
    rng = random.Random(9)
    flt = {"ward": {"$in": [f"w{k}" for k in range(10)]}}  # 10 % of the rows

    async def go() -> float:
        idx = await PgIndex.open(dsn, names["fast"])
        try:
            idx.exact_below = 0
            idx.exact_matches_below = 0  # 1,000 matches would be scored exactly (next test): walk the graph here
            where, params = idx._where(flt)
            table = schema.table(idx.name)
            sql = f"EXPLAIN SELECT id FROM {table} WHERE {where} ORDER BY embedding <=> %s::vector LIMIT 10"
            q = [rng.gauss(0, 1) for _ in range(DIMS)]
            plan = "\n".join(r[0] for r in await idx._read(sql, [*params, str(q)]))
            assert f"clinvec_{idx.name}_hnsw" in plan, plan
            found = 0
            for _ in range(20):
                q = [rng.gauss(0, 1) for _ in range(DIMS)]
                approx = await idx.query(q, top_k=10, filter=flt)
                exact = await idx.query(q, top_k=10, filter=flt, exact=True)
                assert len(approx) == 10 and all(r.item.metadata["ward"] in flt["ward"]["$in"] for r in approx)
                found += len({r.id for r in approx} & {r.id for r in exact})
                assert await idx.query(q, top_k=10, filter=flt, nprobe=1) == approx  # nprobe: no effect here
            return found / 200
        finally:
            await idx.close()

    assert run(go()) >= 0.9


WIDE = 768  # vectors this wide live in TOAST: the planner then misprices the graph walk (pyapp/pg/search.py)
ROWS = 10_000


@pytest.fixture(scope="module")
def wide(pg_dsn: str) -> Any:
    """10,000 rows of 768 dims, ``ward`` indexed (10 values: 1,000 rows each), with their HNSW index."""
    rng = random.Random(11)
    centres = [[rng.gauss(0, 1) for _ in range(WIDE)] for _ in range(30)]
    name = f"fw_{uuid.uuid4().hex[:8]}"

    async def build() -> None:
        idx = await PgIndex.create(pg_dsn, name, dims=WIDE, indexed=["ward"])
        await idx.drop_vector_index()
        items = [
            {
                "id": f"i{k}",
                "vector": [x + rng.gauss(0, 0.6) for x in centres[k % 30]],
                "metadata": {"ward": f"w{k % 10}", "k": k},
            }
            for k in range(ROWS)
        ]
        await idx.insert_many(items)
        await idx.build_vector_index("256MB", 0)
        await idx.compact()
        await idx.close()

    run(build())
    yield pg_dsn, name, centres
    run(PgIndex.drop(pg_dsn, name))


def test_filtered_vector_queries_walk_the_graph_unless_the_filter_matches_few_rows(wide: Any) -> None:
    """What PgIndex sends for a filtered vector query over TOASTed vectors: a filter matching at least
    ``exact_matches_below`` rows walks HNSW (PostgreSQL's own plan for that SQL with the settings sent: no Sort
    node; at 200k x 768 the planner used to read every match through the field's index and sort them, 242 ms,
    which this table is too small to reproduce); one matching fewer is scored exactly; the answers fill top_k
    and agree with the exact ones."""
    dsn, name, centres = wide
    rng = random.Random(3)

    async def go() -> None:
        idx = await PgIndex.open(dsn, name)
        sent: list[tuple[str, list[Any], dict[str, str] | None]] = []
        read = idx._session.read

        async def recording(sql: str, params: Any = (), settings: dict[str, str] | None = None) -> Any:
            sent.append((sql, list(params), settings))
            return await read(sql, params, settings)

        idx._session.read = recording  # type: ignore[method-assign]
        try:
            idx.exact_below = 0
            idx.exact_matches_below = 600
            q = [x + rng.gauss(0, 0.6) for x in centres[13]]  # a cluster of ward w3 rows (k % 30 == 13)
            for flt, walks in (({"ward": "w3"}, True), ({"$and": [{"ward": "w3"}, {"k": {"$lt": 5000}}]}, False)):
                sent.clear()
                got = await idx.query(q, top_k=10, filter=flt)
                graph = [c for c in sent if "ORDER BY embedding <=>" in c[0]]
                scored = [c for c in sent if "ORDER BY (embedding <=>" in c[0]]
                assert (bool(graph), bool(scored)) == ((True, False) if walks else (False, True)), (flt, sent)
                exact = await idx.query(q, top_k=10, filter=flt, exact=True)
                assert len(got) == 10 and len({r.id for r in got} & {r.id for r in exact}) >= 8, flt
                if walks:  # the plan PostgreSQL picks for that very query and its settings
                    sql, params, settings = graph[0]
                    planned = "\n".join(r[0] for r in await read("EXPLAIN " + sql, params, settings))
                    assert f"clinvec_{name}_hnsw" in planned and "Sort" not in planned, planned
        finally:
            await idx.close()

    run(go())


def test_field_indexes_are_dropped_with_the_table(pg_dsn: str) -> None:
    name = f"fx_{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[int, int]:
        idx = await PgIndex.create(pg_dsn, name, dims=2, indexed=["a.b", "it's 100%"])
        await idx.insert([1, 0], metadata={"a": {"b": 3}, "it's 100%": "x"}, id="one")
        assert await idx.count({"it's 100%": "x"}) == 1 and await idx.count({"a.b": {"$gt": 2}}) == 1
        like = f"clinvec_{name}_f%"
        before = (await idx._read("SELECT count(*) FROM pg_indexes WHERE indexname LIKE %s", [like]))[0][0]
        await idx.close()
        await PgIndex.drop(pg_dsn, name)
        with psycopg.connect(pg_dsn) as c:
            after = c.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE %s", [like]).fetchone()[0]
        return before, after

    assert run(go()) == (8, 0)


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(rows=TABLES, specs=SPECS)
def test_indexed_forms_agree_with_the_in_memory_filter(conn: Any, rows: list[dict[str, Any]], specs: list[Any]) -> None:  # noqa: F811
    check_agreement(conn, rows, specs, indexed=frozenset(split_path(p) for p in PATHS))


def test_indexed_paths_are_quoted_constants() -> None:
    sql, params = to_sql(compile_filter({"it's": "x"}), indexed=frozenset({("it's",)}))
    assert "ARRAY['it''s']::text[]" in sql and params == ['"x"']
