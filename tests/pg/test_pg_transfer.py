"""Moving data: a LocalIndex's bundle (``python -m pyapp bundle export``) loads into PostgreSQL with
``python -m pyapp pg load``, and a filtered part of a PgIndex exports (``pg export --filter``) as a bundle
that a LocalIndex restores exactly (the page restores the same bytes: tests/test_backup_*.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import os
import subprocess
import sys
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pyapp import LocalIndex, PgIndex
from pyapp.bundle import BundleError, create_from_bundle
from pyapp.filters import compile_filter

pytest.importorskip("psycopg")
T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]


def run(coro: Coroutine[Any, Any, T]) -> T:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pyapp", *args], capture_output=True, text=True, env=env, timeout=120)


def items(n: int) -> list[dict[str, Any]]:
    wards = ["ICU", "ED", "ward-3"]
    return [
        {
            "id": f"n{k:03d}",
            "vector": [((k * 7 + d * 3) % 11) - 5 + 0.5 for d in range(8)],
            "metadata": {"ward": wards[k % 3], "age": 20 + k % 60, "tags": ["a", k % 4], "z": -0.0},
            "text": None if k % 5 == 0 else f"note {k}: chest pain, dyspnoea and fever day {k % 9}",
        }
        for k in range(n)
    ]


def snapshot(found: list[Any]) -> list[Any]:
    return [(i.id, [round(x, 6) for x in i.vector], i.metadata, i.text) for i in found]


def test_local_bundle_loads_into_postgres_and_a_filtered_part_comes_back(pg_dsn: str, tmp_path: Path) -> None:
    local_dir = tmp_path / "local"
    bundle = tmp_path / "all.clinvec"
    name = f"tr_{uuid.uuid4().hex[:10]}"

    async def build_local() -> list[Any]:
        idx = await LocalIndex.create(str(local_dir), dims=8, indexed=["ward"])
        await idx.insert_many(items(150))
        await idx.delete_many(["n003", "n004"])
        await idx.upsert("n010", [1, 2, 3, 4, 5, 6, 7, 8], metadata={"ward": "ICU", "moved": True})
        expected = snapshot(await idx.list())
        await idx.close()
        return expected

    expected = run(build_local())
    done = cli("bundle", "export", str(local_dir), str(bundle))
    assert done.returncode == 0, done.stderr
    loaded = cli("pg", "load", pg_dsn, name, str(bundle))
    assert loaded.returncode == 0, loaded.stderr
    assert "created and loaded" in loaded.stdout and "148 items" in loaded.stdout
    try:

        async def check_pg() -> None:
            idx = await PgIndex.open(pg_dsn, name)
            try:
                assert snapshot(await idx.list()) == expected  # ids, insertion order, vectors, -0.0, texts
                hnsw = await idx._read("SELECT count(*) FROM pg_indexes WHERE indexname = %s", [f"clinvec_{name}_hnsw"])
                assert hnsw[0][0] == 1  # dropped for the load, built once after it
                assert idx.indexed == ["ward"] and await idx.count({"ward": "ICU"}) == 50
            finally:
                await idx.close()

        run(check_pg())
        again = cli("pg", "load", pg_dsn, name, str(bundle))  # insert mode: every id clashes, nothing changes
        assert again.returncode != 0 and "already exists" in again.stderr
        assert cli("pg", "load", pg_dsn, name, str(bundle), "--mode", "upsert").returncode == 0

        part = tmp_path / "icu.clinvec"
        exported = cli("pg", "export", pg_dsn, name, str(part), "--filter", '{"ward": "ICU", "age": {"$lt": 50}}')
        assert exported.returncode == 0, exported.stderr

        async def restore_locally() -> None:
            with open(part, "rb") as fileobj:
                idx = await create_from_bundle(str(tmp_path / "restored"), fileobj)
            try:
                wanted = compile_filter({"ward": "ICU", "age": {"$lt": 50}})
                want = [row for row in expected if wanted.matches(row[2])]
                assert want and snapshot(await idx.list()) == want
                assert idx.indexed == ["ward"]
            finally:
                await idx.close()

        run(restore_locally())
    finally:
        run(PgIndex.drop(pg_dsn, name))


def test_a_damaged_bundle_loads_nothing(pg_dsn: str, tmp_path: Path) -> None:
    """The sha256 is checked before the transaction commits: a flipped byte near the end leaves no index."""
    src = tmp_path / "src"
    good = tmp_path / "good.clinvec"

    async def build() -> None:
        idx = await LocalIndex.create(str(src), dims=8)
        await idx.insert_many(items(40))
        await idx.close()

    run(build())
    assert cli("bundle", "export", str(src), str(good)).returncode == 0
    raw = bytearray(gzip.decompress(good.read_bytes()))
    raw[-40] ^= 0xFF  # inside the last frames: the damage is only found at the end
    bad = tmp_path / "bad.clinvec"
    bad.write_bytes(gzip.compress(bytes(raw)))
    name = f"tr_{uuid.uuid4().hex[:10]}"

    async def load() -> bool:
        from pyapp.pg.transfer import load_bundle

        with open(bad, "rb") as fileobj, pytest.raises(BundleError):
            await load_bundle(pg_dsn, name, fileobj)
        return await PgIndex.exists(pg_dsn, name)

    assert run(load()) is False
