"""The Pyodide transport: the browser's ``fetch``, awaited from Python (httpx PR #3330's approach, without httpx).

Same-origin only in practice: the page's CSP is ``connect-src 'self'``, so the API is mounted beside the page
(``serve.py --api ROOT`` -> ``/api``). The body crosses the bridge once as a ``Uint8Array``.
"""

from __future__ import annotations

import js
from pyodide.ffi import JsException, to_js

from ..errors import StorageError
from ..remote.transport import Response


class FetchTransport:
    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        options: dict[str, object] = {"method": method, "headers": to_js(headers, dict_converter=js.Object.fromEntries)}
        if body is not None:
            options["body"] = to_js(body)
        options["credentials"] = "same-origin"
        options["cache"] = "no-store"
        try:
            answer = await js.fetch(url, to_js(options, dict_converter=js.Object.fromEntries))
            data = (await answer.arrayBuffer()).to_bytes()
        except JsException as exc:
            raise StorageError(
                f"cannot reach the clinvec server at {url!r} ({exc}); "
                "a write whose answer was lost may or may not have been applied"
            ) from None
        return Response(int(answer.status), data)

    async def aclose(self) -> None:
        return None
