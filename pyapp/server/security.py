"""The server's guards, as plain ASGI middleware: security headers on every answer, bearer token, body limit,
and the refusal to listen beyond loopback without a token.

Why plain ASGI and not ``BaseHTTPMiddleware``: these run on every request (the load test's 300/s), and they
must act before the body is read (a token check should not read 64 MiB first; a body limit must stop reading).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidInput
from ..remote.wire import dumps_fast
from ..security_headers import SECURITY_HEADERS

_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_NO_STORE = (b"cache-control", b"no-store")
PUBLIC_PATHS = frozenset({"/openapi.json", "/health"})  # answerable without a token: no index data in them


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; anything else (0.0.0.0, a LAN address, a name) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve indexes of clinical text beyond this machine without a token."""
    if token is None and not is_loopback(host):
        raise InvalidInput(f"refusing to listen on {host!r} without a token: give --token-file (or bind 127.0.0.1)")


async def _error(send: Send, status: int, name: str, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = dumps_fast({"error": name, "message": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every answer, and ``Cache-Control: no-store`` (answers hold patient data)
    to those that set no caching rule of their own (serve.py's static files do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {h[0].lower() for h in headers}
                extra = [h for h in _RAW_HEADERS if h[0] not in names]
                if b"cache-control" not in names:  # the API's answers; serve.py's files keep their own rule
                    extra.append(_NO_STORE)
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BearerToken:
    """``Authorization: Bearer <token>`` on every request but ``PUBLIC_PATHS``, compared in constant time."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def _allowed(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        from .fastpath import route_path

        if route_path(scope) in PUBLIC_PATHS and scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        await _error(send, 401, "Unauthorized", "a valid bearer token is required", [(b"www-authenticate", b"Bearer")])


class BodyLimit:
    """Answers 413 for a body over ``limit`` bytes: at once from ``Content-Length``, or when a streamed body
    (chunked) grows past it; the application never sees more than the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is over this server's limit of {self.limit} bytes"
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _error(send, 413, "InvalidInput", message, [(b"connection", b"close")])
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, message)
            return msg

        await self.app(scope, limited_receive, send)


def read_token(path: str) -> str:
    """The token in ``path`` (first line, stripped); too short a token is refused rather than trusted."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"--token-file {path!r}: cannot read it ({exc})") from None
    if len(token) < 16:
        raise InvalidInput(f"--token-file {path!r}: the token must be at least 16 characters")
    return token


def cors(app: Any, origins: list[str]) -> Any:
    """CORS for the origins given (none by default: the page is same-origin and needs none)."""
    from starlette.middleware.cors import CORSMiddleware

    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )
