"""The in-memory twin of the durable stores: same interface, no I/O, for fast unit tests.

Indexes live in a process-wide registry keyed by name, so close-and-reopen behaves like a real
store within one process. Ops are deep-copied on commit so later mutation by the caller cannot
reach stored state.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from ..errors import IndexExists, IndexLocked, IndexNotFound
from .base import Op, Put, Row, Snapshot, Store

_REGISTRY: dict[str, _Stored] = {}


class _Stored:
    def __init__(self, manifest: dict[str, Any]) -> None:
        self.snapshot = Snapshot(manifest=copy.deepcopy(manifest))
        self.writer = False


class MemoryStore(Store):
    """A store held in this process's memory under ``name``."""

    def __init__(self, name: str) -> None:
        self.location = name
        self._writer = False

    def _stored(self) -> _Stored:
        stored = _REGISTRY.get(self.location)
        if stored is None:
            raise IndexNotFound(f"no index named {self.location!r} in memory")
        return stored

    async def exists(self) -> bool:
        return self.location in _REGISTRY

    async def create(self, manifest: dict[str, Any]) -> None:
        if self.location in _REGISTRY:
            raise IndexExists(f"an index named {self.location!r} already exists in memory")
        _REGISTRY[self.location] = _Stored(manifest)

    async def open(self, read_only: bool = False) -> Snapshot:
        stored = self._stored()
        if not read_only:
            if stored.writer:
                raise IndexLocked(f"index {self.location!r} is open for writing elsewhere")
            stored.writer = self._writer = True
        snap = stored.snapshot
        return Snapshot(copy.deepcopy(snap.manifest), list(snap.rows), bytes(snap.vectors), [list(c) for c in snap.log])

    async def commit(self, ops: Sequence[Op]) -> None:
        frozen = [Put(op.row, bytes(op.vector)) if isinstance(op, Put) else op for op in ops]
        self._stored().snapshot.log.append(copy.deepcopy(frozen))

    async def write_snapshot(self, manifest: dict[str, Any], rows: Sequence[Row], vectors: bytes) -> None:
        stored = self._stored()
        stored.snapshot = Snapshot(copy.deepcopy(manifest), list(rows), bytes(vectors), [])

    @property
    def log_bytes(self) -> int:
        stored = _REGISTRY.get(self.location)
        return 0 if stored is None else sum(len(c) for c in stored.snapshot.log)

    @property
    def snapshot_bytes(self) -> int:
        stored = _REGISTRY.get(self.location)
        return 0 if stored is None else len(stored.snapshot.vectors) + len(stored.snapshot.rows)

    async def close(self) -> None:
        stored = _REGISTRY.get(self.location)
        if stored is not None and self._writer:
            stored.writer = False
        self._writer = False

    async def drop(self) -> None:
        _REGISTRY.pop(self.location, None)
