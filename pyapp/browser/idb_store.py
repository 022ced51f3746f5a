"""``IndexedDBStore``: the browser twin of the file store, incremental like it.

Why this shape: vectra re-puts the whole index on every save; here a commit is one small record
appended to a ``log`` object store in one IDB transaction (acknowledged after ``complete``), and
only compaction (``write_snapshot``) rewrites the snapshot, again in one transaction. Vectors sit
in fixed-size chunk records of raw float32 bytes so reopening 10k x 768 is a handful of
``getAll`` reads, not 10k. Records use the same codec as the file store (``stores.codec``).

Every tab may write (``shared_writers``). Commits are serialised across tabs by a Web Lock held *per
commit* (``commit_lock()``); inside it the index first calls ``catch_up()``, which reads the log records
other tabs appended after this store's position (snapshot ``generation``, last log key seen), or reloads the
whole snapshot when another tab rewrote it (compaction bumps the generation). After each commit the store
posts on a ``BroadcastChannel`` (``clinvec-changes/<name>``) so other tabs refresh at once. A writer also
holds the old writer lock name in *shared* mode for its whole life: a page of the older, one-writer version
(which takes it exclusively) then opens read-only, and a tab of this version meets ``IndexLocked`` (and
the app falls back to read-only) only while such an older page holds it. The browser frees every lock of
a tab that goes away.

Persistence: opening for write calls ``navigator.storage.persist()`` where it exists (a window); in a
worker only ``persisted()`` exists, so the page asks on the main thread at start-up (``web/app/main.mjs``).
``info()`` reports the answer, with usage and quota, for ``stats()``.

Errors follow the file store's rules (the store conformance suite, ``tests/stores/``, checks both): a
full quota is ``StorageFull``, any other failed IndexedDB request ``StorageError``, records that do
not decode ``CorruptIndex``. A commit is one whole transaction, so there is no torn tail to forgive:
every stored record must decode.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException  # type: ignore[import-not-found]

from ..errors import (
    CorruptIndex,
    IndexClosed,
    IndexExists,
    IndexLocked,
    IndexNotFound,
    ReadOnlyIndex,
    StorageError,
    StorageFull,
)
from ..stores.base import Changes, Op, Row, Snapshot, Store
from ..stores.codec import decode_commit, decode_snapshot_rows, encode_commit, encode_rows
from ._bridge import js_error_name, js_module, to_u8

MODULE = "clinvec_idb"
STATE_FORMAT = 1
CHUNK_ROWS = 1024  # rows per snapshot chunk record (3 MB of float32 at 768 dims)
COMMIT_LOCK_TIMEOUT_MS = 120_000  # a tab that holds the commit lock this long is stuck: say so, do not hang
OLDER_WRITER = (
    "index {name!r} is held for writing by a tab running an older version of this app; "
    "close or reload that tab to write here"
)


def _split(blob: bytes, lengths: Any) -> list[bytes]:
    """Cut a concatenation back into its records, given the JS Float64Array of their lengths."""
    from array import array

    out, pos = [], 0
    for n in array("d", lengths.to_bytes()):
        end = pos + int(n)
        out.append(blob[pos:end])
        pos = end
    if pos != len(blob):
        raise CorruptIndex("record lengths do not add up to the data read")
    return out


class IndexedDBStore(Store):
    """An index in the IndexedDB database ``clinvec/<name>`` of this origin."""

    shared_writers = True

    def __init__(self, name: str, chunk_rows: int = CHUNK_ROWS) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("an IndexedDB index needs a non-empty name")
        self.location = name
        self._chunk_rows = chunk_rows
        self._mod: Any = js_module(MODULE)
        self._db: Any = None
        self._lock: Any = None  # the writer lock, shared mode, held while open for writing
        self._read_only: bool | None = None  # None: not open
        self._log_bytes = 0
        self._snapshot_bytes = 0
        self._storage: dict[str, Any] = {}
        self.writer_id = str(js.crypto.randomUUID())  # names this store in its change announcements
        # Position in the shared history: snapshot generation, last log key caught up to, and the keys of
        # this store's own commits after it (never handed back by catch_up).
        self._generation = 0
        self._after = 0
        self._own: set[int] = set()
        self._holding = False  # inside commit_lock()
        self._fresh = False  # caught up inside the lock held now: our next commit is the very next record

    # ----- helpers

    async def _call(self, what: str, promise: Any) -> Any:
        """Await a JS promise; a failure aborted its transaction, so the index is unchanged.

        Quota errors become ``StorageFull``, a closed connection ``IndexClosed``, anything else
        ``StorageError``: no raw ``JsException`` leaves the store.
        """
        try:
            return await promise
        except JsException as exc:
            raise _store_error(what, exc) from None

    def _require_writer(self) -> None:
        if self._read_only is None:
            raise IndexClosed(f"store {self.location!r} is not open; open it for writing first")
        if self._read_only:
            raise ReadOnlyIndex(f"index {self.location!r} was opened read-only")

    def _state(self, rows: int, dims: int, generation: int = 0) -> str:
        chunks = -(-rows // self._chunk_rows)
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "rows": rows,
                "dims": dims,
                "chunk_rows": self._chunk_rows,
                "chunks": chunks,
                "generation": generation,
            }
        )

    async def _refresh_storage(self, request_persist: bool = False) -> None:
        try:
            self._storage = json.loads(await self._mod.storageInfo(request_persist))
        except (JsException, ValueError):
            self._storage = {}

    async def _join_writers(self) -> None:
        lock = await self._call("joining the writers", self._mod.joinWriters(self.location))
        if lock is False or lock is None:
            raise IndexLocked(OLDER_WRITER.format(name=self.location))
        self._lock = lock

    def _announce(self) -> None:
        """Tell other tabs to refresh; best effort (they also catch up at their next commit)."""
        message = json.dumps({"writer": self.writer_id, "generation": self._generation, "after": self._after})
        try:
            self._mod.announce(self.location, message)
        except JsException:
            pass

    async def _release(self) -> None:
        """Close the connection and give the writer lock back (awaited: the next open must find it free)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._read_only = None
        self._log_bytes = self._snapshot_bytes = 0
        lock, self._lock = self._lock, None
        if lock is not None:
            await lock.release()

    # ----- the Store API

    async def exists(self) -> bool:
        return bool(await self._call("checking for the index", self._mod.exists(self.location)))

    async def create(self, manifest: dict[str, Any]) -> None:
        if await self.exists():
            raise IndexExists(f"an index named {self.location!r} already exists in this browser")
        db = await self._call("opening the database", self._mod.openDb(self.location))
        try:
            dims = int(manifest.get("dims", 0))
            created = await self._call(
                "creating the index", self._mod.create(db, json.dumps(manifest), self._state(0, dims))
            )
        finally:
            db.close()
        if not created:  # a racing tab created it between the check and the transaction
            raise IndexExists(f"an index named {self.location!r} already exists in this browser")

    async def open(self, read_only: bool = False) -> Snapshot:
        if self._read_only is not None:
            await self._release()
        if not await self.exists():
            raise IndexNotFound(f"no index named {self.location!r} in this browser")
        if not read_only:
            await self._join_writers()
        try:
            self._db = await self._call("opening the database", self._mod.openDb(self.location))
            data = await self._call("reading the index", self._mod.load(self._db))
            if not data.found:
                raise IndexNotFound(f"no index named {self.location!r} in this browser")
            snapshot = self._decode(data)
        except BaseException:
            await self._release()
            raise
        self._read_only = read_only
        await self._refresh_storage(request_persist=not read_only)
        return snapshot

    def _decode(self, data: Any) -> Snapshot:
        try:
            manifest = json.loads(str(data.manifest))
            state = json.loads(str(data.state))
            chunk_keys = json.loads(str(data.chunkKeys))
            row_keys = json.loads(str(data.rowKeys))
        except ValueError as exc:
            raise CorruptIndex(f"index {self.location!r}: manifest or state is not JSON ({exc})") from exc
        if not isinstance(manifest, dict) or not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise CorruptIndex(f"index {self.location!r}: unknown manifest/state format")
        try:
            dims, n = int(manifest["dims"]), int(state["rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptIndex(f"index {self.location!r}: manifest or state lacks dims/rows ({exc!r})") from exc
        vectors = bytes(data.vectors.to_bytes())
        if chunk_keys != list(range(len(chunk_keys))) or row_keys != list(range(len(row_keys))):
            raise CorruptIndex(f"index {self.location!r}: snapshot chunks are missing or out of order")
        if len(vectors) != n * dims * 4:
            raise CorruptIndex(
                f"index {self.location!r}: snapshot holds {len(vectors)} vector bytes, expected {n * dims * 4}"
            )
        rows: list[Row] = []
        ivf = None
        for blob in _split(bytes(data.rows.to_bytes()), data.rowLens):
            chunk, chunk_ivf = decode_snapshot_rows(blob)
            rows.extend(chunk)
            ivf = ivf or chunk_ivf  # the partitioning rides in the first chunk (write_snapshot)
        if len(rows) != n:
            raise CorruptIndex(f"index {self.location!r}: snapshot holds {len(rows)} rows, the state says {n}")
        log = self._decode_log(data)
        self._snapshot_bytes = len(vectors) + sum(int(x) for x in _lengths(data.rowLens))
        self._generation = int(state.get("generation", 0))
        return Snapshot(manifest=manifest, rows=rows, vectors=vectors, log=log, ivf=ivf)

    def _decode_log(self, data: Any, skip_own: bool = False) -> list[list[Op]]:
        """Log records (``data.log``/``logLens``/``logKeys``) as commits; moves the position to the last key.

        Every record is decoded before anything moves, so a damaged one changes nothing here. ``skip_own``:
        new records only (catch_up), leaving out this store's own commits, which its index already applied."""
        records = _split(bytes(data.log.to_bytes()), data.logLens)
        keys = [int(k) for k in _lengths(data.logKeys)]
        log, size = [], 0
        for i, (key, record) in enumerate(zip(keys, records)):
            size += len(record)
            if skip_own and key in self._own:
                continue
            try:
                log.append(decode_commit(record))
            except CorruptIndex as exc:
                raise CorruptIndex(f"index {self.location!r}: log record {i}: {exc}") from exc
        if skip_own:
            own_size = sum(len(r) for k, r in zip(keys, records) if k in self._own)
            self._log_bytes += size - own_size  # own commits were counted when made
            self._after = max(keys, default=self._after)
            self._own = {k for k in self._own if k > self._after}
        else:
            self._log_bytes = size
            self._after = max(keys, default=0)
            self._own = set()
        return log

    # ----- shared writers

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        lock = await self._call(
            "waiting for the commit lock", self._mod.commitLock(self.location, COMMIT_LOCK_TIMEOUT_MS)
        )
        self._holding = True
        try:
            yield
        finally:
            self._holding = self._fresh = False
            await lock.release()

    def commit_lock(self) -> Any:
        return self._locked()

    async def catch_up(self) -> Changes:
        if self._read_only is None:
            return Changes()
        data = await self._call("reading new commits", self._mod.changes(self._db, self._generation, self._after))
        if data.reload:
            full = await self._call("reading the index", self._mod.load(self._db))
            if not full.found:
                raise IndexNotFound(f"index {self.location!r} was deleted in another tab")
            changes = Changes(snapshot=self._decode(full))
        else:
            changes = Changes(commits=self._decode_log(data, skip_own=True))
        self._fresh = self._holding
        return changes

    @property
    def position(self) -> Any:
        return [self._generation, self._after]

    # ----- writing

    async def commit(self, ops: Sequence[Op]) -> None:
        self._require_writer()
        if not ops:
            return
        record = encode_commit(ops)
        key = int(await self._call("committing", self._mod.commit(self._db, to_u8(record))))
        self._log_bytes += len(record)
        if self._fresh:  # caught up under the lock held now: nothing can sit between
            self._after = key
        else:
            self._own.add(key)
        self._announce()

    async def write_snapshot(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, ivf: dict[str, Any] | None = None
    ) -> None:
        await self._write_snapshot(manifest, rows, vectors, ivf, None)

    async def write_snapshot_while(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, meanwhile: Callable[[], None]
    ) -> None:
        """``meanwhile`` runs once every request of the snapshot's transaction is issued, while the browser
        writes them; it raises -> the transaction is aborted (still active: nothing was awaited in between)."""
        await self._write_snapshot(manifest, rows, vectors, None, meanwhile)

    async def _write_snapshot(
        self,
        manifest: dict[str, Any],
        rows: Sequence[Row],
        vectors: bytes,
        ivf: dict[str, Any] | None,
        meanwhile: Callable[[], None] | None,
    ) -> None:
        self._require_writer()
        dims = int(manifest["dims"])
        if len(vectors) != len(rows) * dims * 4:
            raise ValueError(f"{len(rows)} rows need {len(rows) * dims * 4} vector bytes, got {len(vectors)}")
        step = self._chunk_rows
        blobs = [encode_rows(rows[i : i + step], ivf if i == 0 else None) for i in range(0, len(rows), step)]
        row_chunks = js.Array.new()
        for blob in blobs:
            row_chunks.push(to_u8(blob))
        check = {"generation": self._generation, "after": self._after, "own": sorted(self._own)}
        try:  # synchronous: a connection closed under us (another tab deleting the index) throws here
            writing = self._mod.startSnapshot(
                self._db,
                json.dumps(manifest),
                self._state(len(rows), dims, self._generation + 1),
                # read where they lie in Python's memory, cut into Blobs: no copy into JS first
                self._mod.vectorBlobs(vectors, step * dims * 4),
                row_chunks,
                json.dumps(check),
            )
        except JsException as exc:
            raise _store_error("writing the snapshot", exc) from None
        if meanwhile is not None:
            try:
                meanwhile()
            except BaseException:
                writing.tx.abort()
                try:
                    await writing.done
                except JsException:
                    pass  # the abort we asked for
                raise
        await self._call("writing the snapshot", writing.done)
        self._generation += 1
        self._own = set()
        self._snapshot_bytes = len(vectors) + sum(len(b) for b in blobs)
        self._log_bytes = 0
        self._announce()
        await self._refresh_storage()

    @property
    def read_only(self) -> bool | None:
        """True/False while open (reader/writer), None when closed."""
        return self._read_only

    @property
    def log_bytes(self) -> int:
        return self._log_bytes

    @property
    def snapshot_bytes(self) -> int:
        return self._snapshot_bytes

    async def close(self) -> None:
        await self._release()

    async def drop(self) -> None:
        """Delete the index, unless another tab has it open for writing (``IndexLocked``)."""
        joined, self._lock = self._lock, None
        if joined is not None:  # our own share would block the exclusive lock below
            await joined.release()
        lock = await self._call("taking the writer lock", self._mod.acquireLock(self.location))
        if lock is False or lock is None:
            if joined is not None:
                self._lock = await self._call("joining the writers", self._mod.joinWriters(self.location)) or None
            raise IndexLocked(f"index {self.location!r} is open for writing in another tab or worker")
        try:
            if self._db is not None:
                self._db.close()
                self._db = None
            await self._call("deleting the index", self._mod.drop(self.location))
        finally:
            await self._release()
            await lock.release()

    def info(self) -> dict[str, Any]:
        return {
            "log_bytes": self.log_bytes,
            "snapshot_bytes": self.snapshot_bytes,
            "storage": "indexeddb",
            "database": f"clinvec/{self.location}",
            "persisted": self._storage.get("persisted"),
            "usage_bytes": self._storage.get("usage"),
            "quota_bytes": self._storage.get("quota"),
            "shared_writers": True,
            "writer_id": self.writer_id,
            "position": self.position,
            "channel": str(self._mod.channelName(self.location)),
            "writer_lock": str(self._mod.lockName(self.location)),
        }


def _store_error(what: str, exc: JsException) -> StorageError | IndexClosed | IndexLocked:
    """The clinvec error for a failed IndexedDB call (the transaction it was part of is aborted)."""
    name = js_error_name(exc)
    if name == "QuotaExceededError":
        return StorageFull(f"{what}: the browser's storage quota is full; the index is unchanged")
    if name == "InvalidStateError":
        return IndexClosed(f"{what}: the database connection was closed ({exc})")
    if name == "TimeoutError":
        return IndexLocked(f"{what}: another tab has been committing for too long; try again")
    if name == "StaleWriter":
        return StorageError(f"{what}: another tab changed the index since this one caught up; nothing was written")
    return StorageError(f"{what}: IndexedDB failed ({exc}); the index is unchanged")


def _lengths(lengths: Any) -> list[float]:
    from array import array

    return array("d", lengths.to_bytes()).tolist()
