"""The server as a sync peer on CPython (httpx): ``GET``/``POST /indexes/{name}/bundle``.

Why its own client rather than ``RemoteIndex``'s transport: a pull must see the answer's headers (ETag,
Content-Range) to resume a broken download where it stopped (``Range: bytes=N-`` + ``If-Range``), and must
stream the body to report progress. The page does the same with ``fetch`` in ``web/app/sync.mjs``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ClinvecError
from ..remote import wire
from .answers import MEDIA_TYPE, bundle_url, raise_for
from .engine import Peer, ServerUnreachable, SyncProgress
from .resume import ResumablePull

RETRIES = 3  # attempts after the first for one pull, each resuming where the last one stopped


class HttpPeer(Peer):
    """``HttpPeer(url, name, token=None)``: the index ``name`` on the clinvec API server at ``url``."""

    def __init__(
        self, url: str, name: str, token: str | None = None, client: Any = None, retries: int = RETRIES
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise ClinvecError("sync over HTTP on CPython needs httpx: pip install 'clinvec[server]'") from None
        self._httpx = httpx
        self._client = client or httpx.AsyncClient(timeout=120.0)
        self._own = client is None
        self._url = bundle_url(url, name)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.resumed = 0  # how many pulls continued a broken download (tests and reports read it)

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()

    async def pull(self, since: int | None, progress: SyncProgress | None = None) -> bytes:
        params = {} if since is None else {"since": str(since)}
        pull = ResumablePull(progress)
        for attempt in range(self.retries + 1):
            headers = pull.headers(self._headers)
            try:
                async with self._client.stream("GET", self._url, params=params, headers=headers) as answer:
                    if answer.status_code >= 400:
                        raise_for(answer.status_code, await answer.aread())
                    if pull.begin(answer.status_code, answer.headers.get("etag"), answer.headers.get("content-length")):
                        self.resumed += 1
                    async for chunk in answer.aiter_bytes():
                        pull.add(chunk)
                return bytes(pull.got)
            except self._httpx.HTTPError as exc:
                if attempt == self.retries:
                    raise ServerUnreachable(
                        f"the server at {self._url} could not be reached or the transfer broke off "
                        f"({type(exc).__name__}: {exc}); nothing was applied"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def push(self, data: bytes, since: int | None) -> dict[str, Any]:
        params = {} if since is None else {"since": str(since)}
        headers = {**self._headers, "Content-Type": MEDIA_TYPE}
        try:
            answer = await self._client.post(self._url, params=params, headers=headers, content=data)
        except self._httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"the server at {self._url} could not be reached ({type(exc).__name__}: {exc}); "
                "the push may or may not have been merged (merging it again changes nothing)"
            ) from None
        raise_for(answer.status_code, answer.content)
        return wire.loads(answer.content)
