"""PgIndex: LocalIndex's async API on PostgreSQL + pgvector, for archives that outgrow one machine.

Same calls, same argument checks, same exceptions and the same filter semantics as ``LocalIndex``; the
work is PostgreSQL's: vectors in a pgvector column with an HNSW index (cosine), metadata in JSONB with the
filters compiled to SQL (``sqlfilter``; the ``indexed`` fields get indexes those filters use), keyword search
by PostgreSQL full text over the words ``pyapp.keyword.tokenize`` finds, hybrid by the same rank fusion.

This class is the thin public face (lifecycle, argument checks, delegation); one job per module behind it:
``catalogue`` (which indexes exist), ``session`` (the reader and writer connections), ``transactions``
(every write call one transaction, ``batch()``/``begin_update()`` one for all their writes, a savepoint each;
no clinvec lock between processes: concurrency is PostgreSQL's job), ``rows`` (items <-> rows, every write
checked before anything is sent), ``writes``, ``reads``, ``search`` (exact scan below ``exact_below`` rows or
with ``exact=True``, else HNSW with strict-order iterative scans and ``hnsw.ef_search`` = max(``ef_search``,
``top_k``)), ``admin`` (stats, VACUUM, the HNSW build). Reads see committed data only, as in LocalIndex.

``query(nprobe=)`` is checked as LocalIndex checks it and has no effect: an HNSW graph has no lists to
probe, and the knob that trades recall for speed there (``ef_search``, the candidate list) grows the other
way, so mapping one onto the other would make the same call mean different things. Set ``ef_search``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..embed.base import Embedder, Progress
from ..errors import (
    IndexExists,
    IndexNotFound,
    InvalidFilter,
    InvalidInput,
    UpdateInProgress,
)
from ..filters import Filter, compile_filter
from ..index_api import IndexAPI, QueryArgs, check_config, check_page
from ..kernels import default_kernel
from ..metadata import split_path
from ..staging import MAX_ID_LENGTH, check_id, item_dicts
from ..types import Item, Result
from . import catalogue, rows, schema
from .admin import Admin
from .connect import Vec
from .reads import Reads
from .search import Search
from .session import Session
from .sqlfilter import operands, to_sql
from .transactions import Transactions
from .values import MAX_EXACT_INT, jsonb_safe, no_nul
from .writes import Writes

FORMAT = "clinvec-pg-index"
FORMAT_VERSION = 1
EXACT_BELOW = 10_000  # tables smaller than this are scanned exactly (a scan is then as fast as HNSW)
EF_SEARCH = 40  # pgvector's default; queries use max(ef_search, top_k)
# A filter matching fewer rows is answered by scoring them exactly (through an indexed field's index): cheaper
# than the graph walk, which passes over every row the filter drops (pg/search.py).
EXACT_MATCHES_BELOW = 2_000


def _check_indexed(indexed: Sequence[str]) -> builtins.list[str]:
    """What PostgreSQL adds to ``check_config``'s rule: no NUL, a valid dotted path (it becomes SQL text)."""
    for field in indexed:
        no_nul(field, "an indexed field name")
        try:
            split_path(field)
        except ValueError as exc:
            raise InvalidInput(f"indexed field {field!r}: {exc}") from None
    return list(indexed)


