"""The query route without FastAPI's per-request machinery: the one request a search server answers most.

Why: measured on the 2-core VM (docs/BENCHMARKS.md, "HTTP API"), FastAPI's routing, dependency solving and
pydantic checks cost more CPU per query than the 10k x 768 int8 search itself, and the server is one process
(it is every index's one writer), so that overhead caps queries per second. This ASGI layer answers
``POST /indexes/{name}/query`` when the body is a JSON object with only ``QueryBody``'s fields, with the same
calls, answers and error bodies as the FastAPI route (which stays the documented one, and answers every other
shape: bad JSON, unknown fields). It sits inside the guards, so token, body limit and headers apply unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ClinvecError
from ..remote.wire import dumps_fast, query_args, result_to_wire
from . import errors
from .models import QueryBody
from .registry import NAME_PATTERN

_PATH = re.compile(r"^/indexes/(" + NAME_PATTERN[1:-1] + r")/query$")
_FIELDS = frozenset(QueryBody.model_fields)


class QueryFastPath:
    def __init__(self, app: ASGIApp, api: Any) -> None:
        self.app = app
        self.api = api  # the FastAPI app: its state holds the registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.match(route_path(scope)) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
        except HTTPException as exc:  # BodyLimit: the streamed body grew past the limit
            await _answer(send, exc.status_code, dumps_fast({"error": "InvalidInput", "message": str(exc.detail)}))
            return
        body = b"".join(chunks)
        try:
            args = json.loads(body)
        except ValueError:
            args = None
        if not isinstance(args, dict) or not args.keys() <= _FIELDS:
            await self.app(scope, _replay(body), send)  # FastAPI's route answers (and explains) every other shape
            return
        try:
            index = await self.api.state.registry.get(match.group(1))
            results = await index.query(**query_args(args))
            status, payload = 200, dumps_fast({"results": [result_to_wire(r) for r in results]})
        except ClinvecError as exc:
            status = errors.status_of(exc)
            name = exc.name if isinstance(exc, errors.HTTPError) else type(exc).__name__
            payload = dumps_fast({"error": name, "message": str(exc)})
        except Exception as exc:  # a bug: logged, generic answer (as errors.unexpected_error)
            errors.log.error("unexpected error on POST %s", scope["path"], exc_info=exc)
            status, payload = 500, dumps_fast({"error": "InternalError", "message": errors.GENERIC_500})
        await _answer(send, status, payload)


def route_path(scope: Scope) -> str:
    """The path below the mount point (``serve.py`` mounts the API under ``/api``)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _answer(send: Send, status: int, payload: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
