"""The in-memory twin of the durable stores: same interface and same refusals, no I/O, for fast tests.

Why it keeps *encoded* bytes: a twin is only useful if code tested against it behaves the same on
disk. So the snapshot rows and every commit are held as the bytes ``codec`` writes for the file and
IndexedDB stores: ``log_bytes``/``snapshot_bytes`` count the same bytes (auto-compaction triggers at
the same points), values round-trip exactly as they would through storage (a later mutation by the
caller cannot reach them), and damaged bytes fail to decode with ``CorruptIndex`` as on disk. It
refuses what they refuse: writes when opened read-only (``ReadOnlyIndex``) or not open (``IndexClosed``),
a second writer and dropping an index another writer holds (``IndexLocked``).

Indexes live in a process-wide registry keyed by name, so close-and-reopen behaves like a real
store within one process.

``MemoryStore(name, shared_writers=True)`` (opt-in; ``memory://`` locations stay single-writer) behaves like
the IndexedDB store instead: every store object may write, commits are serialised by a per-index lock taken
per commit, and ``catch_up`` returns the commits other objects made (or a reload after their compaction).
It lets the multi-writer commit path (``pyapp.rebase``) be tested on CPython, as tabs are in Chromium.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from ..errors import CorruptIndex, IndexClosed, IndexExists, IndexLocked, IndexNotFound, ReadOnlyIndex, StorageError
from .base import Changes, Op, Row, Snapshot, Store
from .codec import decode_commit, decode_snapshot_rows, encode_commit, encode_rows

_REGISTRY: dict[str, _Stored] = {}


class _Stored:
    """One stored index: its bytes, as a durable store would hold them, and whether a writer holds it."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = b""
        self.rows = b""
        self.vectors = b""
        self.log: list[bytes] = []
        self.writer = False
        self.sharers = 0  # store objects open for writing with shared_writers=True
        self.generation = 0  # bumped by every snapshot rewrite: shared writers notice and reload
        self.lock: asyncio.Lock | None = None  # shared writers' commit lock
        self.replace(manifest, [], b"")

    def replace(
        self,
        manifest: dict[str, Any],
        rows: Sequence[Row],
        vectors: bytes | memoryview,
        ivf: dict[str, Any] | None = None,
    ) -> None:
        """Swap in a whole new snapshot with an empty log (every part encoded before anything changes)."""
        encoded = (json.dumps(manifest, ensure_ascii=True).encode("ascii"), encode_rows(rows, ivf), bytes(vectors))
        self.manifest, self.rows, self.vectors = encoded
        self.log = []
        self.generation += 1


