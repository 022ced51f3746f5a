"""RemoteIndex: ``LocalIndex``'s async API over the HTTP server (``python -m pyapp serve-api``).

Same methods, same return values, same exception classes (the server names the class, the client raises it).
Arguments that cannot be sent as JSON are checked here first, with ``LocalIndex``'s own checks (ids, texts,
metadata), so a bad call fails with the same class before any request; everything else the server's
``LocalIndex`` checks. Updates (``batch()``, ``begin_update``) are held open on the server by a task of their own
(``pyapp/server/updates.py``), so a batch sees its own staged writes and others' writes wait for it, as locally.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
from array import array
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..errors import InvalidFilter, InvalidInput, NoUpdateInProgress, UpdateInProgress
from ..index_api import IndexAPI, QueryArgs
from ..metadata import validate_metadata
from ..planner import check_expansion
from ..staging import check_id, check_text, item_dicts
from ..types import Item, Result
from . import wire
from .client import Client, quote_segment
from .transport import Transport


def _vector(value: Any) -> Any:
    """A vector as JSON can carry it: lists and tuples as lists, numpy arrays and ``array``s through their
    values; anything else as it is (the server answers ``InvalidVector`` for it, as ``LocalIndex`` does)."""
    if value is None or isinstance(value, (str, bytes, dict, bool, int, float)):
        return value if not isinstance(value, bytes) else repr(value)
    if isinstance(value, array):
        return value.tolist()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (list, tuple)):
        return [x if isinstance(x, (int, float, str, bool)) or x is None else repr(x) for x in value]
    return repr(value)


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    if out.get("id") is not None:
        check_id(out["id"])
    check_text(out.get("text"))
    if out.get("metadata") is not None:
        out["metadata"] = validate_metadata(out["metadata"])
    if "vector" in out:
        out["vector"] = _vector(out["vector"])
    return out


def _filter(value: Any) -> Any:
    """A filter JSON can carry (the server's compiler then judges it); anything else is ``InvalidFilter``."""
    try:
        wire.dumps(value)
    except (TypeError, ValueError):
        raise InvalidFilter(f"a filter is a JSON object (MongoDB style), got {type(value).__name__}") from None
    return value


class _Update:
    """A client's handle on one server-side update; opened on first use (``begin_update`` is synchronous)."""

    def __init__(self, index: RemoteIndex) -> None:
        self._index = index
        self.id: str | None = None
        self._lock = asyncio.Lock()

    async def ensure(self) -> str:
        async with self._lock:
            if self.id is None:
                answer = await self._index._client.call("POST", self._index._path("/updates"))
                self.id = answer["update"]
            return self.id

    async def finish(self, commit: bool) -> None:
        if self.id is None:
            return
        update, self.id = self.id, None
        path = self._index._path(f"/updates/{update}")
        await self._index._client.call("POST" if commit else "DELETE", path + ("/commit" if commit else ""))


class RemoteIndex(IndexAPI):
    """An index held by a clinvec server; build with ``RemoteIndex.create``/``open``, close when done."""

    def __init__(self, client: Client, name: str, manifest: dict[str, Any], read_only: bool) -> None:
        self._client = client
        self.name = name
        self._manifest = manifest
        self._read_only = read_only
        self.dims: int = manifest["dims"]
        self.indexed: builtins.list[str] = list(manifest.get("indexed", []))
        self.expand_abbreviations: bool | str = False
        self._closed = False
        self._update: _Update | None = None  # begin_update: index-wide, as LocalIndex's
        self._task_update: contextvars.ContextVar[_Update | None] = contextvars.ContextVar(
            f"clinvec-remote-batch-{id(self)}", default=None
        )
        self._pending: builtins.list[asyncio.Future[Any]] = []  # rollbacks sent by cancel_update

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def create(
        cls,
        url: str,
        name: str,
        dims: int | None = None,
        metric: str = "cosine",
        indexed: Sequence[str] = (),
        exist_ok: bool = False,
        embed: bool = False,
        bm25_k1: float = 0.9,
        bm25_b: float = 0.4,
        token: str | None = None,
        transport: Transport | None = None,
    ) -> RemoteIndex:
        """Create an index on the server (``embed``: with the server's model, which sets ``dims``)."""
        client = Client(url, token, transport)
        body = {"name": name, "dims": dims, "metric": metric, "exist_ok": exist_ok, "embed": embed}
        body.update({"indexed": list(indexed) if isinstance(indexed, (list, tuple)) else indexed})
        body.update({"bm25_k1": bm25_k1, "bm25_b": bm25_b})
        try:
            answer = await client.call("POST", "/indexes", body)
        except BaseException:
            await client.aclose()
            raise
        return cls(client, name, answer["manifest"], read_only=False)

    @classmethod
    async def open(
        cls,
        url: str,
        name: str,
        read_only: bool = False,
        token: str | None = None,
        transport: Transport | None = None,
    ) -> RemoteIndex:
        """Open an index the server holds (``IndexNotFound`` when it has none of that name). ``read_only``:
        this object refuses writes (the server stays the index's one writer)."""
        client = Client(url, token, transport)
        try:
            answer = await client.call("GET", f"/indexes/{_name(name)}")
        except BaseException:
            await client.aclose()
            raise
        return cls(client, name, answer["manifest"], read_only=read_only)

    @staticmethod
    async def exists(url: str, name: str, token: str | None = None, transport: Transport | None = None) -> bool:
        client = Client(url, token, transport)
        try:
            return await client.call("GET", f"/indexes/{_name(name)}", missing="IndexNotFound") is not None
        finally:
            await client.aclose()

    @staticmethod
    async def drop(url: str, name: str, token: str | None = None, transport: Transport | None = None) -> None:
        """Delete the index on the server (no error when absent)."""
        client = Client(url, token, transport)
        try:
            await client.call("DELETE", f"/indexes/{_name(name)}")
        finally:
            await client.aclose()

    @staticmethod
    async def list_indexes(url: str, token: str | None = None, transport: Transport | None = None) -> list[str]:
        client = Client(url, token, transport)
        try:
            return (await client.call("GET", "/indexes"))["indexes"]
        finally:
            await client.aclose()

    async def close(self) -> None:
        """Forget this connection; an open update is rolled back, as ``LocalIndex.close`` discards it."""
        if self._closed:
            return
        self._closed = True
        updates = [u for u in (self._update, self._task_update.get()) if u is not None]
        self._update = None
        try:
            for update in updates:
                await update.finish(commit=False)
            await self._settle()
        finally:
            await self._client.aclose()

    @property
    def location(self) -> str:
        return f"{self._client.url}/indexes/{self.name}"

    @property
    def embedder(self) -> None:
        """Text is embedded by the server's model; the client has none."""
        return None

    # ------------------------------------------------------------------ plumbing
    def _path(self, tail: str) -> str:
        return f"/indexes/{_name(self.name)}{tail}"

    async def _settle(self) -> None:
        pending, self._pending = self._pending, []
        for fut in pending:
            try:
                await fut
            except Exception:  # noqa: BLE001, S110 - a failed rollback ends the update on the server anyway
                pass

    async def _read(self, method: str, tail: str, body: Any = None, missing: str | None = None) -> Any:
        self._ensure_open()
        await self._settle()
        return await self._client.call(method, self._path(tail), body, missing)

    async def _write(self, method: str, tail: str, body: Any = None) -> Any:
        self._ensure_writable()
        await self._settle()
        update = self._task_update.get() or self._update
        if update is not None:
            tail += f"?update={await update.ensure()}"
        return await self._client.call(method, self._path(tail), body)

    # ------------------------------------------------------------------ writes
    async def insert(
        self, vector: Any = None, metadata: dict[str, Any] | None = None, text: str | None = None, id: str | None = None
    ) -> str:
        self._ensure_writable()
        body = _entry({"id": id, "vector": vector, "metadata": metadata, "text": text})
        return (await self._write("POST", "/items", body))["id"]

    async def upsert(
        self, id: str, vector: Any = None, metadata: dict[str, Any] | None = None, text: str | None = None
    ) -> str:
        self._ensure_writable()
        check_id(id)
        body = _entry({"vector": vector, "metadata": metadata, "text": text})
        return (await self._write("PUT", f"/items/{quote_segment(id)}", body))["id"]

    async def _many(self, items: Iterable[Any], replace: bool) -> builtins.list[str]:
        self._ensure_writable()
        entries = [_entry(e) for e in item_dicts(items)]
        return (await self._write("POST", "/upsert_many" if replace else "/insert_many", {"items": entries}))["ids"]

    async def insert_many(self, items: Iterable[Any], progress: Any = None) -> builtins.list[str]:
        """All or nothing, in one commit on the server. ``progress(done, total)`` is called once, at the end."""
        ids = await self._many(items, replace=False)
        if progress is not None:
            progress(len(ids), len(ids))
        return ids

    async def upsert_many(self, items: Iterable[Any], progress: Any = None) -> builtins.list[str]:
        ids = await self._many(items, replace=True)
        if progress is not None:
            progress(len(ids), len(ids))
        return ids

    async def update_metadata(self, id: str, metadata: dict[str, Any]) -> None:
        self._ensure_writable()
        check_id(id)
        await self._write("PUT", f"/metadata/{quote_segment(id)}", {"metadata": validate_metadata(metadata)})

    async def delete(self, id: str) -> bool:
        self._ensure_writable()
        check_id(id)
        return (await self._write("DELETE", f"/items/{quote_segment(id)}"))["deleted"]

    async def delete_many(self, ids: Iterable[str]) -> int:
        self._ensure_writable()
        if isinstance(ids, (str, bytes, dict)) or not isinstance(ids, Iterable):
            raise InvalidInput("ids must be a list of id strings")
        checked = [check_id(i) for i in ids]
        return (await self._write("POST", "/delete_many", {"ids": checked}))["deleted"]

    async def delete_where(self, filter: dict[str, Any]) -> int:
        self._ensure_writable()
        return (await self._write("POST", "/delete_where", {"filter": _filter(filter)}))["deleted"]

    # ------------------------------------------------------------------ updates
    def begin_update(self) -> None:
        """Stage every write of this object, from any task, until ``end_update`` (one commit on the server)."""
        self._ensure_writable()
        if self._update is not None or self._task_update.get() is not None:
            raise UpdateInProgress("an update is already open on this index")
        self._update = _Update(self)

    async def end_update(self) -> None:
        self._ensure_writable()
        update, self._update = self._update, None
        if update is None:
            raise NoUpdateInProgress("no update is open (begin_update first)")
        await self._settle()
        await update.finish(commit=True)

    def cancel_update(self) -> None:
        update, self._update = self._update, None
        if update is None:
            raise NoUpdateInProgress("no update is open")
        if (
            update.id is not None
        ):  # synchronous, like LocalIndex's: the rollback is sent now, awaited before the next call
            self._pending.append(asyncio.ensure_future(update.finish(commit=False)))

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[RemoteIndex]:
        """``async with idx.batch():`` one commit at exit, rolled back on an exception; it belongs to this task
        (and tasks it starts), other tasks' writes wait for it on the server."""
        self._ensure_writable()
        if self._update is not None or self._task_update.get() is not None:
            raise UpdateInProgress("an update is already open on this index")
        await self._settle()
        update = _Update(self)
        await update.ensure()
        token = self._task_update.set(update)
        try:
            yield self
        except BaseException:
            self._task_update.reset(token)
            await update.finish(commit=False)
            raise
        self._task_update.reset(token)
        await update.finish(commit=True)

    # ------------------------------------------------------------------ reads
    async def get(self, id: str) -> Item | None:
        self._ensure_open()
        check_id(id)
        found = await self._read("GET", f"/items/{quote_segment(id)}", missing="ItemNotFound")
        return None if found is None else wire.item_from_wire(found)

    async def count(self, filter: dict[str, Any] | None = None) -> int:
        return (await self._read("POST", "/count", {"filter": _filter(filter)}))["count"]

    async def list(
        self, filter: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Item]:
        body = {"filter": _filter(filter), "limit": limit, "offset": offset}
        return [wire.item_from_wire(i) for i in (await self._read("POST", "/list", body))["items"]]

    async def ids(self) -> builtins.list[str]:
        return (await self._read("GET", "/ids"))["ids"]

    async def iter_items(self, batch_size: int = 1024) -> AsyncIterator[builtins.list[Item]]:
        """Every item in insertion order, ``batch_size`` at a time; the order is fixed when iteration starts
        (items deleted meanwhile are skipped), as ``LocalIndex.iter_items``."""
        self._ensure_open()
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInput("batch_size must be a positive integer")
        ids = await self.ids()
        for start in range(0, len(ids), batch_size):
            answer = await self._read("POST", "/get_many", {"ids": ids[start : start + batch_size]})
            yield [wire.item_from_wire(i) for i in answer["items"]]

    async def distinct(self, field: str) -> builtins.list[Any]:
        if not isinstance(field, str):
            raise InvalidInput("field must be a dotted path string")
        return (await self._read("POST", "/distinct", {"field": field}))["values"]

    async def _query(self, args: QueryArgs) -> builtins.list[Result]:
        """``query()`` (``pyapp.index_api``) run by the server (text without a vector is embedded by its
        model, if any). The arguments pass LocalIndex's checks here first (as if the server had a model: only it
        knows), so a bad one fails with the same class before any request; ``exact``/``nprobe`` are sent when
        not at their defaults, so a server from before they existed still answers the other queries."""
        check_expansion(args.expand_abbreviations)
        args._replace(expand_abbreviations="off").plan(True)  # expansion is the server's work
        body: dict[str, Any] = {"text": args.text, "top_k": args.top_k, "filter": _filter(args.filter)}
        packed = wire.f32_field(args.vector)
        body.update({"vector_f32": packed} if packed is not None else {"vector": _vector(args.vector)})
        body.update({"mode": args.mode, "min_score": args.min_score, "fusion": args.fusion, "rrf_k": args.rrf_k})
        weights = args.weights
        body["weights"] = list(weights) if isinstance(weights, (list, tuple)) else _vector(weights)
        body["expand_abbreviations"] = args.expand_abbreviations
        if args.exact:
            body["exact"] = True
        if args.nprobe is not None:
            body["nprobe"] = args.nprobe
        answer = await self._read("POST", "/query", body)
        return [wire.result_from_wire(r) for r in answer["results"]]

    # ------------------------------------------------------------------ maintenance
    async def stats(self) -> dict[str, Any]:
        facts = (await self._read("GET", "/stats"))["stats"]
        facts["location"] = self.location
        facts["read_only"] = self._read_only
        facts["update_in_progress"] = bool(self._update is not None or facts.get("update_in_progress"))
        return facts

    async def compact(self) -> None:
        self._ensure_writable()
        await self._write("POST", "/compact")

    async def refresh(self) -> int:
        """Always 0: every call reads the server's current state, so there is nothing to catch up."""
        self._ensure_open()
        return 0


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name:
        raise InvalidInput(f"an index name is a non-empty string without '/', got {name!r}")
    return quote_segment(name)
