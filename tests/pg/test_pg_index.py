"""PgIndex beyond the shared contract: what only a database engine has (many writers, transactions that a
killed client or a terminated connection must leave whole, HNSW vs exact search) and its jsonb policy."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import random
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pyapp import (
    DuplicateId,
    IndexExists,
    IndexNotFound,
    InvalidFilter,
    InvalidInput,
    InvalidMetadata,
    PgIndex,
    StorageError,
)
from pyapp.embed import HashingEmbedder

psycopg = pytest.importorskip("psycopg")
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """A fresh event loop in its own thread (Playwright may hold this thread's loop in a mixed session)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def rand_vec(rng: random.Random, dims: int) -> list[float]:
    return [rng.gauss(0, 1) for _ in range(dims)]


def test_lifecycle_errors_and_names(pg_dsn: str) -> None:
    async def go() -> None:
        n = name()
        with pytest.raises(IndexNotFound):
            await PgIndex.open(pg_dsn, n)
        for bad in ("Bad", "a-b", "", "x" * 49, "a;drop"):
            with pytest.raises(InvalidInput):
                await PgIndex.create(pg_dsn, bad, dims=4)
        with pytest.raises(InvalidInput, match="2000"):
            await PgIndex.create(pg_dsn, n, dims=2001)
        idx = await PgIndex.create(pg_dsn, n, dims=4, indexed=["ward"])
        with pytest.raises(IndexExists):
            await PgIndex.create(pg_dsn, n, dims=4)
        assert (await idx.stats())["pgvector"] and (await idx.stats())["kernel"] == "pgvector-hnsw"
        await idx.close()
        await PgIndex.drop(pg_dsn, n)
        assert not await PgIndex.exists(pg_dsn, n)

    run(go())


def test_a_database_without_pgvector_says_what_to_do(pg_dsn: str) -> None:
    if os.environ.get("CLINVEC_PG_DSN"):
        pytest.skip("needs a server where the test may create a database")
    db = f"novec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        other = pg_dsn.replace("/postgres?", f"/{db}?")
        with pytest.raises(StorageError, match="CREATE EXTENSION vector"):
            run(PgIndex.create(other, "x", dims=4))
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{db}"')


def test_jsonb_policy_refuses_what_it_would_change_and_keeps_the_rest_exact(pg_dsn: str) -> None:
    """NUL characters and integers beyond +-2**53 are refused (jsonb cannot hold the first; the second
    would compare with floats unlike Python); -0.0 and key order come back exactly as given."""

    async def go() -> list[str]:
        n = name()
        idx = await PgIndex.create(pg_dsn, n, dims=2)
        try:
            refused = []
            big = {"n": 10**20}
            for call in (
                idx.insert([1, 0], metadata={"x": "a\x00b"}),
                idx.insert([1, 0], metadata={"k\x00": 1}),
                idx.insert([1, 0], metadata={"big": 2**53 + 1}),
                idx.insert([1, 0], metadata={"deep": [{"big": -(2**60)}]}),
                idx.insert_many([{"id": "ok", "vector": [1, 0]}, {"id": "b", "vector": [0, 1], "metadata": big}]),
            ):
                with pytest.raises(InvalidMetadata):
                    await call
                refused.append("InvalidMetadata")
            for call in (idx.insert([1, 0], text="nul\x00"), idx.insert([1, 0], id="nul\x00id")):
                with pytest.raises(InvalidInput):
                    await call
            for flt in ({"n": 2**60}, {"n": {"$in": ["a\x00"]}}):
                with pytest.raises(InvalidFilter):
                    await idx.count(flt)
            assert await idx.count() == 0
            meta = {"z": -0.0, "a": 2**53, "m": {"b": 1, "a": 1.5}}
            await idx.insert([1, 0], metadata=meta, id="exact")
            got = await idx.get("exact")
            assert got is not None and list(got.metadata) == ["z", "a", "m"]
            assert math.copysign(1, got.metadata["z"]) == -1
            assert got.metadata == meta and await idx.count({"z": 0}) == 1 and await idx.count({"a": 2**53}) == 1
            return refused
        finally:
            await idx.close()
            await PgIndex.drop(pg_dsn, n)

    assert len(run(go())) == 5


def test_many_writers_on_one_index_lose_nothing(pg_dsn: str) -> None:
    """Two PgIndex objects (two app servers) write the same index at once: no clinvec lock, no lost write;
    an insert of an id the other took meanwhile is DuplicateId."""

    async def writer(n: str, tag: str, clash: list[str]) -> None:
        idx = await PgIndex.open(pg_dsn, n)
        try:
            for i in range(40):
                await idx.insert([1, i + 1], id=f"{tag}{i}", metadata={"w": tag})
                if i % 10 == 0:
                    async with idx.batch():
                        await idx.upsert(f"shared{i}", [i + 1, 1], metadata={"by": tag})
                try:
                    await idx.insert([1, 1], id=f"race{i}")
                except DuplicateId:
                    clash.append(tag)
        finally:
            await idx.close()

    async def go() -> None:
        n = name()
        await (await PgIndex.create(pg_dsn, n, dims=2)).close()
        clash: list[str] = []
        try:
            await asyncio.gather(writer(n, "a", clash), writer(n, "b", clash))
            idx = await PgIndex.open(pg_dsn, n, read_only=True)
            assert await idx.count({"w": "a"}) == 40 and await idx.count({"w": "b"}) == 40
            assert await idx.count({"by": {"$exists": True}}) == 4
            assert await idx.count() == 40 + 40 + 4 + 40 and len(clash) == 40
            await idx.close()
        finally:
            await PgIndex.drop(pg_dsn, n)

    run(go())


def test_a_batch_is_one_transaction_even_when_its_connection_dies(pg_dsn: str) -> None:
    """Another client sees nothing of a batch before its commit; a batch whose connection is terminated
    (the server restarting, say) fails with StorageError and keeps nothing; the next write reconnects."""

    async def go() -> None:
        n = name()
        idx = await PgIndex.create(pg_dsn, n, dims=2)
        other = await PgIndex.open(pg_dsn, n)
        try:
            async with idx.batch():
                await idx.insert_many([{"id": f"i{k}", "vector": [1, k]} for k in range(20)])
                assert await other.count() == 0
            assert await other.count() == 20
            with pytest.raises(StorageError):
                async with idx.batch():
                    await idx.insert([1, 1], id="lost")
                    pid = idx._writer.info.backend_pid
                    with psycopg.connect(pg_dsn, autocommit=True) as admin:
                        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
                    await idx.insert([1, 2], id="lost2")
            assert await other.get("lost") is None and await other.count() == 20
            await idx.insert([2, 1], id="after")  # reconnects
            assert await other.count() == 21
        finally:
            await idx.close()
            await other.close()
            await PgIndex.drop(pg_dsn, n)

    run(go())


def test_a_killed_client_leaves_no_part_of_its_batch(pg_dsn: str) -> None:
    """SIGKILL a process in the middle of a batch: the database keeps none of it."""
    n = name()
    run(_create(pg_dsn, n))
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from pyapp import PgIndex
        async def main():
            idx = await PgIndex.open({pg_dsn!r}, {n!r})
            async with idx.batch():
                await idx.insert_many([{{"id": f"k{{i}}", "vector": [1, i]}} for i in range(500)])
                print("inserted", flush=True)
                await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "inserted"
        proc.kill()
        proc.wait(30)

        async def check() -> int:
            idx = await PgIndex.open(pg_dsn, n)
            try:
                await idx.insert([1, 1], id="k1")  # no leftover lock or row from the dead client
                return await idx.count()
            finally:
                await idx.close()
                await PgIndex.drop(pg_dsn, n)

        assert run(check()) == 1
    finally:
        if proc.poll() is None:
            proc.kill()


async def _create(dsn: str, n: str, dims: int = 2) -> None:
    await (await PgIndex.create(dsn, n, dims=dims)).close()


def test_hnsw_answers_close_to_exact_and_filtered_queries_fill_top_k(pg_dsn: str) -> None:
    """Above ``exact_below`` queries go through HNSW (strict-order iterative scans): recall against the
    exact scan stays high, a filtered query still returns top_k, a very selective one falls back to exact."""

    async def go() -> dict[str, float]:
        rng = random.Random(7)
        n = name()
        idx = await PgIndex.create(pg_dsn, n, dims=16)
        try:
            await idx.insert_many(
                [{"id": f"i{k}", "vector": rand_vec(rng, 16), "metadata": {"g": k % 10, "k": k}} for k in range(2000)]
            )
            await idx.compact()  # ANALYZE: the planner knows the table's size
            idx.exact_below = 100
            recalls = []
            for _ in range(10):
                q = rand_vec(rng, 16)
                approx = {r.id for r in await idx.query(q, top_k=10)}
                exact = {r.id for r in await idx.query(q, top_k=10, exact=True)}
                recalls.append(len(approx & exact) / 10)
                filtered = await idx.query(q, top_k=10, filter={"g": 3})
                assert len(filtered) == 10 and all(r.item.metadata["g"] == 3 for r in filtered)
                rare = await idx.query(q, top_k=10, filter={"k": {"$in": [5, 700, 1999]}})
                assert sorted(r.id for r in rare) == ["i1999", "i5", "i700"]
            wide = await idx.query(rand_vec(rng, 16), top_k=300)
            assert len(wide) == 300  # top_k above ef_search still fills
            return {"recall": sum(recalls) / len(recalls)}
        finally:
            await idx.close()
            await PgIndex.drop(pg_dsn, n)

    assert run(go())["recall"] >= 0.9


def test_text_is_embedded_by_the_index_embedder(pg_dsn: str) -> None:
    async def go() -> list[str]:
        n = name()
        idx = await PgIndex.create(pg_dsn, n, embedder=HashingEmbedder(dims=32))
        try:
            await idx.insert(text="chest pain radiating to the left arm", id="a")
            await idx.insert(text="fractured femur after a fall", id="b")
            hits = await idx.query(text="chest pain", top_k=2)  # auto: hybrid
            assert hits[0].id == "a" and hits[0].keyword_score and hits[0].vector_score is not None
            return [h.id for h in hits]
        finally:
            await idx.close()
            await PgIndex.drop(pg_dsn, n)

    assert run(go())[0] == "a"


def test_texts_beyond_full_text_limits_still_go_in(pg_dsn: str) -> None:
    """PostgreSQL refuses words over 2,046 bytes and tsvectors over 1 MB; such texts are stored whole and
    found by their other words instead of failing the write."""

    async def go() -> list[str]:
        n = name()
        idx = await PgIndex.create(pg_dsn, n, dims=2)
        try:
            blob = "x" * 5000  # a pasted base64 image, say
            many = " ".join(f"w{k}" for k in range(200_000))  # ~1.4 MB of distinct words
            await idx.insert([1, 0], text=f"sepsis {blob} day 2", id="blob")
            await idx.insert([0, 1], text=f"fever {many}", id="many")
            assert (await idx.get("blob")).text == f"sepsis {blob} day 2"
            assert [h.id for h in await idx.query(text=f"sepsis {blob}", mode="keyword")] == ["blob"]
            return [h.id for h in await idx.query(text="fever w7", mode="keyword")]
        finally:
            await idx.close()
            await PgIndex.drop(pg_dsn, n)

    assert run(go()) == ["many"]
