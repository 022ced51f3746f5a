"""The store conformance suite: one set of Store-level cases that every store must pass the same way.

Why plain async functions and no pytest/numpy here: this file's source is shipped into the browser
worker (``tests/browser/test_idb_store.py``) and run there against ``IndexedDBStore``, where neither
exists; on CPython ``test_store_conformance.py`` runs it against ``MemoryStore`` and ``FileStore``, each
also wrapped in a never-failing ``FaultyStore``. Every case is ``async def case_<name>(scope)``: it
uses only the ``Store`` interface and checks behaviour with ``assert``.

Store-specific needs (a fresh location, damaging stored bytes) come from a *harness* object:

* ``harness.location() -> str``: a fresh, unused location;
* ``harness.store(location) -> Store``: a new store object for it (a new "process" or "tab");
* ``await harness.damage_log(location, i)``: set the first payload byte of commit record ``i`` to 0xFF
  (the record stays complete: its length is unchanged);
* ``await harness.damage_rows(location)``: set the first byte of the snapshot rows to 0xFF.
"""

from __future__ import annotations

import asyncio
import inspect
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from pyapp.errors import (
    CorruptIndex,
    IndexClosed,
    IndexExists,
    IndexLocked,
    IndexNotFound,
    ReadOnlyIndex,
    StorageError,
)
from pyapp.stores.base import Delete, Op, Put, Row, Snapshot, Store
from pyapp.stores.codec import encode_commit

DIMS = 2
MANIFEST = {"dims": DIMS, "metric": "cosine", "indexed": ["ward"], "nested": {"a": [1, 2.5, None, "é✓"]}}
FRAMING = 32  # at most this many bytes of a store's own framing per logged commit (the file store uses 16)

Case = Callable[["Scope"], Awaitable[None]]


def vec(x: float, y: float) -> bytes:
    return struct.pack("<2f", x, y)


def put(i: int, text: str | None = "note", **metadata: Any) -> Put:
    return Put(Row(f"id{i}", {"i": i, **metadata}, text, i), vec(float(i), 0.5))


COMMITS: list[list[Op]] = [
    [put(1, ward="icu"), put(2, text=None, nested={"x": [1, {"y": None}], "f": 0.1})],
    [Delete("id1"), put(3, text="é 病 \U0001f600")],
    [put(2, text="replaced")],
]


async def raises(kind: type[BaseException], awaitable: Awaitable[Any]) -> BaseException:
    """Await ``awaitable`` and return the ``kind`` exception it must raise (pytest.raises without pytest)."""
    try:
        await awaitable
    except kind as exc:
        return exc
    raise AssertionError(f"expected {kind.__name__}")


class Scope:
    """Hands out locations and store objects, and remembers them so ``run_case`` can clean up."""

    def __init__(self, harness: Any) -> None:
        self.harness = harness
        self.locations: list[str] = []
        self.stores: list[Store] = []

    def location(self) -> str:
        self.locations.append(self.harness.location())
        return self.locations[-1]

    def store(self, location: str) -> Store:
        self.stores.append(self.harness.store(location))
        return self.stores[-1]

    async def created(self, manifest: dict[str, Any] = MANIFEST) -> tuple[str, Store]:
        """A fresh location holding an empty index, and a (closed) store object for it."""
        location = self.location()
        store = self.store(location)
        await store.create(manifest)
        return location, store

    async def reopen(self, location: str, read_only: bool = True) -> Snapshot:
        """What a new store object sees at ``location`` (closed again afterwards)."""
        store = self.store(location)
        snapshot = await store.open(read_only=read_only)
        await store.close()
        return snapshot


# --------------------------------------------------------------------------- cases


async def case_create_exists_open(scope: Scope) -> None:
    location = scope.location()
    store = scope.store(location)
    assert not await store.exists()
    await store.create(MANIFEST)
    assert await store.exists() and await scope.store(location).exists()
    await raises(IndexExists, scope.store(location).create({"dims": 9}))
    await raises(IndexExists, store.create(MANIFEST))
    snap = await store.open()
    assert snap.manifest == MANIFEST, snap.manifest
    assert snap.rows == [] and bytes(snap.vectors) == b"" and snap.log == []
    assert store.log_bytes == 0 and store.snapshot_bytes >= 0
    await store.close()


async def case_open_missing_is_not_found(scope: Scope) -> None:
    location = scope.location()
    for read_only in (False, True):
        await raises(IndexNotFound, scope.store(location).open(read_only=read_only))
    assert not await scope.store(location).exists()  # a failed open creates nothing
    await scope.store(location).drop()  # dropping nothing is fine
    assert not await scope.store(location).exists()


