"""Documents (``DocumentIndex``): long notes chunked and embedded by the server's model, grouped results."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ..documents import DocumentIndex
from . import deps
from .errors import HTTPError
from .models import ChangedOut, DocumentBody, DocumentOut, DocumentQueryBody, DocumentResultsOut, DocumentsOut
from .models import ExistedOut as DeletedFlag
from .routes_indexes import Name

router = APIRouter(tags=["documents"], responses=deps.ERRORS)
DOCUMENT = "/indexes/{name}/documents/{uri:path}"


async def _documents(request: Request, name: str) -> DocumentIndex:
    return DocumentIndex(await deps.index(request, name))


@router.post("/indexes/{name}/documents", response_model=ChangedOut)
async def upsert_document(request: Request, name: Name, body: DocumentBody) -> Response:
    """Add or replace a document in one commit (``changed`` false: same text and metadata, nothing embedded)."""
    docs = await _documents(request, name)
    return deps.answer({"changed": await docs.upsert_document(body.uri, body.text, body.metadata)})


@router.get("/indexes/{name}/documents", response_model=DocumentsOut)
async def list_documents(
    request: Request, name: Name, limit: int | None = Query(None, ge=0), newest_first: bool = False
) -> Response:
    docs = await (await _documents(request, name)).list_documents(limit=limit, newest_first=newest_first)
    return deps.answer({"documents": [asdict(d) for d in docs]})


@router.get(DOCUMENT, response_model=DocumentOut)
async def get_document(request: Request, name: Name, uri: str) -> Response:
    doc = await (await _documents(request, name)).get_document(uri)
    if doc is None:
        raise HTTPError(404, "DocumentNotFound", f"no document {uri!r} in index {name!r}")
    return deps.answer(asdict(doc))


@router.delete(DOCUMENT, response_model=DeletedFlag)
async def delete_document(request: Request, name: Name, uri: str) -> Response:
    return deps.answer({"deleted": await (await _documents(request, name)).delete_document(uri)})


@router.post("/indexes/{name}/documents_query", response_model=DocumentResultsOut)
async def query_documents(request: Request, name: Name, body: DocumentQueryBody) -> Response:
    args = body.model_dump(exclude_unset=True)
    results = await (await _documents(request, name)).query_documents(**args)
    return deps.answer({"results": [asdict(r) for r in results]})
