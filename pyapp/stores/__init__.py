"""Stores: where an index lives. ``store_for`` picks the right one for a location."""

from __future__ import annotations

from .._platform import is_pyodide
from .base import Changes, Delete, Op, Put, Row, Snapshot, Store
from .faulty import FaultyStore
from .memory import MemoryStore

MEMORY_PREFIX = "memory://"


def store_for(location: str | Store) -> Store:
    """``memory://name`` -> in-memory; otherwise a folder (CPython) or an IndexedDB database (Pyodide)."""
    if isinstance(location, Store):
        return location
    location = str(location)
    if location.startswith(MEMORY_PREFIX):
        return MemoryStore(location[len(MEMORY_PREFIX) :])
    if is_pyodide():
        from ..browser.idb_store import IndexedDBStore

        return IndexedDBStore(location)
    from .file import FileStore

    return FileStore(location)


__all__ = ["Changes", "Delete", "FaultyStore", "MemoryStore", "Op", "Put", "Row", "Snapshot", "Store", "store_for"]