class MemoryStore(Store):
    """A store held in this process's memory under ``name``."""

    def __init__(self, name: str, shared_writers: bool = False) -> None:
        self.location = name
        self.shared_writers = shared_writers
        self._read_only: bool | None = None  # None: not open
        self._log_bytes = 0
        self._snapshot_bytes = 0
        self._generation = 0  # shared writers: the generation and log length last seen, plus own commits
        self._seen = 0
        self._own: set[int] = set()

    def _stored(self) -> _Stored:
        stored = _REGISTRY.get(self.location)
        if stored is None:
            raise IndexNotFound(f"no index named {self.location!r} in memory")
        return stored

    def _require_writer(self) -> _Stored:
        if self._read_only is None:
            raise IndexClosed(f"store {self.location!r} is not open; open it for writing first")
        if self._read_only:
            raise ReadOnlyIndex(f"index {self.location!r} was opened read-only")
        return self._stored()

    def _release(self) -> None:
        stored = _REGISTRY.get(self.location)
        if stored is not None and self._read_only is False:
            if self.shared_writers:
                stored.sharers -= 1
            else:
                stored.writer = False
        self._read_only = None
        self._log_bytes = self._snapshot_bytes = 0

    def _decode(self, stored: _Stored) -> Snapshot:
        try:
            manifest = json.loads(stored.manifest)
        except ValueError as exc:
            raise CorruptIndex(f"index {self.location!r}: the manifest is not JSON ({exc})") from exc
        rows, ivf = decode_snapshot_rows(stored.rows)
        log = []
        for i, record in enumerate(stored.log):
            try:
                log.append(decode_commit(record))
            except CorruptIndex as exc:
                raise CorruptIndex(f"index {self.location!r}: log record {i}: {exc}") from exc
        return Snapshot(manifest=manifest, rows=rows, vectors=stored.vectors, log=log, ivf=ivf)

    async def exists(self) -> bool:
        return self.location in _REGISTRY

    async def create(self, manifest: dict[str, Any]) -> None:
        if self.location in _REGISTRY:
            raise IndexExists(f"an index named {self.location!r} already exists in memory")
        _REGISTRY[self.location] = _Stored(manifest)

    async def open(self, read_only: bool = False) -> Snapshot:
        if self._read_only is not None:
            self._release()
        stored = self._stored()
        if not read_only and (stored.writer or (stored.sharers and not self.shared_writers)):
            raise IndexLocked(f"index {self.location!r} is open for writing elsewhere")
        snapshot = self._decode(stored)  # CorruptIndex before the writer lock is taken
        if not read_only:
            if self.shared_writers:
                stored.sharers += 1
            else:
                stored.writer = True
        self._read_only = read_only
        self._generation, self._seen, self._own = stored.generation, len(stored.log), set()
        self._log_bytes = sum(len(record) for record in stored.log)
        self._snapshot_bytes = len(stored.vectors) + len(stored.rows)
        return snapshot

    async def commit(self, ops: Sequence[Op]) -> None:
        stored = self._require_writer()
        if not ops:
            return
        record = encode_commit(ops)
        stored.log.append(record)
        self._log_bytes += len(record)
        if self._seen == len(stored.log) - 1:
            self._seen += 1
        else:
            self._own.add(len(stored.log) - 1)  # others' commits before it are still to be caught up

    def _behind(self, stored: _Stored) -> bool:
        unseen = set(range(self._seen, len(stored.log))) - self._own
        return self._generation != stored.generation or bool(unseen)

    def commit_lock(self) -> Any:
        if not self.shared_writers:
            return super().commit_lock()
        stored = self._stored()
        if stored.lock is None:
            stored.lock = asyncio.Lock()
        return stored.lock

    async def catch_up(self) -> Changes:
        if not self.shared_writers or self._read_only is None:
            return Changes()
        stored = self._stored()
        if stored.generation != self._generation:
            snapshot = self._decode(stored)
            self._generation, self._seen, self._own = stored.generation, len(stored.log), set()
            self._log_bytes = sum(len(record) for record in stored.log)
            self._snapshot_bytes = len(stored.vectors) + len(stored.rows)
            return Changes(snapshot=snapshot)
        commits = []
        for i in range(self._seen, len(stored.log)):
            if i not in self._own:
                commits.append(decode_commit(stored.log[i]))
                self._log_bytes += len(stored.log[i])
        self._seen, self._own = len(stored.log), set()
        return Changes(commits=commits)

    @property
    def position(self) -> Any:
        return [self._generation, self._seen] if self.shared_writers else None

    async def write_snapshot(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, ivf: dict[str, Any] | None = None
    ) -> None:
        stored = self._require_writer()
        if self.shared_writers and self._behind(stored):
            raise StorageError(
                f"index {self.location!r} changed in another writer since this one caught up; "
                "rewriting the snapshot would lose that change (catch up under the commit lock first)"
            )
        stored.replace(manifest, rows, vectors, ivf)
        self._generation, self._seen, self._own = stored.generation, 0, set()
        self._log_bytes = 0
        self._snapshot_bytes = len(stored.vectors) + len(stored.rows)

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
        self._release()

    async def drop(self) -> None:
        stored = _REGISTRY.get(self.location)
        others = 0 if stored is None else stored.sharers - (self._read_only is False and self.shared_writers)
        if stored is not None and ((stored.writer and self._read_only is not False) or others > 0):
            raise IndexLocked(f"index {self.location!r} is open for writing elsewhere")
        self._release()
        _REGISTRY.pop(self.location, None)
