"""Bundles over HTTP, for offline sync: ``GET /indexes/{name}/bundle[?since=SEQ][&int8=true]`` and
``POST /indexes/{name}/bundle?since=SEQ`` (a device pushes its commits; merged by ``pyapp.sync.merge``).

Why bytes kept for a while: a tablet on a bad link must be able to resume a broken download where it
stopped (``Range: bytes=N-`` with ``If-Range: <etag>``) and get the *same* bundle, whose sha256 covers all
of it. A bundle names the time it was made, so the bytes made for one request are kept (a few, newest
first) under their sha256, which is the ETag. Nothing is applied on the device until the whole bundle has
arrived and checked out (all or nothing), so a resumed download is as safe as an unbroken one.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from ..bundle import MEDIA_TYPE
from ..sync import bundle_bytes, merge
from . import deps
from .registry import NAME_PATTERN

router = APIRouter(tags=["sync"], responses=deps.ERRORS)
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="the index name", examples=["notes"])]
Since = Annotated[int | None, Query(ge=0, le=2**53, description="only the commits after this position (a delta)")]

KEEP = 4  # bundles kept for resumed downloads
_RANGE = re.compile(r"^bytes=(\d{1,15})-$")
BINARY = {"schema": {"type": "string", "format": "binary"}}


class MergedOut(BaseModel):
    """What the server's merge of a pushed bundle did (``pyapp.sync.Merged``)."""

    added: int
    updated: int
    deleted: int
    unchanged: int
    kept: int
    moved: int
    log: list[dict[str, Any]]
    position: int
    source_position: int | None


def _kept(request: Request) -> OrderedDict[str, tuple[tuple[Any, ...], bytes]]:
    cache = getattr(request.app.state, "sync_bundles", None)
    if cache is None:
        cache = request.app.state.sync_bundles = OrderedDict()
    return cache


@router.get(
    "/indexes/{name}/bundle",
    response_class=Response,
    responses={
        200: {"content": {MEDIA_TYPE: BINARY}, "description": "the bundle (docs/BUNDLE.md)"},
        206: {"content": {MEDIA_TYPE: BINARY}, "description": "the rest of a bundle, from a Range"},
        416: {"description": "the Range starts past the bundle's end"},
    },
)
async def get_bundle(request: Request, name: Name, since: Since = None, int8: bool = False) -> Response:
    """The index as a bundle (full, or a delta of the commits after ``since``); resumable by Range."""
    idx = await deps.index(request, name)
    cache = _kept(request)
    key = (name, since, int8)
    wanted = request.headers.get("if-range", "").strip('"')
    data = etag = None
    if wanted in cache and cache[wanted][0] == key:  # resuming: the very bytes the download began with
        etag, data = wanted, cache[wanted][1]
    if data is None:
        data = await bundle_bytes(idx, since, int8)
        etag = hashlib.sha256(data).hexdigest()
        cache[etag] = (key, data)
        while len(cache) > KEEP:
            cache.popitem(last=False)
    headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    match = _RANGE.match(request.headers.get("range", ""))
    if match and (not wanted or wanted == etag):
        start = int(match.group(1))
        if start >= len(data):
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Response(data[start:], status_code=206, media_type=MEDIA_TYPE, headers=headers)
    return Response(data, media_type=MEDIA_TYPE, headers=headers)


@router.post(
    "/indexes/{name}/bundle",
    response_model=MergedOut,
    # the bundle's bytes, whatever the Content-Type says (declared as octet-stream, which every client can send)
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": BINARY}}},
)
async def push_bundle(request: Request, name: Name, since: Since = None) -> Response:
    """Merge a device's bundle by the sync rule (last writer wins per id; deletes win ties), all or nothing.

    ``since``: the server position the device last pulled (server versions written later are news to it,
    so a pushed version beating one of them is logged as a conflict)."""
    idx = await deps.index(request, name)
    merged = await merge(idx, io.BytesIO(await request.body()), since, here="server", there="device")
    return deps.answer(merged.as_dict())