async def case_commits_replay_in_order(scope: Scope) -> None:
    location, store = await scope.created()
    await store.open()
    for ops in COMMITS:
        await store.commit(ops)
    size = store.log_bytes
    await store.commit([])  # nothing to write: no record, no bytes
    assert store.log_bytes == size
    assert (await scope.reopen(location)).log == COMMITS  # a reader beside the writer sees every commit
    await store.close()
    again = scope.store(location)
    snap = await again.open()
    assert snap.log == COMMITS and snap.manifest == MANIFEST  # op for op, vectors bit for bit
    assert again.log_bytes == size
    await again.commit([put(4)])
    await again.close()
    assert (await scope.reopen(location)).log == [*COMMITS, [put(4)]]


async def case_log_bytes_count_encoded_commits(scope: Scope) -> None:
    location, store = await scope.created()
    await store.open()
    for ops in COMMITS:
        before = store.log_bytes
        await store.commit(ops)
        grown = store.log_bytes - before
        assert len(encode_commit(ops)) <= grown <= len(encode_commit(ops)) + FRAMING, (grown, len(encode_commit(ops)))
    size = store.log_bytes
    reader = scope.store(location)
    await reader.open(read_only=True)
    assert reader.log_bytes == size
    await reader.close()
    await store.close()
    assert store.log_bytes == 0 and store.snapshot_bytes == 0  # closed: nothing held
    again = scope.store(location)
    await again.open()
    assert again.log_bytes == size
    await again.close()


async def case_write_snapshot_replaces_snapshot_and_log(scope: Scope) -> None:
    location, store = await scope.created()
    await store.open()
    await store.commit(COMMITS[0])
    empty_snapshot = store.snapshot_bytes
    rows = [
        Row(f"r{i}", {"i": i, "ward": ["icu", "ed"][i % 2]}, f"text {i}" if i % 3 else None, 10 + i)
        for i in range(2500)
    ]  # more than one IndexedDB chunk
    vectors = b"".join(vec(float(i), -1.0) for i in range(len(rows)))
    manifest = dict(MANIFEST, compacted=True)
    await store.write_snapshot(manifest, rows, vectors)
    assert store.log_bytes == 0
    assert store.snapshot_bytes > len(vectors) > empty_snapshot
    await store.commit(COMMITS[1])
    grown = store.log_bytes
    assert grown >= len(encode_commit(COMMITS[1]))
    await store.close()
    again = scope.store(location)
    snap = await again.open()
    assert snap.manifest == manifest and snap.rows == rows and bytes(snap.vectors) == vectors
    assert snap.log == [COMMITS[1]]  # the commit before the snapshot is gone, the later one kept
    assert again.log_bytes == grown
    await again.write_snapshot(MANIFEST, [], b"")  # back to empty
    await again.close()
    snap = await scope.reopen(location)
    assert snap.manifest == MANIFEST and snap.rows == [] and bytes(snap.vectors) == b"" and snap.log == []


async def case_write_snapshot_while_loading(scope: Scope) -> None:
    """``write_snapshot_while`` writes what ``write_snapshot`` writes and runs the caller's in-memory load once;
    when that load raises, its error comes back and nothing is written (the log and old snapshot stay), and the
    next snapshot is written."""
    location, store = await scope.created()
    await store.open()
    await store.commit(COMMITS[0])
    rows = [Row(f"w{i}", {"i": i}, f"text {i}", i) for i in range(1500)]  # more than one IndexedDB chunk
    vectors = b"".join(vec(float(i), 1.0) for i in range(len(rows)))
    ran: list[str] = []

    def out_of_memory() -> None:
        ran.append("failed")
        raise MemoryError("injected: the in-memory load ran out of memory")

    await raises(MemoryError, store.write_snapshot_while(MANIFEST, rows, vectors, out_of_memory))
    assert ran == ["failed"]
    await store.commit(COMMITS[1])  # the store still writes
    await store.close()
    snap = await scope.reopen(location)
    assert snap.rows == [] and snap.log == COMMITS[:2]  # nothing of the failed snapshot
    again = scope.store(location)
    await again.open()
    await again.write_snapshot_while(MANIFEST, rows, vectors, lambda: ran.append("loaded"))
    assert ran == ["failed", "loaded"] and again.log_bytes == 0
    await again.close()
    snap = await scope.reopen(location)
    assert snap.rows == rows and bytes(snap.vectors) == vectors and snap.log == []


