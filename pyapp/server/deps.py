"""What every route module shares: the registry and updates of the running app, JSON answers, the write path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response

from ..index import LocalIndex
from ..remote.wire import dumps_fast
from .errors import HTTPError
from .models import ErrorBody
from .registry import Registry, check_name
from .updates import Updates

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in {
        400: "unreadable body",
        401: "missing or wrong bearer token",
        404: "no such index (or item, document, route)",
        409: "conflict: duplicate id, existing index, writer lock held elsewhere, update state",
        413: "body or batch over the server's limit",
        422: "invalid input: vector, metadata, filter or argument",
        500: "internal error (logged on the server; no detail)",
        503: "storage failed; nothing was changed",
        507: "storage full; nothing was changed",
    }.items()
}


def registry(request: Request) -> Registry:
    return request.app.state.registry


def updates(request: Request) -> Updates:
    return request.app.state.updates


async def index(request: Request, name: str) -> LocalIndex:
    return await registry(request).get(check_name(name))


def answer(value: Any, status: int = 200) -> Response:
    """A JSON answer written by orjson when installed (the stdlib's encoder costs more than a query)."""
    return Response(dumps_fast(value), status_code=status, media_type="application/json")


def check_batch(request: Request, values: Any, what: str) -> None:
    """Refuse a batch over the server's limit (413) before any of it is looked at."""
    limit = request.app.state.max_batch
    if isinstance(values, list) and len(values) > limit:
        raise HTTPError(413, "InvalidInput", f"{len(values)} {what} in one request; this server takes {limit} at most")


async def write(request: Request, name: str, update: str | None, call: Callable[[LocalIndex], Awaitable[Any]]) -> Any:
    """Run a write: plainly (its own commit), or inside the open update ``update`` (see ``updates.py``)."""
    idx = await index(request, name)
    if update is None:
        return await call(idx)
    return await updates(request).get(name, update).call(call)


def id_list(ids: Any) -> list[str]:
    """``ids`` as a list of valid ids, or ``InvalidInput`` (as ``LocalIndex.delete_many`` checks them)."""
    from ..index import _check_ids

    return _check_ids(ids)


def public(facts: dict[str, Any]) -> dict[str, Any]:
    """A manifest or stats without the server's file paths (the store's ``path``, the model bundle's folder):
    clients need the model's identity, not where the server keeps it."""
    out = {k: v for k, v in facts.items() if k != "path"}
    embedder = out.get("embedder")
    if isinstance(embedder, dict):
        out["embedder"] = {k: v for k, v in embedder.items() if k != "bundle"}
    return out
