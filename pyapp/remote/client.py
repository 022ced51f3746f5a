"""One server connection: base URL, bearer token, transport, and the JSON error body -> exception mapping."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..errors import ClinvecError, InvalidInput, StorageError, Unauthorized
from . import wire
from .transport import Transport, default_transport


def quote_segment(value: str) -> str:
    """An id or name as one URL path segment (``/`` and ``%`` escaped; the server decodes it once)."""
    return quote(value, safe="")


class Client:
    def __init__(self, url: str, token: str | None = None, transport: Transport | None = None) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "/")):
            raise InvalidInput(f"a server URL starts with http://, https:// or / (same origin), got {url!r}")
        if token is not None and (not isinstance(token, str) or not token):
            raise InvalidInput("token must be a non-empty string or None")
        self.url = url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._transport = transport if transport is not None else default_transport()

    async def call(self, method: str, path: str, body: Any = None, missing: str | None = None) -> Any:
        """The decoded JSON answer; a server error raises the class it names (``missing``: that error name
        answers None instead, e.g. ``ItemNotFound`` for ``get``)."""
        headers = self._headers
        data = None
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
            data = wire.dumps(body)
        answer = await self._transport.request(method, self.url + path, headers, data)
        try:
            decoded = wire.loads(answer.body) if answer.body else None
        except ValueError:
            decoded = None
        if 200 <= answer.status < 300:
            return decoded
        name = decoded.get("error") if isinstance(decoded, dict) else None
        message = decoded.get("message") if isinstance(decoded, dict) else None
        if missing is not None and name == missing:
            return None
        if answer.status == 401:
            raise Unauthorized(message or "the server refused the token")
        if name is None:
            raise StorageError(f"the server answered {method} {path} with HTTP {answer.status} and no error body")
        error: type[ClinvecError] = wire.error_class(name)
        raise error(message or name)

    async def aclose(self) -> None:
        await self._transport.aclose()
