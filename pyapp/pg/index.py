"""PgIndex: LocalIndex's async API on PostgreSQL + pgvector, for archives that outgrow one machine.

Same calls, same argument checks, same exceptions and the same filter semantics as ``LocalIndex``; the
work is PostgreSQL's: vectors in a pgvector column with an HNSW index (cosine), metadata in JSONB with the
filters compiled to SQL (``sqlfilter``), keyword search by PostgreSQL full text over the words
``pyapp.keyword.tokenize`` finds, hybrid by the same rank fusion (``pyapp.fusion``).

Concurrency is PostgreSQL's job: there is no clinvec-side lock between processes or machines; every write
call is one transaction, and ``batch()``/``begin_update()`` one transaction for all their writes (each
write inside is a savepoint, so a rejected call changes nothing and the batch goes on). Within one PgIndex
object a batch belongs to its task as in LocalIndex: other tasks' writes wait for it. Reads run on a
second connection, so like LocalIndex they see committed data only (a batch's writes appear at commit).

Vector queries are exact (a scan ordered by distance, ties by insertion order) when the table is small
(``exact_below`` rows) or ``exact=True``; otherwise HNSW answers with ``hnsw.ef_search`` =
max(``ef_search``, ``top_k``) and iterative scans in strict order, so a filtered query still fills
``top_k``; if it cannot (a very selective filter), the exact scan over the matching rows answers instead.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..embed.base import Embedder, Progress
from ..errors import (
    ClinvecError,
    DimensionMismatch,
    DuplicateId,
    IndexClosed,
    IndexExists,
    IndexNotFound,
    InvalidFilter,
    InvalidInput,
    InvalidMetadata,
    InvalidVector,
    NoEmbedder,
    NoUpdateInProgress,
    ReadOnlyIndex,
    UpdateInProgress,
)
from ..filters import Filter, compile_filter
from ..fusion import reciprocal_rank_fusion, weighted_fusion
from ..kernels import default_kernel
from ..keyword import tokenize
from ..planner import DEFAULT_FUSION, DEFAULT_RRF_K, DEFAULT_WEIGHTS, HYBRID_DEPTH, QueryPlan, plan
from ..staging import MAX_ID_LENGTH, check_id, check_text, item_dicts
from ..types import Item, Result
from . import schema
from .connect import Vec, connect, load_psycopg, storage_error
from .sqlfilter import operands, to_sql

FORMAT = "clinvec-pg-index"
FORMAT_VERSION = 1
MAX_EXACT_INT = 2**53  # jsonb numbers compare as decimals; beyond this an int and a float could tie wrongly
EXACT_BELOW = 10_000  # tables smaller than this are scanned exactly (a scan is then as fast as HNSW)
SIZE_TTL = 2.0  # seconds a table-size estimate is reused (it only decides exact scan vs HNSW)
EF_SEARCH = 40  # pgvector's default; queries use max(ef_search, top_k)
_OWNER: contextvars.ContextVar[object | None] = contextvars.ContextVar("clinvec_pg_batch_owner", default=None)


def _jsonb_safe(value: Any, where: str, error: type[ClinvecError]) -> None:
    """What jsonb cannot hold, refused (``error``) rather than silently changed: NUL characters, and
    integers beyond +-2**53 (they would compare with floats unlike Python; see docs)."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = v.__class__
        if kind is str:
            if "\x00" in v:
                raise error(f"{where}: a NUL character cannot be stored in PostgreSQL")
        elif kind is int:
            if not -MAX_EXACT_INT <= v <= MAX_EXACT_INT:
                raise error(f"{where}: PgIndex stores integers within +-2**53 only, got {v}")
        elif kind is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
        elif kind is list:
            stack.extend(v)


def _no_nul(value: str | None, what: str) -> None:
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{what} holds a NUL character, which PostgreSQL text cannot store")


MAX_LEXEME_BYTES = 2046  # PostgreSQL refuses longer words in a tsvector ("word is too long")
MAX_TSVECTOR_BYTES = 900_000  # under tsvector's 1 MB limit, with room for its own overhead


def _lexeme_ok(token: str) -> bool:
    return len(token) * 4 <= MAX_LEXEME_BYTES or len(token.encode("utf-8")) <= MAX_LEXEME_BYTES


def _terms(text: str | None) -> str | None:
    """The text's words as ``tokenize`` finds them, as ``::tsvector`` input with positions (so ``ts_rank``
    sees how often a word occurs). PostgreSQL's limits apply: 256 positions per word, each at most 16,383,
    words up to 2,046 bytes (longer ones, such as pasted base64, are left out of keyword search) and a
    tsvector under 1 MB (a text with more distinct words is searchable by its first ones)."""
    if text is None:
        return None
    positions: dict[str, list[str]] = {}
    size = 0
    for n, token in enumerate(tokenize(text), start=1):
        seen = positions.get(token)
        if seen is None:
            if not _lexeme_ok(token):
                continue
            size += len(token.encode("utf-8")) + 16
            if size > MAX_TSVECTOR_BYTES:
                break
            seen = positions[token] = []
        if len(seen) < 256:
            seen.append(str(min(n, 16383)))
            size += 6
    return " ".join(f"'{_quote(t)}':{','.join(p)}" for t, p in positions.items())


