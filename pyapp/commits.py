"""The write path: who may stage into which commit, and making a commit durable before it is applied.

Three ways to write, one rule each:

* a plain call (``insert``, ``delete_many``, ...) is one commit of its own, made under the index's write lock;
* ``batch()`` belongs to the asyncio task that opened it (a context variable): that task's writes, and those of
  tasks it starts inside the batch, are staged into it; every other task's writes wait for the batch to end
  and never join it silently. The batch holds the write lock from open to commit or rollback;
* ``begin_update()``/``end_update()`` keep vectra's index-wide staging: while one is open, every write from any
  task is staged into it.

A commit is made durable by the store *before* it touches memory, so a store failure leaves the index exactly
as it was, and the staging area is closed whatever happens: a failed commit never leaves an update open.
Compaction after a durable commit never turns that acknowledged write into an error: a failure is logged,
reported by ``stats()``, and retried once the log has grown further.

With a store that has shared writers (IndexedDB: every tab writes), each commit and compaction runs under the
store's commit lock (held per commit, across tabs): first the other writers' commits are applied
(``catch_up``), then, if anything changed since the ops were staged, they are re-checked against the newest
state (``rebase``), and only then written. ``refresh()`` applies other writers' commits between commits.

Partitions (IVF, ``pyapp.kernels.ivf``) follow every applied op in ``IndexRows``; after each commit this module
asks whether they are due to be built, retrained (drift) or dropped, does it in memory and then writes a
snapshot, so the new centroids are durable with the rows they describe. A failure there is handled like a failed
compaction: logged, reported, retried, never raised on the acknowledged write (queries stay correct meanwhile:
the old partitions or, without any, an exact scan).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

from .errors import NoUpdateInProgress, UpdateInProgress
from .rebase import rebase
from .rows import IndexRows
from .staging import Staged
from .stores import Op, Store

T = TypeVar("T")
log = logging.getLogger("clinvec")

MIN_COMPACT_LOG_BYTES = 1 << 20  # never compact for logs under 1 MiB
BULK_SNAPSHOT_OPS = 1000  # a first commit this large goes straight to a snapshot


class Committer:
    """Serialises the commits of one index and owns its open batch or update."""

    def __init__(self, store: Store, rows: IndexRows, manifest: dict[str, Any]) -> None:
        self._store = store
        self._rows = rows
        self._manifest = manifest
        self._lock: asyncio.Lock | None = None
        self._sync: asyncio.Lock | None = None  # catch-up + write + apply: never interleaved with a refresh
        self.foreign = 0  # how many times other writers' commits were applied (Staged.base compares with it)
        self._task_batch: ContextVar[Staged | None] = ContextVar(f"clinvec-batch-{id(self)}", default=None)
        self._batch_open = False
        self._update: Staged | None = None
        self._compact_after = 0  # after a failed compaction: the log size to reach before trying again
        self.compaction_error: str | None = None

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def _get_sync(self) -> asyncio.Lock:
        if self._sync is None:
            self._sync = asyncio.Lock()
        return self._sync

    def _staged(self) -> Staged:
        return Staged(self._rows.next_seq, self.foreign, self._rows.next_commit)

    @property
    def update_in_progress(self) -> bool:
        return self._batch_open or self._update is not None

    def discard(self) -> None:
        """Drop any staged writes (the index is closing)."""
        if self._update is not None:
            self._update.closed = True
            self._update = None

    def _own_batch(self) -> Staged | None:
        staged = self._task_batch.get()
        if staged is not None and staged.closed:
            raise NoUpdateInProgress("the batch this write was started in has already ended")
        return staged

    # ------------------------------------------------------------------ writing
    async def write(self, build: Callable[[Staged], Awaitable[T]]) -> T:
        """Run ``build(staged)`` against the caller's batch, the open update, or a commit of its own."""
        staged = self._own_batch()
        if staged is not None:  # the batch's owner holds the write lock; tasks it started share the batch
            async with staged.building():
                return await build(staged)
        async with self._get_lock():
            if self._update is not None:  # vectra's index-wide update: every task's writes join it
                return await build(self._update)
            staged = self._staged()
            result = await build(staged)
            await self._commit(staged)
            return result

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Hold the write lock and stage this task's writes; commit at exit, roll back on an exception."""
        if self._own_batch() is not None:
            raise UpdateInProgress("this task already has a batch open")
        if self._update is not None:
            raise UpdateInProgress("an update (begin_update) is open; end or cancel it first")
        async with self._get_lock():
            if self._update is not None:
                raise UpdateInProgress("an update (begin_update) is open; end or cancel it first")
            staged = self._staged()
            token = self._task_batch.set(staged)
            self._batch_open = True
            try:
                yield
                await self._commit(staged)
            finally:
                staged.closed = True
                self._batch_open = False
                self._task_batch.reset(token)

    def begin_update(self) -> None:
        if self.update_in_progress:
            raise UpdateInProgress("an update is already in progress; end or cancel it first")
        self._update = self._staged()

    async def end_update(self) -> None:
        staged = self._update
        if staged is None:
            raise NoUpdateInProgress("end_update called without begin_update")
        self._update = None  # ended whatever the commit does: later writes are plain, durable writes again
        async with self._get_lock():
            await self._commit(staged)

    def cancel_update(self) -> None:
        if self._update is None:
            raise NoUpdateInProgress("cancel_update called without begin_update")
        self._update.closed = True
        self._update = None

    async def compact(self) -> None:
        if self._own_batch() is not None:
            raise UpdateInProgress("compact() inside a batch would wait for the batch itself; call it after")
        async with self._get_lock(), self._get_sync(), self._store.commit_lock():
            await self._catch_up()
            self._repartition()
            await self._write_snapshot()
            self.compaction_error = None
            self._compact_after = 0

    # ------------------------------------------------------------------ other writers
    async def refresh(self) -> int:
        """Apply what other writers committed since this index last looked; returns how many commits
        (a reload after another writer's compaction counts as one). Cheap when nothing changed: one read.

        Does not wait for this index's own batch or update (their ops are re-checked when they commit)."""
        if not self._store.shared_writers:
            return 0
        async with self._get_sync():
            return await self._catch_up()

    async def _catch_up(self) -> int:
        changes = await self._store.catch_up()
        if not changes:
            return 0
        rows = self._rows
        if changes.snapshot is not None:
            rows.load(
                changes.snapshot.rows,
                changes.snapshot.vectors,
                changes.snapshot.manifest.get("tombstones"),
                changes.snapshot.ivf,
            )
            for ops in changes.snapshot.log:
                rows.apply(ops)
        for ops in changes.commits:
            rows.apply(ops)
        self.foreign += 1
        return len(changes.commits) + (changes.snapshot is not None)

    # ------------------------------------------------------------------ commit
    async def _commit(self, staged: Staged) -> None:
        """Durable first, memory second: a store failure leaves both unchanged."""
        staged.closed = True
        if not staged.ops:
            return
        async with self._get_sync(), self._store.commit_lock():
            await self._catch_up()
            ops: list[Op] = staged.ops
            block = staged.block
            if staged.base != self.foreign:  # other writers committed since these ops were staged
                ops, block = rebase(self._rows, ops, staged.intents), None
            rows = self._rows
            if not len(rows) and self._store.log_bytes == 0 and len(ops) >= BULK_SNAPSHOT_OPS:
                await self._bulk_load(ops, block)
                return
            await self._store.commit(ops)
            rows.apply(ops)
            await self._maybe_compact(force=self._repartition())

    async def _bulk_load(self, ops: list[Op], block: memoryview | None) -> None:
        """A bulk load into an empty index would be logged and then compacted at once: write the snapshot
        directly instead (half the bytes written); on failure the index is empty again.

        With the call's vectors in one block and no partitions to train, the snapshot is written straight from
        the ops, and the store loads them into memory while it writes (``Store.write_snapshot_while``)."""
        rows = self._rows
        next_seq = rows.next_seq
        tombstones = rows.tombstone_list()  # an emptied index still remembers its deletes
        try:
            if block is not None and len(block) == len(ops) * rows.kernel.dims * 4:
                loaded = [op.row for op in ops]  # type: ignore[union-attr]  # only Puts in a block
                written = {row.id for row in loaded}
                kept = [t for t in tombstones if t[0] not in written]
                if len(loaded) < rows.ivf_threshold:  # nothing to partition: the snapshot is these rows
                    load = partial(rows.load, loaded, block, kept)
                    await self._store.write_snapshot_while(self._snapshot_manifest(kept), loaded, block, load)
                    return
                rows.load(loaded, block, kept)
                self._repartition(block)  # the kernel now holds a copy of ``block``: no copy back from it
                await self._write_snapshot(block)
            else:
                rows.apply(ops)
                self._repartition()
                await self._write_snapshot()
        except BaseException:
            rows.load([], b"", tombstones)
            rows.next_seq = next_seq
            raise

    def _repartition(self, vectors: Any = None) -> bool:
        """Build, retrain or drop the IVF partitions when due (``IndexRows.ivf_due``); True when they changed.
        ``vectors``: the kernel's rows, when the caller holds them as a buffer (``IndexRows.train_ivf``).

        Runs after a durable commit: an error here is logged and the previous partitions (or exact search) stay."""
        rows = self._rows
        reason = rows.ivf_due()
        if reason is None:
            return False
        try:
            rows.train_ivf(vectors=vectors)
        except Exception as exc:  # noqa: BLE001 - the commit is durable; queries stay correct without new lists
            log.warning("clinvec: partitioning %s (%s) failed: %s", self._store.location, reason, exc)
            return False
        log.info("clinvec: partitions of %s rebuilt (%s)", self._store.location, reason)
        return True

    async def _maybe_compact(self, force: bool = False) -> None:
        size = self._store.log_bytes
        if not force and size <= max(self._store.snapshot_bytes, MIN_COMPACT_LOG_BYTES, self._compact_after):
            return
        try:
            await self._write_snapshot()
        except Exception as exc:  # noqa: BLE001 - the commit is durable: its caller must not see this
            self.compaction_error = f"{type(exc).__name__}: {exc}"
            self._compact_after = size + max(MIN_COMPACT_LOG_BYTES, size // 4)
            log.warning("clinvec: compaction of %s failed, will retry later: %s", self._store.location, exc)
        else:
            self.compaction_error = None
            self._compact_after = 0

    def _snapshot_manifest(self, tombstones: list[Any]) -> dict[str, Any]:
        """The manifest a snapshot carries: tombstones are kept across compaction, so a sync can still name
        the deletes."""
        return {**self._manifest, "tombstones": tombstones} if tombstones else self._manifest

    async def _write_snapshot(self, vectors: Any = None) -> None:
        """Write the current state as the snapshot; ``vectors``: the kernel's rows as a buffer the caller holds."""
        rows, vectors, ivf = self._rows.snapshot_parts(vectors)
        manifest = self._snapshot_manifest(self._rows.tombstone_list())
        if ivf is None:  # the plain call: stores written before partitions existed keep working
            await self._store.write_snapshot(manifest, rows, vectors)
        else:
            await self._store.write_snapshot(manifest, rows, vectors, ivf=ivf)
