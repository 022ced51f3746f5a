"""The CPython transport: one ``httpx.AsyncClient`` (a keep-alive connection pool) per ``RemoteIndex``."""

from __future__ import annotations

from ..errors import StorageError
from .transport import Response


class HttpxTransport:
    def __init__(self, timeout: float = 120.0) -> None:
        try:
            import httpx
        except ImportError:
            raise StorageError("RemoteIndex on CPython needs httpx: pip install 'clinvec[server]'") from None
        self._httpx = httpx
        self._client = httpx.AsyncClient(timeout=timeout)

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        try:
            answer = await self._client.request(method, url, headers=headers, content=body)
        except self._httpx.HTTPError as exc:
            raise StorageError(
                f"cannot reach the clinvec server at {url!r} ({type(exc).__name__}: {exc}); "
                "a write whose answer was lost may or may not have been applied"
            ) from None
        return Response(answer.status_code, answer.content)

    async def aclose(self) -> None:
        await self._client.aclose()
