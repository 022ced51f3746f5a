"""How ``RemoteIndex`` sends a request: one small interface, one module per runtime (httpx's ``_transports/``
layout): ``httpx_transport`` on CPython, ``pyapp.browser.fetch_transport`` (the browser's ``fetch``) in Pyodide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .._platform import is_pyodide


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


class Transport(Protocol):
    """Sends one HTTP request and returns the whole answer. A transport raises ``StorageError`` when the server
    cannot be reached (it never returns a made-up status)."""

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response: ...

    async def aclose(self) -> None: ...


def default_transport(timeout: float = 120.0) -> Transport:
    """``fetch`` in the browser, httpx elsewhere (imported only here: the page has no httpx)."""
    if is_pyodide():
        from ..browser.fetch_transport import FetchTransport

        return FetchTransport()
    from .httpx_transport import HttpxTransport

    return HttpxTransport(timeout=timeout)
