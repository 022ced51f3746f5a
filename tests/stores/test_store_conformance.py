"""The store conformance suite (``store_cases.py``) on CPython: memory and file stores, plain and wrapped.

The same cases run inside Chromium against ``IndexedDBStore`` (``tests/browser/test_idb_store.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from pathlib import Path

import pytest
import store_cases

from pyapp.stores import FaultyStore, MemoryStore, Store, memory
from pyapp.stores.file import FRAME, FileStore, generation_files


class MemoryHarness:
    """Fresh ``memory://`` names; damage is done to the registry's stored bytes."""

    def location(self) -> str:
        return f"conformance-{uuid.uuid4().hex}"

    def store(self, location: str) -> Store:
        return MemoryStore(location)

    async def damage_log(self, location: str, index: int) -> None:
        stored = memory._REGISTRY[location]
        stored.log[index] = b"\xff" + stored.log[index][1:]

    async def damage_rows(self, location: str) -> None:
        stored = memory._REGISTRY[location]
        stored.rows = b"\xff" + stored.rows[1:]


class SharedMemoryHarness(MemoryHarness):
    """``MemoryStore(name, shared_writers=True)``: the IndexedDB store's multi-writer model, on CPython."""

    def store(self, location: str) -> Store:
        return MemoryStore(location, shared_writers=True)


class FileHarness:
    """Fresh folders under a pytest tmp_path; damage is done to the files in place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self) -> str:
        return str(self.root / uuid.uuid4().hex)

    def store(self, location: str) -> Store:
        return FileStore(location)

    @staticmethod
    def _generation(location: str) -> int:
        return int(FileStore(location)._read_pointer()["generation"])

    async def damage_log(self, location: str, index: int) -> None:
        path = os.path.join(location, generation_files(self._generation(location))[2])
        data = bytearray(Path(path).read_bytes())
        pos = 0
        for _ in range(index):
            _, length, _ = FRAME.unpack_from(data, pos)
            pos += FRAME.size + length
        data[pos + FRAME.size] = 0xFF
        Path(path).write_bytes(bytes(data))

    async def damage_rows(self, location: str) -> None:
        path = os.path.join(location, generation_files(self._generation(location))[1])
        data = bytearray(Path(path).read_bytes())
        data[0] = 0xFF
        Path(path).write_bytes(bytes(data))


class NeverFailing:
    """Any harness, with every store wrapped in ``FaultyStore(inner, fail={})``."""

    def __init__(self, inner: MemoryHarness | FileHarness) -> None:
        self.inner = inner

    def location(self) -> str:
        return self.inner.location()

    def store(self, location: str) -> Store:
        return FaultyStore(self.inner.store(location), fail={})

    async def damage_log(self, location: str, index: int) -> None:
        await self.inner.damage_log(location, index)

    async def damage_rows(self, location: str) -> None:
        await self.inner.damage_rows(location)


def run_sync(coro: object) -> None:
    """A fresh event loop in its own thread (a browser test earlier in the session may hold this thread's)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kind", ["memory", "file", "faulty-memory", "faulty-file", "shared-memory", "faulty-shared-memory"]
)
@pytest.mark.parametrize("name", store_cases.all_cases())
def test_store_case(name: str, kind: str, tmp_path: Path) -> None:
    harness: MemoryHarness | FileHarness | NeverFailing = (
        (SharedMemoryHarness() if "shared" in kind else MemoryHarness())
        if kind.endswith("memory")
        else FileHarness(tmp_path)
    )
    if kind.startswith("faulty"):
        harness = NeverFailing(harness)
    run_sync(store_cases.run_case(name, harness))
    if kind.endswith("file"):
        assert os.listdir(tmp_path) == []  # every case dropped what it made
    else:
        assert not [n for n in memory._REGISTRY if n.startswith("conformance-")]


def test_the_suite_covers_the_store_contract() -> None:
    assert {
        "create_exists_open",
        "commits_replay_in_order",
        "log_bytes_count_encoded_commits",
        "write_snapshot_replaces_snapshot_and_log",
        "read_only_refuses_writes",
        "closed_store_refuses_writes",
        "one_writer_at_a_time",
        "shared_writers_take_turns",
        "drop_removes_everything",
        "damaged_log_record_is_corrupt_index",
        "damaged_snapshot_rows_are_corrupt_index",
    } <= set(store_cases.all_cases())
