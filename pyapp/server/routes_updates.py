"""Updates (``RemoteIndex.batch()``/``begin_update``): open, commit, roll back. See ``updates.py`` for why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from . import deps
from .models import OkOut, UpdateOut
from .routes_indexes import Name

router = APIRouter(tags=["updates"], responses=deps.ERRORS)
UpdatePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


@router.post("/indexes/{name}/updates", response_model=UpdateOut, status_code=201)
async def begin(request: Request, name: Name) -> Response:
    """Open a batch; writes sent with ``?update=<id>`` are staged in it. Waits while another batch holds the index."""
    idx = await deps.index(request, name)
    return deps.answer({"update": await deps.updates(request).begin(name, idx)}, 201)


@router.post("/indexes/{name}/updates/{update}/commit", response_model=OkOut)
async def commit(request: Request, name: Name, update: UpdatePath) -> Response:
    """One durable commit of everything staged; the update ends whether or not the commit succeeds."""
    await deps.updates(request).pop(name, update).commit()
    return deps.answer({"ok": True})


@router.delete("/indexes/{name}/updates/{update}", response_model=OkOut)
async def rollback(request: Request, name: Name, update: UpdatePath) -> Response:
    await deps.updates(request).pop(name, update).rollback()
    return deps.answer({"ok": True})
