"""Index lifecycle: list, create, open (manifest), drop, stats, compact."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from . import deps
from .models import CreateIndex, ExistedOut, IndexInfo, IndexNames, OkOut, StatsOut
from .registry import NAME_PATTERN, check_name

router = APIRouter(tags=["indexes"], responses=deps.ERRORS)
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="the index name", examples=["notes"])]


@router.get("/indexes", response_model=IndexNames)
async def list_indexes(request: Request) -> Response:
    return deps.answer({"indexes": await deps.registry(request).names()})


@router.post("/indexes", response_model=IndexInfo, status_code=201)
async def create_index(request: Request, body: CreateIndex) -> Response:
    check_name(body.name)
    config = body.model_dump(exclude_unset=True, exclude={"name", "embed"})
    idx = await deps.registry(request).create(body.name, embed=body.embed, **config)
    return deps.answer({"name": body.name, "manifest": deps.public(idx.manifest)}, 201)


@router.get("/indexes/{name}", response_model=IndexInfo)
async def open_index(request: Request, name: Name) -> Response:
    idx = await deps.index(request, name)
    return deps.answer({"name": name, "manifest": deps.public(idx.manifest)})


@router.delete("/indexes/{name}", response_model=ExistedOut)
async def drop_index(request: Request, name: Name) -> Response:
    return deps.answer({"deleted": await deps.registry(request).drop(check_name(name))})


@router.get("/indexes/{name}/stats", response_model=StatsOut)
async def stats(request: Request, name: Name) -> Response:
    idx = await deps.index(request, name)
    facts = deps.public(await idx.stats())
    facts["location"] = name  # the server's folder layout is not the client's business
    return deps.answer({"stats": facts})


@router.post("/indexes/{name}/compact", response_model=OkOut)
async def compact(request: Request, name: Name) -> Response:
    await (await deps.index(request, name)).compact()
    return deps.answer({"ok": True})
