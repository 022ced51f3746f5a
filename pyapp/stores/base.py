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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Row(NamedTuple):
    """Everything about one item except its vector. A NamedTuple: 50k of them are built per bulk insert."""

    id: str
    metadata: dict[str, Any]
    text: str | None
    seq: int  # insertion order; breaks score ties and orders listings


class Put(NamedTuple):
    """Insert or replace one item. ``vector`` is the prepared (normalised) float32 bytes (or a view of them)."""

    row: Row
    vector: bytes | memoryview


class Delete(NamedTuple):
    """Remove one item by id."""

    id: str


Op = Put | Delete


@dataclass
class Snapshot:
    """What a store hands back on open: the folded state plus the commits made after it."""

    manifest: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    vectors: bytes | memoryview = b""  # len(rows) * dims float32 values, row order
    log: list[list[Op]] = field(default_factory=list)


class Store(ABC):
    """Where one index lives. ``location`` is a folder (server) or an IndexedDB name (browser)."""

    location: str

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
    async def write_snapshot(self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes) -> None:
        """Replace snapshot and log with this state, atomically (compaction)."""

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
