"""Page driver shared by the browser tests: boot the page, run Python in its worker."""

from __future__ import annotations

import json
import time
from typing import Any

BOOT_TIMEOUT_MS = 180_000
OFFLINE_TIMEOUT_MS = 120_000  # the service worker caching the whole build after boot


class BrowserPythonError(AssertionError):
    """Python code run inside the page raised; carries the in-page exception name and traceback."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        self.name = outcome.get("error", "")
        self.outcome = outcome
        super().__init__(f"{self.name}: {outcome.get('message')}\n{outcome.get('traceback', '')}")


class AppPage:
    """A booted clinvec page (``?test``) and a way to run Python in its worker."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def boot(self, reload: bool = False, query: str = "test") -> float:
        """Load (or reload) the page and wait for ``data-state`` to leave "loading"; returns seconds.

        ``query``: ``test`` exposes the Python hook; ``test=sw`` also registers the service worker."""
        started = time.perf_counter()
        if reload:
            self.page.reload()
        else:
            self.page.goto(self.base_url + "?" + query)
        self.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=BOOT_TIMEOUT_MS)
        state = self.page.get_attribute("html", "data-state")
        if state != "ready":
            error = self.page.text_content("#error")
            raise AssertionError(f"page state {state!r}: {error}\n" + "\n".join(self.console))
        return time.perf_counter() - started

    def boot_offline(self) -> float:
        """Boot with the service worker (``?test=sw``) and wait until it has cached the whole build
        (``data-offline="ready"``); returns the seconds to ``ready``, before that wait."""
        online_s = self.boot(query="test=sw")
        self.page.wait_for_selector('html[data-offline="ready"]', state="attached", timeout=OFFLINE_TIMEOUT_MS)
        return online_s

    def run(self, code: str, **params: Any) -> Any:
        """Run ``code`` in the page's Python worker (top-level await allowed) and return its ``result``.

        ``params`` arrive as Python variables (JSON round trip) defined before ``code`` runs.
        """
        prelude = "".join(
            f"{name} = __import__('json').loads({json.dumps(json.dumps(value))})\n" for name, value in params.items()
        )
        outcome = json.loads(self.page.evaluate("code => window.clinvecTest.run(code)", prelude + code))
        if not outcome["ok"]:
            raise BrowserPythonError(outcome)
        return outcome["result"]

    def close(self) -> None:
        self.page.close()
