"""Items: the write calls of ``LocalIndex`` (each one commit, or a step of an open update), reads and queries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ..index import LocalIndex
from ..remote.wire import item_to_wire, query_args, result_to_wire
from . import deps
from .errors import HTTPError
from .models import (
    CountOut,
    DeletedOut,
    DistinctBody,
    ExistedOut,
    FilterBody,
    IdOut,
    IdsBody,
    IdsOut,
    ItemBody,
    ItemsBody,
    ItemsOut,
    ListBody,
    MetadataBody,
    NewItem,
    OkOut,
    QueryBody,
    RequiredFilterBody,
    ResultsOut,
    ValuesOut,
    WireItem,
)
from .routes_indexes import Name

router = APIRouter(tags=["items"], responses=deps.ERRORS)
UpdateId = Annotated[str | None, Query(description="stage the write in this open update (POST .../updates)")]
ITEM = "/indexes/{name}/items/{item_id:path}"


@router.post("/indexes/{name}/items", response_model=IdOut, status_code=201)
async def insert(request: Request, name: Name, body: NewItem, update: UpdateId = None) -> Response:
    args = body.model_dump()
    return deps.answer({"id": await deps.write(request, name, update, lambda idx: idx.insert(**args))}, 201)


@router.put(ITEM, response_model=IdOut)
async def upsert(request: Request, name: Name, item_id: str, body: ItemBody, update: UpdateId = None) -> Response:
    args = body.model_dump()
    return deps.answer({"id": await deps.write(request, name, update, lambda idx: idx.upsert(item_id, **args))})


@router.get(ITEM, response_model=WireItem)
async def get(request: Request, name: Name, item_id: str) -> Response:
    item = await (await deps.index(request, name)).get(item_id)
    if item is None:
        raise HTTPError(404, "ItemNotFound", f"no item {item_id!r} in index {name!r}")
    return deps.answer(item_to_wire(item))


@router.delete(ITEM, response_model=ExistedOut)
async def delete(request: Request, name: Name, item_id: str, update: UpdateId = None) -> Response:
    return deps.answer({"deleted": await deps.write(request, name, update, lambda idx: idx.delete(item_id))})


@router.put("/indexes/{name}/metadata/{item_id:path}", response_model=OkOut)
async def update_metadata(
    request: Request, name: Name, item_id: str, body: MetadataBody, update: UpdateId = None
) -> Response:
    await deps.write(request, name, update, lambda idx: idx.update_metadata(item_id, body.metadata))
    return deps.answer({"ok": True})


async def _many(request: Request, name: Name, body: ItemsBody, update: str | None, replace: bool) -> Response:
    deps.check_batch(request, body.items, "items")

    async def call(idx: LocalIndex) -> Any:
        return await (idx.upsert_many(body.items) if replace else idx.insert_many(body.items))

    return deps.answer({"ids": await deps.write(request, name, update, call)})


@router.post("/indexes/{name}/insert_many", response_model=IdsOut)
async def insert_many(request: Request, name: Name, body: ItemsBody, update: UpdateId = None) -> Response:
    return await _many(request, name, body, update, replace=False)


@router.post("/indexes/{name}/upsert_many", response_model=IdsOut)
async def upsert_many(request: Request, name: Name, body: ItemsBody, update: UpdateId = None) -> Response:
    return await _many(request, name, body, update, replace=True)


@router.post("/indexes/{name}/delete_many", response_model=DeletedOut)
async def delete_many(request: Request, name: Name, body: IdsBody, update: UpdateId = None) -> Response:
    deps.check_batch(request, body.ids, "ids")
    return deps.answer({"deleted": await deps.write(request, name, update, lambda idx: idx.delete_many(body.ids))})


@router.post("/indexes/{name}/delete_where", response_model=DeletedOut)
async def delete_where(request: Request, name: Name, body: RequiredFilterBody, update: UpdateId = None) -> Response:
    return deps.answer({"deleted": await deps.write(request, name, update, lambda idx: idx.delete_where(body.filter))})


@router.post("/indexes/{name}/get_many", response_model=ItemsOut)
async def get_many(request: Request, name: Name, body: IdsBody) -> Response:
    """The items of these ids that exist, in the order asked (how ``RemoteIndex.iter_items`` pages)."""
    deps.check_batch(request, body.ids, "ids")
    idx = await deps.index(request, name)
    found = [await idx.get(i) for i in deps.id_list(body.ids)]
    return deps.answer({"items": [item_to_wire(i) for i in found if i is not None]})


@router.post("/indexes/{name}/list", response_model=ItemsOut)
async def list_items(request: Request, name: Name, body: ListBody) -> Response:
    args = body.model_dump(exclude_unset=True)
    items = await (await deps.index(request, name)).list(**args)
    return deps.answer({"items": [item_to_wire(i) for i in items]})


@router.get("/indexes/{name}/ids", response_model=IdsOut)
async def ids(request: Request, name: Name) -> Response:
    return deps.answer({"ids": await (await deps.index(request, name)).ids()})


@router.post("/indexes/{name}/count", response_model=CountOut)
async def count(request: Request, name: Name, body: FilterBody) -> Response:
    return deps.answer({"count": await (await deps.index(request, name)).count(body.filter)})


@router.post("/indexes/{name}/distinct", response_model=ValuesOut)
async def distinct(request: Request, name: Name, body: DistinctBody) -> Response:
    return deps.answer({"values": await (await deps.index(request, name)).distinct(body.field)})


@router.post("/indexes/{name}/query", response_model=ResultsOut)
async def query(request: Request, name: Name, body: QueryBody) -> Response:
    args = query_args(body.model_dump(exclude_unset=True))
    results = await (await deps.index(request, name)).query(**args)
    return deps.answer({"results": [result_to_wire(r) for r in results]})
