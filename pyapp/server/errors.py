"""Exceptions -> HTTP answers: ``{"error": "<ExceptionName>", "message": "..."}``, never a traceback.

Why these codes: the client (``RemoteIndex``) raises the class the body names, so the status only has to be
right for other clients and for monitoring: 4xx means the request was wrong, 5xx that the server's storage
failed (a full or failing disk should page someone; bad input never should).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import errors
from ..remote.wire import dumps_fast

log = logging.getLogger("pyapp.server")

STATUS: dict[type[errors.ClinvecError], int] = {
    errors.Unauthorized: 401,
    errors.IndexNotFound: 404,
    errors.IndexExists: 409,
    errors.DuplicateId: 409,
    errors.IndexLocked: 409,
    errors.ReadOnlyIndex: 409,
    errors.UpdateInProgress: 409,
    errors.NoUpdateInProgress: 409,
    errors.IndexClosed: 409,
    errors.StorageFull: 507,
    errors.StorageError: 503,
    errors.CorruptIndex: 500,
}
GENERIC_500 = "internal server error (logged on the server)"
DEFAULT_STATUS = 422  # every other ClinvecError is invalid input: vectors, metadata, filters, arguments


class HTTPError(errors.ClinvecError):
    """A ``ClinvecError`` with an explicit status (413 for a body over the limit) and the name the client sees."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status, self.name = status, name


def status_of(exc: errors.ClinvecError) -> int:
    if isinstance(exc, HTTPError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return DEFAULT_STATUS


def error_response(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = dumps_fast({"error": name, "message": message})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def clinvec_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ClinvecError)
    name = exc.name if isinstance(exc, HTTPError) else type(exc).__name__
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, errors.Unauthorized) else None
    return error_response(status_of(exc), name, str(exc), headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's request checks (wrong JSON types, malformed JSON, bad path names) -> 422 ``InvalidInput``."""
    details: list[Any] = getattr(exc, "errors", lambda: [])()
    parts = []
    for d in details[:5]:
        where = ".".join(str(p) for p in d.get("loc", ()) if p != "body")
        parts.append(f"{where or 'body'}: {d.get('msg', 'invalid')}")
    return error_response(422, "InvalidInput", "; ".join(parts) or "invalid request")


_HTTP_NAMES = {404: "NotFound", 405: "MethodNotAllowed", 413: "InvalidInput"}


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the same JSON shape."""
    assert isinstance(exc, StarletteHTTPException)
    name = _HTTP_NAMES.get(exc.status_code, "HTTPError")
    return error_response(exc.status_code, name, str(exc.detail), dict(exc.headers or {}))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback on the server, a generic 500 to the client (no traceback, no detail)."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "InternalError", GENERIC_500)
