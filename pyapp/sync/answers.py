"""The server's error answers as exceptions, for both sync transports (httpx on CPython, fetch in the page)."""

from __future__ import annotations

from ..errors import Unauthorized
from ..remote import wire
from .engine import ServerUnreachable

MEDIA_TYPE = "application/vnd.clinvec.bundle+gzip"


def bundle_url(base: str, name: str) -> str:
    """``{base}/indexes/{name}/bundle`` with the name quoted (it is checked again by the server)."""
    from urllib.parse import quote

    return f"{base.rstrip('/')}/indexes/{quote(name, safe='')}/bundle"


def raise_for(status: int, body: bytes) -> None:
    """Nothing for a success; else the ``ClinvecError`` the server's ``{"error", "message"}`` names
    (``Unauthorized`` for 401, ``ServerUnreachable`` for a 5xx without a clinvec body, e.g. a proxy's)."""
    if status < 400:
        return
    try:
        answer = wire.loads(body)
        name, message = answer.get("error"), str(answer.get("message", ""))
    except Exception:  # noqa: BLE001 - not a clinvec answer (a proxy's page): report the status
        name, message = None, body[:200].decode("utf-8", "replace")
    if status == 401:
        raise Unauthorized(message or "the server refused the token")
    if status >= 500 and name is None:
        raise ServerUnreachable(f"the server answered {status}: {message}")
    raise wire.error_class(name)(message or f"the server answered {status}")
