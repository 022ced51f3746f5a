"""The shared-writers contract (``writer_cases.py``) on CPython, with ``MemoryStore(shared_writers=True)``.

The same cases run in Chromium on IndexedDB (``tests/browser/test_tabs.py``), where each writer is a tab's
store object; here each is a store object of one process, which is the same thing to the commit path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from typing import Any

import pytest
import writer_cases

from pyapp import LocalIndex
from pyapp.stores import MemoryStore, memory
from pyapp.stores.file import FileStore


def run_sync(coro: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run_case(name: str) -> Any:
    prefix = f"writers-{uuid.uuid4().hex[:8]}"
    counter = iter(range(1000))
    out = run_sync(
        writer_cases.run_case(
            name, lambda: f"{prefix}-{next(counter)}", lambda loc: MemoryStore(loc, shared_writers=True)
        )
    )
    assert not [n for n in memory._REGISTRY if n.startswith(prefix)]  # every case dropped what it made
    return out


@pytest.mark.parametrize("name", writer_cases.all_cases())
def test_writer_case(name: str) -> None:
    assert run_case(name) == writer_cases.EXPECTED[name]


def test_every_case_has_an_expectation() -> None:
    assert set(writer_cases.all_cases()) == set(writer_cases.EXPECTED)


def test_single_writer_stores_are_unchanged(tmp_path: Any) -> None:
    """File and plain memory stores keep one writer at a time; refresh() there is a no-op returning 0."""
    from pyapp.errors import IndexLocked

    async def go() -> list[Any]:
        seen: list[Any] = []
        for location in (str(tmp_path / "idx"), f"memory://single-{uuid.uuid4().hex}"):
            idx = await LocalIndex.create(location, dims=2)
            await idx.insert([1.0, 0.0], id="a")
            seen.append([idx._store.shared_writers, await idx.refresh(), idx._store.position])
            try:
                await LocalIndex.open(location)
                seen.append("opened")
            except IndexLocked:
                seen.append("locked")
            await idx.close()
            await LocalIndex.drop(location)
        return seen

    assert run_sync(go()) == [[False, 0, None], "locked", [False, 0, None], "locked"]
    assert FileStore.shared_writers is False and MemoryStore("x").shared_writers is False
