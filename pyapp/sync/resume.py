"""One pull of a bundle across broken connections: the bytes so far and how to ask for the rest.

Why one home: the CPython peer (``pyapp.sync.http``, httpx) and the page's (``pyapp.browser.fetch_peer``,
``fetch``) speak the same protocol and must agree on it: after a break, ask for ``Range: bytes=N-`` with
``If-Range: <ETag>``; a ``206`` continues the bytes so far, any other success is a whole bundle (the server no
longer has the one we began), so the bytes so far are dropped. Pure Python, so both builds run this code.
"""

from __future__ import annotations

from .engine import SyncProgress


class ResumablePull:
    """State of one pull; the transport makes the requests and feeds the answers and chunks in."""

    def __init__(self, progress: SyncProgress | None = None) -> None:
        self.got = bytearray()
        self.etag: str | None = None
        self.total = 0
        self._progress = progress

    def headers(self, base: dict[str, str]) -> dict[str, str]:
        """The next request's headers: ``base``, plus the range still missing once a validator is known."""
        headers = dict(base)
        if self.got and self.etag:
            headers.update({"Range": f"bytes={len(self.got)}-", "If-Range": self.etag})
        return headers

    def begin(self, status: int, etag: str | None, length: str | None) -> bool:
        """An answer's head arrived (status below 400); True when it continues the bytes so far (``206``)."""
        resumed = status == 206
        if not resumed:  # a whole bundle (first try, or the server no longer has the one we began)
            self.got.clear()
        self.etag = etag
        self.total = len(self.got) + int(length) if length else self.total
        return resumed

    def add(self, chunk: bytes) -> None:
        """Append a chunk of the body and report the progress."""
        self.got.extend(chunk)
        if self._progress is not None:
            self._progress("pull", len(self.got), max(self.total, len(self.got)))