def _quote(token: str) -> str:
    return token.replace("\\", "\\\\").replace("'", "''")


def _tsquery(text: str) -> str | None:
    """Any of the query's words (BM25's OR semantics), as a ``::tsquery`` parameter; None when it has none."""
    words = [w for w in dict.fromkeys(tokenize(text)) if _lexeme_ok(w)]
    if not words:
        return None
    return " | ".join(f"'{_quote(t)}'" for t in words)


class _Update:
    """An open batch (``owner``: its task's marker) or index-wide update (``owner`` None)."""

    def __init__(self, owner: object | None) -> None:
        self.owner = owner
        self.begun = False
        self.step = asyncio.Lock()  # one write at a time inside the transaction (tasks started in a batch)


class PgIndex:
    """A vector + keyword index in PostgreSQL. Build with ``create``/``open``; see the module docstring."""

    def __init__(
        self, dsn: str, name: str, manifest: dict[str, Any], reader: Any, writer: Any, read_only: bool
    ) -> None:
        self._dsn = dsn
        self.name = name
        self._manifest = manifest
        self._reader = reader
        self._writer = writer
        self._read_only = read_only
        self.dims: int = manifest["dims"]
        self.indexed: builtins.list[str] = list(manifest.get("indexed", []))
        self._table = schema.table(name)
        self._seq = schema.sequence(name)
        self._kernel = default_kernel(self.dims)
        self._embedder: Embedder | None = None
        self._read_lock = asyncio.Lock()
        self._session: dict[str, str] = {}  # settings applied to the reader's session
        self._was_small, self._size_checked, self._size_for = True, -math.inf, EXACT_BELOW  # see _small
        self._write_lock = asyncio.Lock()
        self._update: _Update | None = None
        self._cancelling: asyncio.Task[None] | None = None  # a cancel_update's rollback (kept: tasks are weak)
        self._closed = False
        self.exact_below = EXACT_BELOW
        self.ef_search = EF_SEARCH
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
        """Create an empty index ``name`` in the database at ``dsn`` (or open it when ``exist_ok``)."""
        schema.check_name(name)
        if embedder is not None:
            if dims is not None and dims != embedder.dims:
                raise DimensionMismatch(f"dims={dims} but the embedder produces {embedder.dims}-d vectors")
            dims = embedder.dims
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
            raise InvalidInput(f"dims must be a positive integer, got {dims!r}")
        if dims > schema.MAX_HNSW_DIMS:
            raise InvalidInput(f"pgvector's HNSW index takes at most {schema.MAX_HNSW_DIMS} dims, got {dims}")
        if metric != "cosine":
            raise InvalidInput(f"metric {metric!r} is not supported; clinvec indexes use 'cosine'")
        if isinstance(indexed, str) or not all(isinstance(f, str) and f for f in indexed):
            raise InvalidInput("indexed must be a list of field names (dotted paths allowed)")
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dims": dims,
            "metric": metric,
            "indexed": list(indexed),
            "embedder": None if embedder is None else embedder.identity,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        conn = await connect(dsn)
        try:
            await cls._run_ddl(conn, name, manifest)
        except IndexExists:
            if not exist_ok:
                raise
        finally:
            await conn.close()
        return await cls.open(dsn, name, embedder=embedder)

    @staticmethod
    async def _run_ddl(conn: Any, name: str, manifest: dict[str, Any]) -> None:
        psycopg = load_psycopg()

        try:
            await conn.execute("BEGIN")
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('clinvec_catalogue'))")
            await conn.execute(schema.CREATE_CATALOGUE)
            cur = await conn.execute(f"SELECT 1 FROM {schema.CATALOGUE} WHERE name = %s", [name])
            if await cur.fetchone() is not None:
                raise IndexExists(f"an index named {name!r} already exists in this database")
            for statement in schema.create_statements(name, manifest["dims"]):
                await conn.execute(statement)
            await conn.execute(
                f"INSERT INTO {schema.CATALOGUE} (name, manifest) VALUES (%s, %s::jsonb)", [name, json.dumps(manifest)]
            )
            await conn.execute("COMMIT")
        except BaseException as exc:
            await conn.execute("ROLLBACK")
            if isinstance(exc, psycopg.Error):
                raise storage_error(exc) from None
            raise

    @classmethod
    async def open(cls, dsn: str, name: str, read_only: bool = False, embedder: Embedder | None = None) -> PgIndex:
        """Open index ``name`` (``IndexNotFound`` if absent). Never ``IndexLocked``: writers do not exclude."""
        schema.check_name(name)
        manifest = await cls._manifest_of(dsn, name)
        if manifest is None:
            raise IndexNotFound(f"no index named {name!r} in this database")
        reader = await connect(dsn)
        try:
            writer = None if read_only else await connect(dsn)
        except BaseException:
            await reader.close()
            raise
        index = cls(dsn, name, manifest, reader, writer, read_only)
        if embedder is not None:
            index.use_embedder(embedder)
        return index

    @staticmethod
    async def _manifest_of(dsn: str, name: str) -> dict[str, Any] | None:
        psycopg = load_psycopg()

        conn = await connect(dsn)
        try:
            cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [schema.CATALOGUE])
            row = await cur.fetchone()
            if not row[0]:
                return None
            cur = await conn.execute(f"SELECT manifest FROM {schema.CATALOGUE} WHERE name = %s", [name])
            row = await cur.fetchone()
            return None if row is None else row[0]
        except psycopg.Error as exc:
            raise storage_error(exc) from None
        finally:
            await conn.close()

    @staticmethod
    async def exists(dsn: str, name: str) -> bool:
        """True when index ``name`` exists in the database at ``dsn``."""
        return await PgIndex._manifest_of(dsn, schema.check_name(name)) is not None

    @staticmethod
    async def drop(dsn: str, name: str) -> None:
        """Delete index ``name`` and its rows (no error when absent)."""
        psycopg = load_psycopg()

        schema.check_name(name)
        conn = await connect(dsn)
        try:
            await conn.execute("BEGIN")
            cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [schema.CATALOGUE])
            if (await cur.fetchone())[0]:
                await conn.execute(f"DELETE FROM {schema.CATALOGUE} WHERE name = %s", [name])
            await conn.execute(f"DROP TABLE IF EXISTS {schema.table(name)}")
            await conn.execute("COMMIT")
        except psycopg.Error as exc:
            await conn.execute("ROLLBACK")
            raise storage_error(exc) from None
        finally:
            await conn.close()

    async def close(self) -> None:
        """Close the connections; an open update is rolled back (nothing of it is kept)."""
        if self._closed:
            return
        self._closed = True
        self._update = None
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.close()  # closing rolls back an open transaction

    async def __aenter__(self) -> PgIndex:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def manifest(self) -> dict[str, Any]:
        """The stored configuration (dims, indexed fields, which embedder made the vectors)."""
        return dict(self._manifest)

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
    def read_only(self) -> bool:
        return self._read_only

    @property
    def location(self) -> str:
        return f"postgresql:{self.name}"

    # ------------------------------------------------------------------ plumbing
    def _ensure_open(self) -> None:
        if self._closed:
            raise IndexClosed("this index is closed; open it again")

    def _ensure_writable(self) -> None:
        self._ensure_open()
        if self._read_only:
            raise ReadOnlyIndex(f"index {self.name!r} is open read-only")

    async def _read(self, sql: str, params: Sequence[Any] = (), settings: dict[str, str] | None = None) -> list[Any]:
        """Rows of one query on the reader connection. ``settings`` (such as ``hnsw.ef_search``) are set for
        the reader's session, only when they differ from what it has: one round trip for most queries."""
        psycopg = load_psycopg()

        self._ensure_open()
        async with self._read_lock:
            if self._reader.closed:  # the server or a network cut closed it: the next read reconnects
                self._reader = await connect(self._dsn)
                self._session = {}
            conn = self._reader
            try:
                changed = {k: v for k, v in (settings or {}).items() if self._session.get(k) != v}
                if changed:
                    calls = ", ".join("set_config(%s, %s, false)" for _ in changed)
                    await conn.execute(f"SELECT {calls}", [x for kv in changed.items() for x in kv])
                    self._session.update(changed)
                cur = await conn.execute(sql, params)
                return await cur.fetchall()
            except psycopg.Error as exc:
                raise storage_error(exc) from None

    def _joins_update(self) -> _Update | None:
        update = self._update
        if update is not None and (update.owner is None or update.owner is _OWNER.get()):
            return update
        return None

    async def _write(self, work: Any) -> Any:
        """Run ``work(conn)`` as one transaction, or as a savepoint of the update this call belongs to."""
        psycopg = load_psycopg()

        self._ensure_writable()
        update = self._joins_update()
        conn = self._writer
        if update is None:
            async with self._write_lock:
                self._ensure_writable()
                if conn.closed:  # lost (server restart, terminated backend): a plain write reconnects
                    conn = self._writer = await connect(self._dsn)
                try:
                    await conn.execute("BEGIN")
                    result = await work(conn)
                    await conn.execute("COMMIT")
                    return result
                except BaseException as exc:
                    await self._rollback(conn)
                    if isinstance(exc, psycopg.Error):
                        raise storage_error(exc) from None
                    raise
        async with update.step:
            if not update.begun:  # begin_update is synchronous: its transaction starts with its first write
                await self._write_lock.acquire()
                if self._update is not update:
                    self._write_lock.release()
                    raise NoUpdateInProgress("the update this write was started in has already ended")
                if conn.closed:
                    conn = self._writer = await connect(self._dsn)
                await conn.execute("BEGIN")
                update.begun = True
            try:
                await conn.execute("SAVEPOINT clinvec_call")
                result = await work(conn)
                await conn.execute("RELEASE SAVEPOINT clinvec_call")
                return result
            except BaseException as exc:
                await conn.execute("ROLLBACK TO SAVEPOINT clinvec_call")
                if isinstance(exc, psycopg.Error):
                    raise storage_error(exc) from None
                raise

    @staticmethod
    async def _rollback(conn: Any) -> None:
        try:
            await conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone; the server rolled back already
            pass

    def _filter(self, filter: dict[str, Any] | Filter) -> Filter:
        flt = compile_filter(filter)
        for value in operands(flt):
            _jsonb_safe(value, "filter", InvalidFilter)
        return flt

    def _where(self, filter: dict[str, Any] | Filter | None) -> tuple[str, list[Any]]:
        if filter is None:
            return "TRUE", []
        return to_sql(self._filter(filter))

    # ------------------------------------------------------------------ writes
    async def _prepare(self, entries: list[dict[str, Any]], progress: Progress | None) -> list[tuple[Any, ...]]:
        """Checked rows ``(id, Vec, metadata_json, text, terms)``; nothing is sent before all are valid."""
        from ..metadata import validate_metadata

        ids = [str(uuid.uuid4()) if e.get("id") is None else e.get("id") for e in entries]
        for item_id in ids:
            check_id(item_id)
            _no_nul(item_id, "an id")
        once: set[str] = set()
        for item_id in ids:
            if item_id in once:
                raise DuplicateId(f"id {item_id!r} appears twice in one call")
            once.add(item_id)
        metadatas = [{} if e.get("metadata") is None else validate_metadata(e.get("metadata")) for e in entries]
        for item_id, metadata in zip(ids, metadatas):
            _jsonb_safe(metadata, f"metadata of {item_id!r}", InvalidMetadata)
        texts = [check_text(e.get("text")) for e in entries]
        for text in texts:
            _no_nul(text, "a text")
        raw = await self._vectors(entries, progress)
        width = self.dims * 4
        return [
            (item_id, Vec(raw[n * width : (n + 1) * width], self.dims), json.dumps(meta), text, _terms(text))
            for n, (item_id, meta, text) in enumerate(zip(ids, metadatas, texts))
        ]

    async def _vectors(self, entries: list[dict[str, Any]], progress: Progress | None) -> bytes:
        """Prepared (finite, non-zero, L2-normalised float32) vectors, embedded from text where missing."""
        kernel, width = self._kernel, self.dims * 4
        given = [e.get("vector") for e in entries]
        missing = [n for n, v in enumerate(given) if v is None]
        parts: dict[int, bytes] = {}
        present = [n for n, v in enumerate(given) if v is not None]
        if present:
            packed = kernel.pack([given[n] for n in present])
            for j, n in enumerate(present):
                parts[n] = bytes(packed[j * width : (j + 1) * width])
        if missing:
            if self._embedder is None:
                raise NoEmbedder(
                    f"item {missing[0]} has no vector and this index has no embedder; "
                    "pass a vector or open the index with an embedder"
                )
            texts = [entries[n].get("text") for n in missing]
            if any(not t for t in texts):
                raise InvalidInput("an item without a vector needs non-empty text to embed")
            embedded = await self._embedder.embed_raw(texts, progress)
            for j, n in enumerate(missing):
                parts[n] = bytes(embedded[j * width : (j + 1) * width])
        try:
            return bytes(kernel.prepare(b"".join(parts[n] for n in range(len(entries))), len(entries)))
        except (InvalidVector, DimensionMismatch) as exc:
            raise type(exc)(str(exc).replace("vector ", "item ", 1)) from None

    async def _put(self, entries: list[dict[str, Any]], replace: bool, progress: Progress | None) -> list[str]:
        self._ensure_writable()
        rows = await self._prepare(entries, progress)
        if not rows:
            return []
        sql = (
            f"INSERT INTO {self._table} (id, seq, embedding, metadata, metadata_json, text, terms) "
            f"VALUES (%s, nextval(%s::regclass), %b, %s::jsonb, %s, %s, %s::tsvector)"
        )
        if replace:
            sql += (
                " ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata,"
                " metadata_json = EXCLUDED.metadata_json, text = EXCLUDED.text, terms = EXCLUDED.terms"
            )
        params = [(i, self._seq, vec, meta, meta, text, terms) for i, vec, meta, text, terms in rows]

        async def work(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(sql, params)

        await self._write(work)
        return [row[0] for row in rows]

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
        from ..metadata import validate_metadata

        self._ensure_writable()
        check_id(id)
        clean = validate_metadata(metadata)
        _jsonb_safe(clean, f"metadata of {id!r}", InvalidMetadata)
        text = json.dumps(clean)

        async def work(conn: Any) -> None:
            cur = await conn.execute(
                f"UPDATE {self._table} SET metadata = %s::jsonb, metadata_json = %s WHERE id = %s", [text, text, id]
            )
            if cur.rowcount == 0:
                raise InvalidInput(f"no item with id {id!r}")

        await self._write(work)

    async def delete(self, id: str) -> bool:
        """Delete one item; True if it existed."""
        return await self.delete_many([id]) == 1

    async def delete_many(self, ids: Iterable[str]) -> int:
        """Delete items in one transaction; returns how many existed."""
        if isinstance(ids, (str, bytes, dict)) or not isinstance(ids, Iterable):
            raise InvalidInput("ids must be a list of id strings")
        wanted = list(dict.fromkeys(check_id(i) for i in ids))
        self._ensure_writable()
        if not wanted:
            return 0

        async def work(conn: Any) -> int:
            cur = await conn.execute(f"DELETE FROM {self._table} WHERE id = ANY(%s::text[])", [wanted])
            return int(cur.rowcount)

        return await self._write(work)

    async def delete_where(self, filter: dict[str, Any]) -> int:
        """Delete every committed item matching ``filter`` in one transaction; returns how many."""
        where, params = self._where(filter)
        self._ensure_writable()

        async def work(conn: Any) -> int:
            cur = await conn.execute(f"DELETE FROM {self._table} WHERE {where}", params)
            return int(cur.rowcount)

        return await self._write(work)

    # ------------------------------------------------------------------ batches
    def begin_update(self) -> None:
        """Start an index-wide update: every write, from any task, joins one transaction until ``end_update``."""
        self._ensure_writable()
        if self._update is not None:
            raise UpdateInProgress("an update is already in progress; end or cancel it first")
        self._update = _Update(None)

    async def end_update(self) -> None:
        """Commit the update's transaction. The update ends whether or not the commit succeeds."""
        psycopg = load_psycopg()

        self._ensure_writable()
        update = self._update
        if update is None or update.owner is not None:
            raise NoUpdateInProgress("end_update called without begin_update")
        async with update.step:
            self._update = None
            if not update.begun:
                return
            try:
                await self._writer.execute("COMMIT")
            except psycopg.Error as exc:
                await self._rollback(self._writer)
                raise storage_error(exc) from None
            finally:
                self._write_lock.release()

    def cancel_update(self) -> None:
        """Discard the update (its transaction is rolled back before the next write runs)."""
        update = self._update
        if update is None or update.owner is not None:
            raise NoUpdateInProgress("cancel_update called without begin_update")
        self._update = None
        if update.begun:
            self._cancelling = asyncio.get_running_loop().create_task(self._finish_cancel(update))

    async def _finish_cancel(self, update: _Update) -> None:
        async with update.step:
            try:
                if not self._closed:
                    await self._rollback(self._writer)
            finally:
                self._write_lock.release()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[PgIndex]:
        """``async with idx.batch():`` one transaction committed at exit; an exception rolls it all back.

        The batch belongs to its task (and tasks started inside it); other tasks' writes wait for it."""
        psycopg = load_psycopg()

        self._ensure_writable()
        if self._joins_update() is not None:
            if self._update is not None and self._update.owner is None:
                raise UpdateInProgress("an update (begin_update) is open; end or cancel it first")
            raise UpdateInProgress("this task already has a batch open")
        await self._write_lock.acquire()
        marker = object()
        token = _OWNER.set(marker)
        update = _Update(marker)
        update.begun = True
        self._update = update
        committed = False
        try:
            if self._writer.closed:
                self._writer = await connect(self._dsn)
            await self._writer.execute("BEGIN")
            try:
                yield self
            finally:
                async with update.step:  # let a straggling write of the batch finish first
                    self._update = None
            await self._writer.execute("COMMIT")
            committed = True
        except psycopg.Error as exc:
            raise storage_error(exc) from None
        finally:
            if not committed and not self._closed:
                await self._rollback(self._writer)
            _OWNER.reset(token)
            self._write_lock.release()

    # ------------------------------------------------------------------ reads
    def _item(self, row: Sequence[Any]) -> Item:
        """An Item from ``(id, embedding, metadata_json, text)``."""
        return Item._from_float32(row[0], row[1], json.loads(row[2]), row[3])

    _COLUMNS = "id, embedding, metadata_json, text"

    async def get(self, id: str) -> Item | None:
        """The committed item with this id, or None."""
        self._ensure_open()
        check_id(id)
        rows = await self._read(f"SELECT {self._COLUMNS} FROM {self._table} WHERE id = %s", [id])
        return self._item(rows[0]) if rows else None

    async def count(self, filter: dict[str, Any] | None = None) -> int:
        """How many committed items match ``filter`` (all when None)."""
        self._ensure_open()
        where, params = self._where(filter)
        rows = await self._read(f"SELECT count(*) FROM {self._table} WHERE {where}", params)
        return int(rows[0][0])

    async def list(
        self, filter: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Item]:
        """Committed items in insertion order, optionally filtered and paged."""
        self._ensure_open()
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise InvalidInput("limit must be a non-negative integer or None")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InvalidInput("offset must be a non-negative integer")
        where, params = self._where(filter)
        rows = await self._read(
            f"SELECT {self._COLUMNS} FROM {self._table} WHERE {where} ORDER BY seq LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [self._item(r) for r in rows]

    async def ids(self) -> builtins.list[str]:
        """Every committed id in insertion order."""
        rows = await self._read(f"SELECT id FROM {self._table} ORDER BY seq")
        return [r[0] for r in rows]

    async def iter_items(
        self, batch_size: int = 1024, filter: dict[str, Any] | None = None
    ) -> AsyncIterator[builtins.list[Item]]:
        """Committed items (matching ``filter``) in insertion order, ``batch_size`` at a time.

        Pages by insertion order, so items committed meanwhile after the current page are included."""
        self._ensure_open()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInput("batch_size must be a positive integer")
        where, params = self._where(filter)
        last = -1
        while True:
            rows = await self._read(
                f"SELECT {self._COLUMNS}, seq FROM {self._table} WHERE seq > %s AND {where} ORDER BY seq LIMIT %s",
                [last, *params, batch_size],
            )
            if not rows:
                return
            last = rows[-1][4]
            yield [self._item(r) for r in rows]
            if len(rows) < batch_size:
                return

    async def distinct(self, field: str) -> builtins.list[Any]:
        """The distinct scalar metadata values at ``field`` (a dotted path), sorted as LocalIndex sorts them."""
        from ..filters import scalar_key
        from ..metadata import split_path

        self._ensure_open()
        try:
            segments = split_path(field)
        except ValueError as exc:
            raise InvalidInput(f"field {field!r}: {exc}") from None
        flt = compile_filter({field: {"$exists": True}})
        where, params = to_sql(flt)
        value = "metadata #> %s::text[]"
        rows = await self._read(
            f"SELECT DISTINCT ({value})::text FROM {self._table} WHERE {where} "
            f"AND jsonb_typeof({value}) NOT IN ('array', 'object')",
            [list(segments), *params, list(segments)],
        )
        seen: dict[Any, Any] = {}
        for (text,) in rows:
            v = json.loads(text)
            seen.setdefault(scalar_key(v), v)
        return sorted(seen.values(), key=lambda v: (type(v).__name__, v))

    # ------------------------------------------------------------------ queries
    async def query(
        self,
        vector: Any = None,
        text: str | None = None,
        top_k: int = 10,
        filter: dict[str, Any] | None = None,
        mode: str = "auto",
        min_score: float | None = None,
        fusion: str = DEFAULT_FUSION,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        rrf_k: float = DEFAULT_RRF_K,
        expand_abbreviations: bool | str | None = None,
        exact: bool | None = None,
    ) -> builtins.list[Result]:
        """Search committed items, as ``LocalIndex.query`` (same modes, fusion, ties by insertion order).

        ``exact``: True scans every matching row; False uses HNSW; None (default) scans exactly when the
        table holds fewer than ``exact_below`` rows. ``keyword_score`` is PostgreSQL's ``ts_rank``
        (term frequency, no length normalisation), not BM25: rankings are alike, scores are not."""
        self._ensure_open()
        if exact is not None and not isinstance(exact, bool):
            raise InvalidInput(f"exact must be True, False or None, got {exact!r}")
        expand = self.expand_abbreviations if expand_abbreviations is None else expand_abbreviations
        has_embedder = self._embedder is not None
        p = plan(has_embedder, vector, text, top_k, filter, mode, min_score, fusion, weights, rrf_k, expand)
        if p.filter is not None:
            self._filter(p.filter)
        prepared: Vec | None = None
        if p.mode in ("vector", "hybrid"):
            if vector is not None:
                raw = self._kernel.pack([vector])
            else:
                assert self._embedder is not None and p.text
                raw = await self._embedder.embed_raw([p.vector_text or p.text])
            prepared = Vec(self._kernel.prepare(raw, 1), self.dims)
        if p.mode == "vector":
            assert prepared is not None
            rows = await self._vector_leg(prepared, p, p.top_k, exact, full=True)
            return _cut([Result(self._item(r[3:]), r[2], vector_score=r[2]) for r in rows], p.min_score)
        if p.mode == "keyword":
            hits = await self._keyword_leg(p, p.top_k)
            items = await self._items([h[0] for h in hits])  # a row deleted meanwhile is left out
            return _cut([Result(items[i], s, keyword_score=s) for i, _, s in hits if i in items], p.min_score)
        assert prepared is not None
        depth = max(p.top_k, HYBRID_DEPTH)
        vector_leg = await self._vector_leg(prepared, p, depth, exact)
        keyword_leg = await self._keyword_leg(p, depth)
        seqs = {i: s for i, s, _ in vector_leg} | {i: s for i, s, _ in keyword_leg}
        if p.fusion == "rrf":
            ranked = [[i for i, _, _ in vector_leg], [i for i, _, _ in keyword_leg]]
            fused = reciprocal_rank_fusion(ranked, k=p.rrf_k, weights=list(p.weights))
        else:
            fused = weighted_fusion([[(i, s) for i, _, s in leg] for leg in (vector_leg, keyword_leg)], list(p.weights))
        fused.sort(key=lambda h: (-h[1], seqs[h[0]]))
        fused = fused[: p.top_k]
        keyword_scores = {i: s for i, _, s in keyword_leg}
        ids = [i for i, _ in fused]
        rows = await self._read(
            f"SELECT {self._COLUMNS}, 1 - (embedding <=> %b) FROM {self._table} WHERE id = ANY(%s::text[])",
            [prepared, ids],
        )
        found = {r[0]: (self._item(r), float(r[4])) for r in rows}
        results = [
            Result(found[i][0], s, vector_score=found[i][1], keyword_score=keyword_scores.get(i))
            for i, s in fused
            if i in found
        ]
        return _cut(results, p.min_score)

    async def _items(self, ids: builtins.list[str]) -> dict[str, Item]:
        if not ids:
            return {}
        rows = await self._read(f"SELECT {self._COLUMNS} FROM {self._table} WHERE id = ANY(%s::text[])", [ids])
        return {r[0]: self._item(r) for r in rows}

    async def _small(self) -> bool:
        """Whether the table is small enough to scan exactly: the planner's row estimate (a bounded count
        before the first ANALYZE), looked up at most every ``SIZE_TTL`` seconds."""
        now = time.monotonic()
        if now < self._size_checked + SIZE_TTL and self._size_for == self.exact_below:
            return self._was_small
        rows = await self._read("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [self._table])
        estimate = rows[0][0] if rows else -1
        if estimate is None or estimate < 0:
            rows = await self._read(
                f"SELECT count(*) FROM (SELECT 1 FROM {self._table} LIMIT %s) AS s", [self.exact_below]
            )
            estimate = rows[0][0]
        self._was_small, self._size_checked, self._size_for = estimate < self.exact_below, now, self.exact_below
        return self._was_small

    async def _vector_leg(
        self, q: Vec, p: QueryPlan, k: int, exact: bool | None, full: bool = False
    ) -> builtins.list[tuple[Any, ...]]:
        """``(id, seq, cosine)`` best first, ties by insertion order; with ``full`` also the item's
        ``(id, embedding, metadata_json, text)``, so a vector query is one round trip."""
        where, params = self._where(p.filter)
        columns = f"id, seq, 1 - (embedding <=> %b){', ' + self._COLUMNS if full else ''}"
        if exact is None:
            exact = await self._small()
        if not exact:
            ef = str(min(max(self.ef_search, k), 1000))
            rows = await self._read(
                f"SELECT {columns} FROM {self._table} WHERE {where} ORDER BY embedding <=> %b LIMIT %s",
                [q, *params, q, k],
                {"hnsw.ef_search": ef, "hnsw.iterative_scan": "strict_order"},
            )
            if len(rows) == k or p.filter is None:
                hits = [(r[0], r[1], float(r[2]), *r[3:]) for r in rows]
                hits.sort(key=lambda h: (-h[2], h[1]))
                return hits
        # exact: "+ 0" keeps the planner off the HNSW index, so every matching row is scored
        rows = await self._read(
            f"SELECT {columns} FROM {self._table} WHERE {where} ORDER BY (embedding <=> %b) + 0, seq LIMIT %s",
            [q, *params, q, k],
        )
        return [(r[0], r[1], float(r[2]), *r[3:]) for r in rows]

    async def _keyword_leg(self, p: QueryPlan, k: int) -> builtins.list[tuple[str, int, float]]:
        """``(id, seq, ts_rank)`` for rows holding any query word, best first, ties by insertion order."""
        query = _tsquery(p.keyword_text or p.text or "")
        if query is None:
            return []
        where, params = self._where(p.filter)
        rows = await self._read(
            f"SELECT id, seq, ts_rank(terms, %s::tsquery) AS rank FROM {self._table} "
            f"WHERE terms @@ %s::tsquery AND {where} ORDER BY rank DESC, seq LIMIT %s",
            [query, query, *params, k],
        )
        return [(r[0], r[1], float(r[2])) for r in rows]

    # ------------------------------------------------------------------ maintenance
    async def stats(self) -> dict[str, Any]:
        """Counts, configuration and PostgreSQL facts (server and pgvector versions, table size)."""
        self._ensure_open()
        rows = await self._read(
            f"SELECT count(*), count(text), pg_total_relation_size(%s::regclass), current_setting('server_version'),"
            f" (SELECT extversion FROM pg_extension WHERE extname = 'vector') FROM {self._table}",
            [self._table],
        )
        items, texts, size, server, pgvector = rows[0]
        return {
            "location": self.location,
            "items": int(items),
            "dims": self.dims,
            "metric": self._manifest.get("metric", "cosine"),
            "indexed": list(self.indexed),
            "kernel": "pgvector-hnsw",
            "store": "PostgreSQL",
            "read_only": self._read_only,
            "embedder": self._manifest.get("embedder"),
            "keyword": {"built": True, "texts": int(texts), "docs": int(texts)},
            "update_in_progress": self._update is not None,
            "compaction_error": None,
            "created": self._manifest.get("created"),
            "server_version": server,
            "pgvector": pgvector,
            "bytes": int(size),
        }

    async def compact(self) -> None:
        """``VACUUM ANALYZE`` the table: reclaim deleted rows, refresh the planner's statistics."""
        self._ensure_writable()
        if self._joins_update() is not None:
            raise UpdateInProgress("compact() inside a batch would wait for the batch itself; call it after")
        await self._admin(f"VACUUM (ANALYZE) {self._table}")

    async def drop_vector_index(self) -> None:
        """Drop the HNSW index before a bulk load (queries then scan exactly); ``build_vector_index`` after.

        Why: pgvector inserts into an existing HNSW graph one row at a time; building the graph once over
        the loaded rows is several times faster (figures: docs/BENCHMARKS.md)."""
        self._ensure_writable()
        await self._admin(f'DROP INDEX IF EXISTS "clinvec_{self.name}_hnsw"')

    async def build_vector_index(self, maintenance_work_mem: str = "1GB", workers: int = 1) -> None:
        """(Re)build the HNSW index (cosine) over every row; ``maintenance_work_mem`` should hold the graph
        (about rows x (dims x 4 + 200) bytes), or the build slows down sharply once it spills."""
        self._ensure_writable()
        if not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= 64:
            raise InvalidInput(f"workers must be an integer in 0..64, got {workers!r}")
        await self._admin("SELECT set_config('maintenance_work_mem', %s, false)", [str(maintenance_work_mem)])
        await self._admin("SELECT set_config('max_parallel_maintenance_workers', %s, false)", [str(workers)])
        await self._admin(f'DROP INDEX IF EXISTS "clinvec_{self.name}_hnsw"')
        await self._admin(
            f'CREATE INDEX "clinvec_{self.name}_hnsw" ON {self._table} USING hnsw (embedding vector_cosine_ops)'
        )

    async def _admin(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement on the (autocommit) reader connection, outside any transaction (VACUUM needs that)."""
        psycopg = load_psycopg()

        self._ensure_open()
        async with self._read_lock:
            try:
                await self._reader.execute(sql, params)
            except psycopg.Error as exc:
                raise storage_error(exc) from None

    async def refresh(self) -> int:
        """Always 0: every read sees the newest committed state (other writers' included)."""
        self._ensure_open()
        return 0

    async def export_to(self, path: str, format: str = "jsonl") -> int:
        """Write every item to a JSONL or CSV file (round-trip exact); returns how many."""
        from ..transfer import export_items

        self._ensure_open()
        return await export_items(self, path, format)  # type: ignore[arg-type]

    async def import_from(
        self, path: str, format: str | None = None, progress: Progress | None = None, upsert: bool = False
    ) -> int:
        """Load items from JSONL, CSV or a vectra index folder in one transaction."""
        from ..transfer import import_into

        return await import_into(self, path, format=format, progress=progress, upsert=upsert)  # type: ignore[arg-type]


def _cut(results: builtins.list[Result], min_score: float | None) -> builtins.list[Result]:
    return results if min_score is None else [r for r in results if r.score >= min_score]


__all__ = ["EF_SEARCH", "EXACT_BELOW", "MAX_EXACT_INT", "MAX_ID_LENGTH", "PgIndex"]
