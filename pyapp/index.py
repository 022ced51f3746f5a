"""LocalIndex: the one async API of clinvec, identical on the server and in the browser.

A thin public class over modules with one job each: ``rows`` (the aligned in-memory state: rows, vectors,
metadata columns, BM25), ``staging`` (validating write calls into ``Put``/``Delete`` ops), ``commits`` (who
stages into which commit; durable first, applied second; compaction), ``planner`` (query checks, legs and
fusion) and the store (``pyapp.stores``). A failed call changes nothing; only ``ClinvecError``s escape.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ._gc import paused_gc
from .changes import Tombstone, changed_ids, read_rows, tombstones_after, versions_of
from .commits import BULK_SNAPSHOT_OPS, MIN_COMPACT_LOG_BYTES, Committer
from .embed.base import Embedder, Progress
from .errors import DimensionMismatch, IndexExists, InvalidInput
from .filters import compile_filter
from .index_api import IndexAPI, QueryArgs, check_config, check_page
from .kernels import VectorKernel, default_kernel
from .kernels import ivf as _ivf
from .planner import DEFAULT_FUSION, DEFAULT_RRF_K, DEFAULT_WEIGHTS, FUSIONS, HYBRID_DEPTH, MODES, run
from .rows import ROW_SEQ, IndexRows
from .staging import MAX_ID_LENGTH, Stager, check_id, item_dicts
from .stores import Row, Store, store_for
from .types import Item, Result

FORMAT = "clinvec-index"
FORMAT_VERSION = 1

__all__ = [
    "BULK_SNAPSHOT_OPS",
    "DEFAULT_FUSION",
    "DEFAULT_RRF_K",
    "DEFAULT_WEIGHTS",
    "FUSIONS",
    "HYBRID_DEPTH",
    "MAX_ID_LENGTH",
    "MIN_COMPACT_LOG_BYTES",
    "MODES",
    "LocalIndex",
]


def _check_ids(ids: Any) -> builtins.list[str]:
    if isinstance(ids, (str, bytes, dict)) or not isinstance(ids, Iterable):
        raise InvalidInput("ids must be a list of id strings")
    return [check_id(i) for i in ids]


class LocalIndex(IndexAPI):
    """A vector + keyword index over items ``(id, vector, metadata, text)``. Build with ``create``/``open``."""

    def __init__(
        self,
        store: Store,
        manifest: dict[str, Any],
        kernel: VectorKernel,
        read_only: bool,
        embedder: Embedder | None,
    ) -> None:
        self._store = store
        self._manifest = manifest
        self._read_only = read_only
        self.dims: int = manifest["dims"]
        self.indexed: builtins.list[str] = list(manifest.get("indexed", []))
        bm25 = manifest.get("bm25", {})
        threshold = manifest.get("ivf", {}).get("threshold", _ivf.DEFAULT_THRESHOLD)
        self._state = IndexRows(kernel, self.indexed, (bm25.get("k1", 0.9), bm25.get("b", 0.4)), threshold)
        self._stager = Stager(self._state, self.dims)
        self._stager.embedder = embedder
        self._commits = Committer(store, self._state, manifest)
        self._closed = False
        # Query-side abbreviation expansion for queries that do not choose (``query(expand_abbreviations=None)``):
        # off by default, so answers stay exactly as before unless asked; see ``query``.
        self.expand_abbreviations: bool | str = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        location: str | Store,
        dims: int | None = None,
        metric: str = "cosine",
        indexed: Sequence[str] = (),
        exist_ok: bool = False,
        embedder: Embedder | None = None,
        bm25_k1: float = 0.9,
        bm25_b: float = 0.4,
        ivf_threshold: int | None = None,
    ) -> LocalIndex:
        """Create an empty index (or open it when ``exist_ok`` and it exists).

        ``dims`` comes from the embedder when one is given. ``ivf_threshold``: from this many items on, vector
        queries probe k-means partitions instead of scanning every row (``query(exact=True)`` still scans all);
        None takes ``pyapp.kernels.ivf.DEFAULT_THRESHOLD``. Stored in the manifest."""
        dims = check_config(dims, metric, indexed, embedder)
        if not (bm25_k1 >= 0 and 0 <= bm25_b <= 1):
            raise InvalidInput("BM25 needs k1 >= 0 and 0 <= b <= 1")
        threshold = _ivf.check_threshold(_ivf.DEFAULT_THRESHOLD if ivf_threshold is None else ivf_threshold)
        store = store_for(location)
        if await store.exists():
            if not exist_ok:
                raise IndexExists(f"an index already exists at {store.location!r}")
            return await cls.open(store, embedder=embedder)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dims": dims,
            "metric": metric,
            "indexed": list(indexed),
            "bm25": {"k1": bm25_k1, "b": bm25_b},
            "ivf": {"threshold": threshold},
            "embedder": None if embedder is None else embedder.identity,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        await store.create(manifest)
        return await cls.open(store, embedder=embedder)

    @classmethod
    async def open(cls, location: str | Store, read_only: bool = False, embedder: Embedder | None = None) -> LocalIndex:
        """Open an existing index (``IndexNotFound`` if absent, ``IndexLocked`` if another writer holds it)."""
        store = store_for(location)
        snapshot = await store.open(read_only=read_only)
        try:
            manifest = snapshot.manifest
            tombstones = manifest.pop("tombstones", None)  # the rows' state, not the index's configuration
            dims = manifest["dims"]
            if embedder is not None:
                cls._check_embedder(manifest, embedder)
            index = cls(store, manifest, default_kernel(dims), read_only, embedder)
            index._state.load(snapshot.rows, snapshot.vectors, tombstones, snapshot.ivf)
            for ops in snapshot.log:
                index._state.apply(ops)
        except BaseException:
            await store.close()
            raise
        return index

    @staticmethod
    def _check_embedder(manifest: dict[str, Any], embedder: Embedder) -> None:
        if embedder.dims != manifest["dims"]:
            raise DimensionMismatch(
                f"the embedder makes {embedder.dims}-d vectors; the index holds {manifest['dims']}-d"
            )
        recorded = manifest.get("embedder")
        if recorded:
            mine = embedder.identity
            keys = ("model", "variant")
            if any(recorded.get(k) != mine.get(k) for k in keys):
                raise InvalidInput(
                    f"this index was embedded by {recorded.get('model')!r} ({recorded.get('variant')}); "
                    f"the embedder given is {mine.get('model')!r} ({mine.get('variant')}): queries would not compare"
                )

    @staticmethod
    async def exists(location: str | Store) -> bool:
        """True when an index is stored at ``location``."""
        return await store_for(location).exists()

    @staticmethod
    async def drop(location: str | Store) -> None:
        """Delete the index at ``location`` (no error when absent)."""
        await store_for(location).drop()

    async def close(self) -> None:
        """Release the store (and the writer lock). Pending uncommitted updates are discarded."""
        if not self._closed:
            self._closed = True
            self._commits.discard()
            await self._store.close()

    @property
    def embedder(self) -> Embedder | None:
        return self._stager.embedder

    def use_embedder(self, embedder: Embedder | None) -> None:
        """Attach (or detach) the embedder used for text without vectors; it must match the recorded one."""
        if embedder is not None:
            self._check_embedder(self._manifest, embedder)
        self._stager.embedder = embedder

    @property
    def location(self) -> str:
        return self._store.location

    async def _write(self, build: Any) -> Any:
        self._ensure_writable()
        return await self._commits.write(build)

    # ------------------------------------------------------------------ writes
    async def insert(
        self, vector: Any = None, metadata: dict[str, Any] | None = None, text: str | None = None, id: str | None = None
    ) -> str:
        """Add a new item and return its id (uuid4 when not given). ``DuplicateId`` if the id is taken.

        Without a vector the text is embedded by the index's embedder.
        """
        entry = {"id": id, "vector": vector, "metadata": metadata, "text": text}
        return (await self._write(lambda staged: self._stager.puts(staged, [entry], replace=False)))[0]

    async def upsert(
        self, id: str, vector: Any = None, metadata: dict[str, Any] | None = None, text: str | None = None
    ) -> str:
        """Insert or replace vector, metadata and text of ``id`` (its insertion order is kept)."""
        check_id(id)
        entry = {"id": id, "vector": vector, "metadata": metadata, "text": text}
        return (await self._write(lambda staged: self._stager.puts(staged, [entry], replace=True)))[0]

    async def insert_many(self, items: Iterable[Any], progress: Progress | None = None) -> builtins.list[str]:
        """Insert many items in one commit; all or nothing (one bad item rejects the whole call)."""
        entries = item_dicts(items)
        with paused_gc(len(entries)):
            return await self._write(lambda staged: self._stager.puts(staged, entries, False, progress))

    async def upsert_many(self, items: Iterable[Any], progress: Progress | None = None) -> builtins.list[str]:
        """Insert or replace many items in one commit; all or nothing. Every item needs an id."""
        entries = item_dicts(items)
        for i, entry in enumerate(entries):
            if entry.get("id") is None:
                raise InvalidInput(f"item {i} has no id; upsert needs one")
        with paused_gc(len(entries)):
            return await self._write(lambda staged: self._stager.puts(staged, entries, True, progress))

    async def update_metadata(self, id: str, metadata: dict[str, Any]) -> None:
        """Replace an item's metadata without re-embedding; its vector and text stay. ``InvalidInput`` when the
        id does not exist."""
        check_id(id)

        async def build(staged: Any) -> None:
            self._stager.metadata_update(staged, id, metadata)

        await self._write(build)

    async def delete(self, id: str) -> bool:
        """Delete one item; True if it existed (deleting an unknown id is a no-op, as in vectra)."""
        return await self.delete_many([id]) == 1

    async def delete_many(self, ids: Iterable[str]) -> int:
        """Delete items in one commit; returns how many existed."""
        wanted = _check_ids(ids)

        async def build(staged: Any) -> int:
            return self._stager.deletes(staged, wanted)

        return await self._write(build)

    async def delete_where(self, filter: dict[str, Any]) -> int:
        """Delete every committed item matching ``filter`` in one commit; returns how many."""
        flt = compile_filter(filter)
        self._ensure_writable()
        rows = self._state.rows
        return await self.delete_many([rows[r].id for r in self._state.table.select(flt)])

    # ------------------------------------------------------------------ updates (batch)
    def begin_update(self) -> None:
        """Start index-wide staging (vectra's model): every write, from any task, is staged until ``end_update``;
        nothing is visible or durable before. Prefer ``batch()``, which belongs to one task."""
        self._ensure_writable()
        self._commits.begin_update()

    async def end_update(self) -> None:
        """Commit every staged write as one durable commit. The update ends whether or not the commit succeeds
        (on failure nothing of it is applied, and later writes are plain durable writes again)."""
        self._ensure_writable()
        await self._commits.end_update()

    def cancel_update(self) -> None:
        """Discard every staged write."""
        self._commits.cancel_update()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[LocalIndex]:
        """``async with idx.batch():`` one durable commit at exit; an exception rolls everything back.

        The batch belongs to the task that opened it (and tasks it starts inside it): other tasks' writes wait
        until it ends and never join it."""
        self._ensure_writable()
        async with self._commits.batch():
            yield self

    # ------------------------------------------------------------------ reads
    async def get(self, id: str) -> Item | None:
        """The committed item with this id, or None."""
        self._ensure_open()
        check_id(id)
        row = self._state.row_of.get(id)
        return None if row is None else self._state.item(row)

    def _select(self, filter: dict[str, Any] | None) -> Sequence[int] | None:
        return None if filter is None else self._state.table.select(compile_filter(filter))

    async def count(self, filter: dict[str, Any] | None = None) -> int:
        """How many committed items match ``filter`` (all when None)."""
        self._ensure_open()
        rows = self._select(filter)
        return len(self._state) if rows is None else len(rows)

    async def list(
        self, filter: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Item]:
        """Committed items in insertion order, optionally filtered and paged."""
        self._ensure_open()
        check_page(limit, offset)
        ordered = self._state.in_order(self._select(filter))
        end = None if limit is None else offset + limit
        return self._state.items(ordered[offset:end])

    async def ids(self) -> builtins.list[str]:
        """Every committed id in insertion order (cheap: no vectors are copied)."""
        self._ensure_open()
        return [row.id for row in sorted(self._state.rows, key=ROW_SEQ)]

    async def iter_items(self, batch_size: int = 1024) -> AsyncIterator[builtins.list[Item]]:
        """Every committed item in insertion order, ``batch_size`` at a time (export, backup, sync).

        The order is fixed when iteration starts; items deleted meanwhile are skipped, replaced ones
        come back as they are when their batch is read."""
        self._ensure_open()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInput("batch_size must be a positive integer")
        ids = [row.id for row in sorted(self._state.rows, key=ROW_SEQ)]
        for start in range(0, len(ids), batch_size):
            self._ensure_open()
            row_of = self._state.row_of
            rows = [r for r in map(row_of.get, ids[start : start + batch_size]) if r is not None]
            yield self._state.items(rows)

    # ------------------------------------------------------------------ sync (pyapp.changes, pyapp.sync)
    @property
    def position(self) -> int:
        """The stamp of the newest commit (0 before any): ``changes(since=position)`` is what came after."""
        return self._state.next_commit - 1

    async def changes(
        self, since: int | None = None, batch_size: int = 1024
    ) -> AsyncIterator[builtins.list[tuple[Row, bytes]]]:
        """The rows written after commit ``since`` (every row when None) with their stamps and float32 vector
        bytes, in insertion order, ``batch_size`` at a time; ``tombstones(since)`` gives the deletes."""
        self._ensure_open()
        ids = changed_ids(self._state, since)
        for start in range(0, len(ids), batch_size):
            self._ensure_open()
            yield list(read_rows(self._state, ids[start : start + batch_size]))

    def tombstones(self, since: int) -> builtins.list[Tombstone]:
        """The ids deleted after commit ``since`` (and not written again), oldest first."""
        self._ensure_open()
        return tombstones_after(self._state, since)

    def versions(self, ids: builtins.list[str]) -> dict[str, tuple[Row, bytes] | Tombstone]:
        """Each known id's stored row (with stamps) and vector bytes, or its tombstone (sync's conflict rule)."""
        self._ensure_open()
        return versions_of(self._state, ids)

    async def distinct(self, field: str) -> builtins.list[Any]:
        """The distinct scalar metadata values at ``field`` (a dotted path), sorted; cheap on indexed fields."""
        self._ensure_open()
        values = self._state.table.distinct(field)
        return sorted(values, key=lambda v: (type(v).__name__, v))

    async def _query(self, args: QueryArgs) -> builtins.list[Result]:
        """``query()`` (``pyapp.index_api``): checked by the planner, run over the committed rows."""
        embedder = self._stager.embedder
        return await run(self._state, embedder, args.vector, args.plan(embedder is not None))

    # ------------------------------------------------------------------ maintenance
    async def stats(self) -> dict[str, Any]:
        """Counts, configuration and storage facts. Cheap: never builds the keyword index."""
        self._ensure_open()
        state = self._state
        keyword: dict[str, Any] = {"built": state.keyword_built, "texts": state.texts}
        if state.keyword_built:
            keyword.update(state.keyword().stats())
        return {
            "location": self.location,
            "items": len(state),
            "dims": self.dims,
            "metric": self._manifest.get("metric", "cosine"),
            "indexed": list(self.indexed),
            "kernel": type(state.kernel).__name__,
            "store": type(self._store).__name__,
            "read_only": self._read_only,
            "embedder": self._manifest.get("embedder"),
            # where the attached embedder runs (provider/backend): informational, never compared (embed/providers.py)
            "embedder_runtime": getattr(self.embedder, "runtime", None),
            "keyword": keyword,
            "ivf": self._ivf_stats(),
            "update_in_progress": self._commits.update_in_progress,
            "compaction_error": self._commits.compaction_error,
            "created": self._manifest.get("created"),
            **self._store.info(),
        }

    def _ivf_stats(self) -> dict[str, Any]:
        state = self._state
        facts: dict[str, Any] = {"threshold": state.ivf_threshold, "active": state.ivf is not None}
        if state.ivf is not None:
            facts.update(state.ivf.stats())
        return facts

    async def compact(self) -> None:
        """Fold the log into a fresh snapshot (also happens by itself when the log outgrows the snapshot)."""
        self._ensure_writable()
        await self._commits.compact()

    async def refresh(self) -> int:
        """Apply what other writers (other tabs) committed since this index last looked; returns how many
        commits were applied (0: nothing new).

        Works on every store and for readers too: with single-writer stores (file, memory) nothing can change
        under an open index, so it returns 0 at once; with IndexedDB it is one small read when nothing changed.
        Commits also catch up by themselves, so a write never acts on a stale view."""
        self._ensure_open()
        return await self._commits.refresh()

    # ------------------------------------------------------------------ import / export
