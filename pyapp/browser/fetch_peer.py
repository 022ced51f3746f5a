"""The server as a sync peer in the page: the browser's ``fetch`` from the worker (same origin, ``/api``).

Why not ``FetchTransport``: a pull reads the body chunk by chunk (progress for a 15 MB bundle) and needs the
answer's ETag to resume a broken download with ``Range`` + ``If-Range``, as ``pyapp.sync.http`` does on CPython.
"""

from __future__ import annotations

from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, to_js  # type: ignore[import-not-found]

from ..remote import wire
from ..sync.answers import MEDIA_TYPE, bundle_url, raise_for
from ..sync.engine import Peer, ServerUnreachable, SyncProgress
from ..sync.resume import ResumablePull
from ._bridge import to_u8

RETRIES = 3


def _options(method: str, headers: dict[str, str], body: Any = None) -> Any:
    options: dict[str, Any] = {
        "method": method,
        "headers": to_js(headers, dict_converter=js.Object.fromEntries),
        "credentials": "same-origin",
        "cache": "no-store",
    }
    if body is not None:
        options["body"] = body
    return to_js(options, dict_converter=js.Object.fromEntries)


def _header(answer: Any, name: str) -> str | None:
    value = answer.headers.get(name)
    return value if isinstance(value, str) else None  # JS null arrives as jsnull


class FetchPeer(Peer):
    """``FetchPeer(base, name)``: ``base`` is the API's URL (the page's origin + ``api``)."""

    def __init__(self, base: str, name: str, token: str | None = None, retries: int = RETRIES) -> None:
        self._url = bundle_url(base, name)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.resumed = 0

    async def pull(self, since: int | None, progress: SyncProgress | None = None) -> bytes:
        url = self._url if since is None else f"{self._url}?since={since}"
        pull = ResumablePull(progress)
        for attempt in range(self.retries + 1):
            headers = pull.headers(self._headers)
            try:
                answer = await js.fetch(url, _options("GET", headers))
                status = int(answer.status)
                if status >= 400:
                    raise_for(status, (await answer.arrayBuffer()).to_bytes())
                if pull.begin(status, _header(answer, "etag"), _header(answer, "content-length")):
                    self.resumed += 1
                reader = answer.body.getReader()
                while True:
                    chunk = await reader.read()
                    if chunk.done:
                        break
                    pull.add(chunk.value.to_bytes())
                return bytes(pull.got)
            except JsException as exc:
                if attempt == self.retries:
                    raise ServerUnreachable(
                        f"the server could not be reached or the transfer broke off ({exc}); nothing was applied"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def push(self, data: bytes, since: int | None) -> dict[str, Any]:
        url = self._url if since is None else f"{self._url}?since={since}"
        headers = {**self._headers, "Content-Type": MEDIA_TYPE}
        try:
            answer = await js.fetch(url, _options("POST", headers, to_u8(data)))
            body = (await answer.arrayBuffer()).to_bytes()
        except JsException as exc:
            raise ServerUnreachable(
                f"the server could not be reached ({exc}); the push may or may not have been merged "
                "(merging it again changes nothing)"
            ) from None
        raise_for(int(answer.status), body)
        return wire.loads(body)