class PgIndex(IndexAPI):
    """A vector + keyword index in PostgreSQL. Build with ``create``/``open``; see the module docstring."""

    def __init__(self, name: str, manifest: dict[str, Any], session: Session, read_only: bool) -> None:
        self.name = name
        self._manifest = manifest
        self._session = session
        self._read_only = read_only
        self.dims: int = manifest["dims"]
        self.indexed: builtins.list[str] = list(manifest.get("indexed", []))
        self._paths = frozenset(split_path(f) for f in self.indexed)
        table = schema.table(name)
        self._kernel = default_kernel(self.dims)
        self._embedder: Embedder | None = None
        self._tx = Transactions(session, self._ensure_writable, lambda: self._closed)
        self._writes = Writes(self._tx, table, schema.sequence(name))
        self._reads = Reads(session, table, self._where)
        self._search = Search(session, table, self._where)
        self._admin = Admin(session, name)
        self._closed = False
        self.exact_below = EXACT_BELOW
        self.ef_search = EF_SEARCH
        self.exact_matches_below = EXACT_MATCHES_BELOW
        self.expand_abbreviations: bool | str = False

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        dsn: str,
        name: str,
        dims: int | None = None,
        metric: str = "cosine",
        indexed: Sequence[str] = (),
        exist_ok: bool = False,
        embedder: Embedder | None = None,
    ) -> PgIndex:
        """Create an empty index ``name`` in the database at ``dsn`` (or open it when ``exist_ok``).

        Each ``indexed`` field (a dotted path) gets indexes that its ``$eq``/``$in`` and number-range filters
        use (``schema.field_indexes``); every other field is filtered row by row."""
        schema.check_name(name)
        dims = check_config(dims, metric, indexed, embedder)
        if dims > schema.MAX_HNSW_DIMS:
            raise InvalidInput(f"pgvector's HNSW index takes at most {schema.MAX_HNSW_DIMS} dims, got {dims}")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dims": dims,
            "metric": metric,
            "indexed": _check_indexed(indexed),
            "embedder": None if embedder is None else embedder.identity,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            await catalogue.create(dsn, name, manifest)
        except IndexExists:
            if not exist_ok:
                raise
        return await cls.open(dsn, name, embedder=embedder)

    @classmethod
    async def open(cls, dsn: str, name: str, read_only: bool = False, embedder: Embedder | None = None) -> PgIndex:
        """Open index ``name`` (``IndexNotFound`` if absent). Never ``IndexLocked``: writers do not exclude."""
        schema.check_name(name)
        manifest = await catalogue.manifest_of(dsn, name)
        if manifest is None:
            raise IndexNotFound(f"no index named {name!r} in this database")
        index = cls(name, manifest, await Session.open(dsn, read_only), read_only)
        if embedder is not None:
            index.use_embedder(embedder)
        return index

    @staticmethod
    async def exists(dsn: str, name: str) -> bool:
        """True when index ``name`` exists in the database at ``dsn``."""
        return await catalogue.manifest_of(dsn, schema.check_name(name)) is not None

    @staticmethod
    async def drop(dsn: str, name: str) -> None:
        """Delete index ``name``, its rows and its indexes (no error when absent)."""
        await catalogue.drop(dsn, schema.check_name(name))

    async def close(self) -> None:
        """Close the connections; an open update is rolled back (nothing of it is kept)."""
        if self._closed:
            return
        self._closed = True
        self._tx.update = None
        await self._session.close()

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    def use_embedder(self, embedder: Embedder | None) -> None:
        """Attach (or detach) the embedder for text without vectors; it must match the recorded one."""
        from ..index import LocalIndex

        if embedder is not None:
            LocalIndex._check_embedder(self._manifest, embedder)
        self._embedder = embedder

    @property
    def location(self) -> str:
        return f"postgresql:{self.name}"

    @property
    def _writer(self) -> Any:
        """The writer connection (tests terminate its backend to prove a batch is one transaction)."""
        return self._session.writer

    async def _read(self, sql: str, params: Sequence[Any] = (), settings: dict[str, str] | None = None) -> list[Any]:
        """Rows of one query on the reader connection (committed data only)."""
        self._ensure_open()
        return await self._session.read(sql, params, settings)

    def _where(self, filter: dict[str, Any] | Filter | None) -> tuple[str, list[Any]]:
        """A filter as SQL (``InvalidFilter`` for one jsonb cannot compare as Python does)."""
        if filter is None:
            return "TRUE", []
        flt = compile_filter(filter)
        for value in operands(flt):
            jsonb_safe(value, "filter", InvalidFilter)
        return to_sql(flt, indexed=self._paths)

    # ------------------------------------------------------------------ writes
    async def _put(self, entries: list[dict[str, Any]], replace: bool, progress: Progress | None) -> list[str]:
        self._ensure_writable()
        prepared = await rows.prepare(entries, self._kernel, self.dims, self._embedder, progress)
        return await self._writes.put(prepared, replace)

    async def insert(
        self, vector: Any = None, metadata: dict[str, Any] | None = None, text: str | None = None, id: str | None = None
    ) -> str:
        """Add a new item and return its id (uuid4 when not given). ``DuplicateId`` if the id is taken."""
        return (await self._put([{"id": id, "vector": vector, "metadata": metadata, "text": text}], False, None))[0]

    async def upsert(
        self, id: str, vector: Any = None, metadata: dict[str, Any] | None = None, text: str | None = None
    ) -> str:
        """Insert or replace vector, metadata and text of ``id`` (its insertion order is kept)."""
        check_id(id)
        return (await self._put([{"id": id, "vector": vector, "metadata": metadata, "text": text}], True, None))[0]

    async def insert_many(self, items: Iterable[Any], progress: Progress | None = None) -> builtins.list[str]:
        """Insert many items in one transaction; all or nothing."""
        return await self._put(item_dicts(items), False, progress)

    async def upsert_many(self, items: Iterable[Any], progress: Progress | None = None) -> builtins.list[str]:
        """Insert or replace many items in one transaction; all or nothing. Every item needs an id."""
        entries = item_dicts(items)
        for n, entry in enumerate(entries):
            if entry.get("id") is None:
                raise InvalidInput(f"item {n} has no id; upsert needs one")
        return await self._put(entries, True, progress)

    async def update_metadata(self, id: str, metadata: dict[str, Any]) -> None:
        """Replace an item's metadata; vector, text and place stay. ``InvalidInput`` when the id is unknown."""
        self._ensure_writable()
        check_id(id)
        await self._writes.update_metadata(id, rows.check_metadata(id, metadata))

    async def delete(self, id: str) -> bool:
        """Delete one item; True if it existed."""
        return await self.delete_many([id]) == 1

    async def delete_many(self, ids: Iterable[str]) -> int:
        """Delete items in one transaction; returns how many existed."""
        if isinstance(ids, (str, bytes, dict)) or not isinstance(ids, Iterable):
            raise InvalidInput("ids must be a list of id strings")
        wanted = list(dict.fromkeys(check_id(i) for i in ids))
        self._ensure_writable()
        return await self._writes.delete_ids(wanted) if wanted else 0

    async def delete_where(self, filter: dict[str, Any]) -> int:
        """Delete every committed item matching ``filter`` in one transaction; returns how many."""
        where, params = self._where(filter)
        self._ensure_writable()
        return await self._writes.delete_where(where, params)

    # ------------------------------------------------------------------ batches
    def begin_update(self) -> None:
        """Start an index-wide update: every write, from any task, joins one transaction until ``end_update``."""
        self._tx.begin_update()

    async def end_update(self) -> None:
        """Commit the update's transaction. The update ends whether or not the commit succeeds."""
        await self._tx.end_update()

    def cancel_update(self) -> None:
        """Discard the update (its transaction is rolled back before the next write runs)."""
        self._tx.cancel_update()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[PgIndex]:
        """``async with idx.batch():`` one transaction committed at exit; an exception rolls it all back.

        The batch belongs to its task (and tasks started inside it); other tasks' writes wait for it."""
        async with self._tx.batch():
            yield self

    # ------------------------------------------------------------------ reads
    async def get(self, id: str) -> Item | None:
        """The committed item with this id, or None."""
        self._ensure_open()
        return await self._reads.get(check_id(id))

    async def count(self, filter: dict[str, Any] | None = None) -> int:
        """How many committed items match ``filter`` (all when None)."""
        self._ensure_open()
        return await self._reads.count(filter)

    async def list(
        self, filter: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Item]:
        """Committed items in insertion order, optionally filtered and paged."""
        self._ensure_open()
        check_page(limit, offset)
        return await self._reads.page(filter, limit, offset)

    async def ids(self) -> builtins.list[str]:
        """Every committed id in insertion order."""
        self._ensure_open()
        return await self._reads.ids()

    async def iter_items(
        self, batch_size: int = 1024, filter: dict[str, Any] | None = None
    ) -> AsyncIterator[builtins.list[Item]]:
        """Committed items (matching ``filter``) in insertion order, ``batch_size`` at a time.

        Pages by insertion order, so items committed meanwhile after the current page are included."""
        self._ensure_open()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInput("batch_size must be a positive integer")
        async for batch in self._reads.batches(batch_size, filter):
            yield batch

    async def distinct(self, field: str) -> builtins.list[Any]:
        """The distinct scalar metadata values at ``field`` (a dotted path), sorted as LocalIndex sorts them."""
        self._ensure_open()
        try:
            segments = split_path(field)
        except ValueError as exc:
            raise InvalidInput(f"field {field!r}: {exc}") from None
        return await self._reads.distinct(segments, field)

    # ------------------------------------------------------------------ queries
    async def _query(self, args: QueryArgs) -> builtins.list[Result]:
        """``query()`` (``pyapp.index_api``): LocalIndex's checks, then PostgreSQL answers (``search``).

        ``exact=False`` scans exactly below ``exact_below`` rows and uses HNSW above (set ``exact_below = 0``
        to always use HNSW), except for a filter matching fewer than ``exact_matches_below`` rows (set it to 0
        to walk the graph for every filter); ``nprobe`` has no effect (module docstring)."""
        p = args.plan(self._embedder is not None)
        if p.filter is not None:
            self._where(p.filter)  # InvalidFilter before any work
        prepared: Vec | None = None
        if p.mode in ("vector", "hybrid"):
            if args.vector is not None:
                raw = self._kernel.pack([args.vector])
            else:
                assert self._embedder is not None and p.text
                raw = await self._embedder.embed_raw([p.vector_text or p.text])
            prepared = Vec(self._kernel.prepare(raw, 1), self.dims)
        return await self._search.run(p, prepared, self.exact_below, self.ef_search, self.exact_matches_below)

    # ------------------------------------------------------------------ maintenance
    async def stats(self) -> dict[str, Any]:
        """Counts, configuration and PostgreSQL facts (server and pgvector versions, table size)."""
        self._ensure_open()
        facts = await self._admin.facts()
        return {
            "location": self.location,
            "items": facts["items"],
            "dims": self.dims,
            "metric": self._manifest.get("metric", "cosine"),
            "indexed": list(self.indexed),
            "kernel": "pgvector-hnsw",
            "store": "PostgreSQL",
            "read_only": self._read_only,
            "embedder": self._manifest.get("embedder"),
            "keyword": {"built": True, "texts": facts["texts"], "docs": facts["texts"]},
            "update_in_progress": self._tx.update is not None,
            "compaction_error": None,
            "created": self._manifest.get("created"),
            "server_version": facts["server"],
            "pgvector": facts["pgvector"],
            "bytes": facts["bytes"],
        }

    async def compact(self) -> None:
        """``VACUUM ANALYZE`` the table: reclaim deleted rows, refresh the planner's statistics."""
        self._ensure_writable()
        if self._tx.joined() is not None:
            raise UpdateInProgress("compact() inside a batch would wait for the batch itself; call it after")
        await self._admin.vacuum()

    async def drop_vector_index(self) -> None:
        """Drop the HNSW index before a bulk load (queries then scan exactly); ``build_vector_index`` after.

        Why: pgvector inserts into an existing HNSW graph one row at a time; building the graph once over
        the loaded rows is several times faster (figures: docs/BENCHMARKS.md)."""
        self._ensure_writable()
        await self._admin.drop_vector_index()

    async def build_vector_index(self, maintenance_work_mem: str = "1GB", workers: int = 1) -> None:
        """(Re)build the HNSW index (cosine) over every row; ``maintenance_work_mem`` should hold the graph
        (about rows x (dims x 4 + 200) bytes), or the build slows down sharply once it spills. ``workers``:
        PostgreSQL's parallel maintenance workers besides the leader (pgvector builds HNSW in parallel)."""
        self._ensure_writable()
        await self._admin.build_vector_index(maintenance_work_mem, workers)

    async def refresh(self) -> int:
        """Always 0: every read sees the newest committed state (other writers' included)."""
        self._ensure_open()
        return 0


__all__ = ["EF_SEARCH", "EXACT_BELOW", "MAX_EXACT_INT", "MAX_ID_LENGTH", "PgIndex"]