async def case_read_only_refuses_writes(scope: Scope) -> None:
    location, store = await scope.created()
    await store.open()
    await store.commit(COMMITS[0])
    reader = scope.store(location)
    snap = await reader.open(read_only=True)
    assert snap.log == [COMMITS[0]] and reader.log_bytes == store.log_bytes
    await raises(ReadOnlyIndex, reader.commit(COMMITS[1]))
    await raises(ReadOnlyIndex, reader.commit([]))
    await raises(ReadOnlyIndex, reader.write_snapshot(MANIFEST, [], b""))
    await reader.close()
    await store.close()
    assert (await scope.reopen(location)).log == [COMMITS[0]]  # nothing the reader tried was written
    only_reader = scope.store(location)
    await only_reader.open(read_only=True)  # no writer around: still read-only
    await raises(ReadOnlyIndex, only_reader.commit(COMMITS[1]))
    await only_reader.close()


async def case_closed_store_refuses_writes(scope: Scope) -> None:
    location, store = await scope.created()
    await raises(IndexClosed, store.commit(COMMITS[0]))  # never opened
    await raises(IndexClosed, store.write_snapshot(MANIFEST, [], b""))
    await store.open()
    await store.commit(COMMITS[0])
    await store.close()
    await store.close()  # twice is fine
    await raises(IndexClosed, store.commit(COMMITS[1]))
    await raises(IndexClosed, store.commit([]))
    await raises(IndexClosed, store.write_snapshot(MANIFEST, [], b""))
    reader = scope.store(location)
    await reader.open(read_only=True)
    await reader.close()
    await raises(IndexClosed, reader.commit(COMMITS[1]))
    assert (await scope.reopen(location)).log == [COMMITS[0]]


async def case_one_writer_at_a_time(scope: Scope) -> None:
    location, first = await scope.created()
    if first.shared_writers:
        return  # every tab may write: case_shared_writers_take_turns checks those stores
    await first.open()
    second = scope.store(location)
    await raises(IndexLocked, second.open())
    await raises(IndexLocked, second.drop())  # nobody may drop an index another writer holds
    assert await second.exists()
    reader = scope.store(location)
    await reader.open(read_only=True)  # readers need no lock
    await first.commit(COMMITS[0])
    await first.close()
    await second.open()  # the lock went with the close; a failed open did not take it
    await raises(IndexLocked, first.open())
    await second.open()  # reopening the same object for writing releases its own lock first
    await second.commit(COMMITS[1])
    await second.close()
    await reader.close()
    assert (await scope.reopen(location, read_only=False)).log == COMMITS[:2]


async def case_shared_writers_take_turns(scope: Scope) -> None:
    """Stores with shared writers: both write, each catches up with the other's commits exactly once (never its
    own), the commit lock admits one at a time, a stale writer may not rewrite the snapshot, and a rewrite
    reaches the others as a snapshot to reload. Single-writer stores report no changes and no position."""
    location, first = await scope.created()
    await first.open()
    if not first.shared_writers:
        assert not await first.catch_up() and first.position is None
        async with first.commit_lock():  # a no-op lock: the open writer holds the index alone
            await first.commit(COMMITS[0])
        assert not await first.catch_up()
        return
    second = scope.store(location)
    await second.open()  # a second writer is welcome
    reader = scope.store(location)
    await reader.open(read_only=True)
    async with first.commit_lock():
        assert not await first.catch_up()
        await first.commit(COMMITS[0])
    async with second.commit_lock():
        assert (await second.catch_up()).commits == [COMMITS[0]]
        await second.commit(COMMITS[1])
    assert (await reader.catch_up()).commits == COMMITS[:2]
    assert not await reader.catch_up() and not await second.catch_up()
    assert reader.log_bytes == second.log_bytes > first.log_bytes > 0  # others' commits count too

    order: list[str] = []

    async def hold(store: Store, tag: str) -> None:
        async with store.commit_lock():
            order.append(tag + "+")
            await asyncio.sleep(0.05)
            order.append(tag + "-")

    await asyncio.gather(hold(first, "a"), hold(second, "b"))
    assert order in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"]), order

    await raises(StorageError, first.write_snapshot(MANIFEST, [], b""))  # it has not seen COMMITS[1]
    rows = [put(7).row, put(8).row]
    manifest = dict(MANIFEST, compacted=True)
    async with first.commit_lock():
        assert (await first.catch_up()).commits == [COMMITS[1]]
        await first.write_snapshot(manifest, rows, put(7).vector + put(8).vector)
        await first.commit(COMMITS[2])
    for other in (second, reader):
        changes = await other.catch_up()
        assert changes.commits == [] and changes.snapshot is not None
        assert changes.snapshot.manifest == manifest and changes.snapshot.rows == rows
        assert changes.snapshot.log == [COMMITS[2]]
        assert not await other.catch_up()
    await raises(IndexLocked, scope.store(location).drop())  # others have it open for writing
    await second.commit([put(9)])  # outside the lock: still recorded once, never handed back to its writer
    assert not await second.catch_up()
    assert (await first.catch_up()).commits == [[put(9)]]
    await first.close()
    await second.close()
    await reader.close()
    snap = await scope.reopen(location)
    assert snap.rows == rows and snap.log == [COMMITS[2], [put(9)]]


