"""The HTTP API as one ASGI application: FastAPI routes over a ``Registry``, wrapped in the security guards.

Adding a group of routes is one line: a module with ``router = fastapi.APIRouter(...)``, named in
``ROUTE_MODULES``. Its handlers reach the open indexes through ``pyapp.server.registry.get(name)`` (or
``request.app.state.registry``) and answer errors by raising ``ClinvecError``s (mapped in ``errors.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ..embed.base import Embedder
from ..errors import ClinvecError
from . import errors, registry
from .fastpath import QueryFastPath
from .models import OkOut
from .security import BearerToken, BodyLimit, SecurityHeaders, cors
from .updates import DEFAULT_IDLE_TIMEOUT, Updates

ROUTE_MODULES: list[str] = [
    "pyapp.server.routes_indexes",
    "pyapp.server.routes_items",
    "pyapp.server.routes_updates",
    "pyapp.server.routes_documents",
    "pyapp.server.routes_sync",
]

MAX_BODY_BYTES = 64 << 20  # 64 MiB: 5,000 items of 768 floats as JSON, with room for text
MAX_BATCH = 10_000  # items or ids in one request


def build_api(
    root: str | Path,
    embedder: Embedder | None = None,
    max_batch: int = MAX_BATCH,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> FastAPI:
    """The FastAPI application alone (no guards): what ``create_app`` wraps and ``serve.py`` mounts."""
    reg = registry.Registry(root, embedder)
    updates = Updates(idle_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry.install(reg)
        try:
            yield
        finally:
            await updates.close()
            await reg.close()
            registry.install(None)

    api = FastAPI(
        title="clinvec",
        version="0.1.0",
        description="Vector + keyword search over clinical text: the LocalIndex API over HTTP.",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: refused by the CSP, and no network here
        redoc_url=None,
        lifespan=lifespan,
    )
    api.state.registry = reg
    api.state.updates = updates
    api.state.max_batch = max_batch
    api.add_exception_handler(ClinvecError, errors.clinvec_error)
    api.add_exception_handler(RequestValidationError, errors.validation_error)
    api.add_exception_handler(HTTPException, errors.http_error)
    api.add_exception_handler(Exception, errors.unexpected_error)

    @api.get("/health", response_model=OkOut, tags=["server"])
    async def health() -> dict[str, bool]:
        return {"ok": True}

    for name in ROUTE_MODULES:
        api.include_router(importlib.import_module(name).router)
    return api


def guard(app: Any, token: str | None = None, max_body: int = MAX_BODY_BYTES, cors_origins: Sequence[str] = ()) -> Any:
    """``app`` behind the body limit, the token check (when a token is set), CORS (only when origins are
    given) and the security headers, outermost last."""
    app = BodyLimit(QueryFastPath(app, app), max_body)
    if token is not None:
        app = BearerToken(app, token)
    if cors_origins:
        app = cors(app, list(cors_origins))
    return SecurityHeaders(app)


def create_app(
    root: str | Path,
    token: str | None = None,
    embedder: Embedder | None = None,
    max_body: int = MAX_BODY_BYTES,
    max_batch: int = MAX_BATCH,
    cors_origins: Sequence[str] = (),
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> Any:
    """The whole API server as an ASGI app (run it with uvicorn, one process: it is the indexes' one writer)."""
    return guard(build_api(root, embedder, max_batch, idle_timeout), token, max_body, cors_origins)
