"""``RemoteIndex``: the LocalIndex API over a clinvec server, on CPython (httpx) and in the page (fetch)."""

from __future__ import annotations

from .index import RemoteIndex
from .transport import Response, Transport, default_transport

__all__ = ["RemoteIndex", "Response", "Transport", "default_transport"]
