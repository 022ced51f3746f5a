"""The storage interface: a snapshot plus an append-only log of commits.

Shaped like tinydb's ``Storage`` (small, abstract, async here), but incremental: a commit appends
only the operations it made, never rewrites the index. Every store (``memory``, ``file`` on the
server, ``pyapp.browser.idb_store`` in the browser) keeps the same model:

* ``snapshot``: the manifest, every row's record and the contiguous float32 vector matrix;
* ``log``: the commits made since the snapshot, each a list of ``Put``/``Delete`` ops, replayed in
  order on open. A commit returns only once it is durable (fsync / IDB ``complete``).

Every store also refuses alike, as the conformance suite (``tests/stores/``) checks: writes
on a store opened read-only raise ``ReadOnlyIndex``, on one not open ``IndexClosed``; a second writer,
or dropping an index another writer holds, ``IndexLocked``; stored bytes that fail their checks
``CorruptIndex``; any I/O failure ``StorageError`` (``StorageFull`` when out of space), after which the
stored index is as it was. ``FaultyStore`` (``faulty.py``) injects such failures into any store.

Shared writers (a capability, ``Store.shared_writers``): the file and memory stores have one writer per index,
held for as long as it is open, so nothing can change under it. The IndexedDB store lets every tab write:
each writer commits inside ``commit_lock()`` (held per commit, not per lifetime), first calling
``catch_up()`` for what other writers committed since this store object last looked (its ``position``),
so the index can apply those commits and re-check its staged ops against the newest state before
``commit``/``write_snapshot``. For single-writer stores these default to a no-op lock and no changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Row(NamedTuple):
    """Everything about one item except its vector. A NamedTuple: 50k of them are built per bulk insert."""

    id: str
    metadata: dict[str, Any]
    text: str | None
    seq: int  # insertion order; breaks score ties and orders listings
    # Sync stamps (pyapp.sync): the index's commit number that last wrote the row (0: written before stamps
    # existed) and that write's time in ms since the epoch (kept from the writer when a sync copies it here).
    commit: int = 0
    time: int = 0


class Put(NamedTuple):
    """Insert or replace one item. ``vector`` is the prepared (normalised) float32 bytes (or a view of them)."""

    row: Row
    vector: bytes | memoryview


class Delete(NamedTuple):
    """Remove one item by id (stamped like ``Row``: the deleting commit and its time, kept as a tombstone)."""

    id: str
    commit: int = 0
    time: int = 0


Op = Put | Delete


@dataclass
class Snapshot:
    """What a store hands back on open: the folded state plus the commits made after it."""

    manifest: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    vectors: bytes | memoryview = b""  # len(rows) * dims float32 values, row order
    log: list[list[Op]] = field(default_factory=list)
    ivf: dict[str, Any] | None = None  # the partitioning saved with these rows (pyapp.kernels.ivf), if any


@dataclass
class Changes:
    """What other writers did since a store object last looked (``Store.catch_up``).

    ``snapshot`` is set when another writer rewrote the snapshot (compaction): the state must be reloaded
    from it (its ``log`` included) before ``commits`` (then empty) could mean anything."""

    commits: list[list[Op]] = field(default_factory=list)
    snapshot: Snapshot | None = None

    def __bool__(self) -> bool:
        return bool(self.commits) or self.snapshot is not None


class Store(ABC):
    """Where one index lives. ``location`` is a folder (server) or an IndexedDB name (browser)."""

    location: str
    #: True when several writers (tabs) may have the index open for writing at once; see the module docstring.
    shared_writers: bool = False

    def commit_lock(self) -> AbstractAsyncContextManager[Any]:
        """Held around ``catch_up`` + ``commit``/``write_snapshot`` so writers commit one at a time.

        Single-writer stores already hold the index alone while open: no lock to take."""
        return nullcontext()

    async def catch_up(self) -> Changes:
        """The commits other writers made since this store object last looked, oldest first (and only once).

        Works for readers too (a read-only tab follows the writers). Nothing for single-writer stores."""
        return Changes()

    @property
    def position(self) -> Any:
        """Where this store object stands in the shared history (diagnostics); None without shared writers."""
        return None

    @abstractmethod
    async def exists(self) -> bool:
        """True when an index is stored here."""

    @abstractmethod
    async def create(self, manifest: dict[str, Any]) -> None:
        """Create an empty index; raises ``IndexExists`` when one is there."""

    @abstractmethod
    async def open(self, read_only: bool = False) -> Snapshot:
        """Load the index. Raises ``IndexNotFound``, ``IndexLocked`` (a writer holds it) or ``CorruptIndex``.

        A torn last log record (an append cut short by a crash) is dropped, never half-applied; damage
        to a complete record is ``CorruptIndex``, never dropped silently.
        """

    @abstractmethod
    async def commit(self, ops: Sequence[Op]) -> None:
        """Append one commit; returns only once it survives a crash. All or nothing."""

    @abstractmethod
    async def write_snapshot(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, ivf: dict[str, Any] | None = None
    ) -> None:
        """Replace snapshot and log with this state, atomically (compaction). ``ivf``: the partitioning of
        these rows (``pyapp.kernels.ivf``), stored with them and handed back as ``Snapshot.ivf``."""

    async def write_snapshot_while(
        self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes, meanwhile: Callable[[], None]
    ) -> None:
        """``write_snapshot`` (no partitioning), running ``meanwhile()`` (the caller loading the same state into
        memory) while the store writes, where it can: a bulk load then costs the longer of the two, not both.

        Either way: if ``meanwhile`` raises, nothing is written and its exception propagates; if the write
        fails, ``meanwhile`` may have run and the caller undoes it. Here: ``meanwhile`` first, then the write."""
        meanwhile()
        await self.write_snapshot(manifest, rows, vectors)

    @property
    @abstractmethod
    def log_bytes(self) -> int:
        """Encoded size of the log since the last snapshot (drives automatic compaction); 0 when closed."""

    @property
    @abstractmethod
    def snapshot_bytes(self) -> int:
        """Encoded size of the current snapshot (vectors + rows); 0 when closed."""

    @abstractmethod
    async def close(self) -> None:
        """Release the writer lock and any handles."""

    @abstractmethod
    async def drop(self) -> None:
        """Delete the stored index entirely (no error when absent)."""

    def info(self) -> dict[str, Any]:
        """Store-specific facts for ``stats()`` (e.g. bytes on disk, persistence granted)."""
        return {"log_bytes": self.log_bytes, "snapshot_bytes": self.snapshot_bytes}