async def case_drop_removes_everything(scope: Scope) -> None:
    location, store = await scope.created()
    await store.open()
    await store.commit(COMMITS[0])
    await store.drop()  # the writer itself may drop
    assert not await store.exists() and not await scope.store(location).exists()
    await raises(IndexClosed, store.commit(COMMITS[1]))  # dropping closed it
    for read_only in (False, True):
        await raises(IndexNotFound, scope.store(location).open(read_only=read_only))
    await store.drop()  # absent: no error
    other = scope.store(location)
    await other.create({"dims": DIMS, "fresh": True})  # the name is free again, with nothing left over
    snap = await other.open()
    assert snap.manifest == {"dims": DIMS, "fresh": True} and snap.rows == [] and snap.log == []
    await other.close()
    await other.drop()  # a closed store object may drop too
    assert not await other.exists()


async def case_damaged_log_record_is_corrupt_index(scope: Scope) -> None:
    """Damage in a complete commit record, the last one included, is never dropped silently."""
    for damaged in (0, 1):
        location, store = await scope.created()
        await store.open()
        await store.commit(COMMITS[0])
        await store.commit(COMMITS[1])
        await store.close()
        await scope.harness.damage_log(location, damaged)
        for read_only in (True, False, False):  # twice for writing: a failed open holds no lock
            await raises(CorruptIndex, scope.store(location).open(read_only=read_only))
        assert await scope.store(location).exists()


async def case_damaged_snapshot_rows_are_corrupt_index(scope: Scope) -> None:
    location, store = await scope.created()
    await store.open()
    await store.write_snapshot(MANIFEST, [put(1).row, put(2).row], put(1).vector + put(2).vector)
    await store.close()
    await scope.harness.damage_rows(location)
    for read_only in (True, False, False):
        await raises(CorruptIndex, scope.store(location).open(read_only=read_only))


async def case_stored_values_are_copies(scope: Scope) -> None:
    """Mutating what was committed, or what open returned, never reaches the stored index."""
    location, store = await scope.created()
    await store.open()
    metadata = {"tags": ["a"], "n": 1}
    ops: list[Op] = [Put(Row("x", metadata, "t", 0), vec(1.0, 0.0))]
    await store.commit(ops)
    metadata["tags"].append("b")
    ops.append(Delete("x"))
    rows = [Row("y", {"k": [1]}, None, 1)]
    snap = await scope.reopen(location)
    snap.log[0][0].row.metadata["n"] = 99
    assert (await scope.reopen(location)).log == [[Put(Row("x", {"tags": ["a"], "n": 1}, "t", 0), vec(1.0, 0.0))]]
    await store.write_snapshot(MANIFEST, rows, vec(0.0, 1.0))
    rows[0].metadata["k"].append(2)
    await store.close()
    assert (await scope.reopen(location)).rows == [Row("y", {"k": [1]}, None, 1)]


# --------------------------------------------------------------------------- running


def all_cases() -> list[str]:
    return sorted(
        name[len("case_") :]
        for name, fn in globals().items()
        if name.startswith("case_") and inspect.iscoroutinefunction(fn)
    )


async def run_case(name: str, harness: Any) -> None:
    """Run one case; whatever happens, close every store object it made and drop every location."""
    case: Case = globals()[f"case_{name}"]
    scope = Scope(harness)
    try:
        await case(scope)
    finally:
        for store in scope.stores:
            try:
                await store.close()
            except Exception:  # noqa: BLE001 - cleanup must reach every store
                pass
        for location in scope.locations:
            await harness.store(location).drop()
