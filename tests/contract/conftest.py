"""Fixtures for the contract suite's browser half: the page, booted once, driven from a thread of its own.

Why a thread and not tests/browser's fixtures: Playwright's sync API keeps an event loop running in the
thread that started it, so a second ``sync_playwright()`` in the same thread fails, and pytest gives each
directory its own instance of a re-exported session fixture. Owning Playwright in a dedicated thread lets
this suite run alone, before or after tests/browser, in any order. It reuses tests/browser's server
fixture, Chromium flags and page driver (``AppPage``).
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

BROWSER_TESTS = Path(__file__).resolve().parents[1] / "browser"
if str(BROWSER_TESTS) not in sys.path:
    sys.path.insert(0, str(BROWSER_TESTS))  # browser_helpers, imported by the browser conftest

from browser_helpers import AppPage  # noqa: E402 - needs the path above

_spec = importlib.util.spec_from_file_location("_clinvec_browser_fixtures", BROWSER_TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_browser = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser)

web_url = _browser.web_url  # builds web/vendor if needed, serves web/ on a free port (no Playwright involved)

T = TypeVar("T")


class ThreadedPage:
    """A booted clinvec page (``?test``) whose Playwright lives in one dedicated thread."""

    def __init__(self, url: str, profile: Path) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="contract-playwright")
        self._pw: Any = None
        self._context: Any = None
        self.app: AppPage | None = None
        try:
            self._call(self._start, url, profile)
        except BaseException:
            self.close()
            raise

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._pool.submit(fn, *args, **kwargs).result()

    def _start(self, url: str, profile: Path) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._context = self._pw.chromium.launch_persistent_context(
            str(profile), executable_path=_browser.CHROMIUM, args=_browser.LAUNCH_ARGS, headless=True
        )
        self.app = AppPage(self._context.new_page(), url)
        self.app.boot()

    def run(self, code: str, **params: Any) -> Any:
        """``AppPage.run`` in the Playwright thread (in-page Python errors raise ``BrowserPythonError``)."""
        assert self.app is not None
        return self._call(self.app.run, code, **params)

    def _stop(self) -> None:
        if self._context is not None:
            self._context.close()
        if self._pw is not None:
            self._pw.stop()

    def close(self) -> None:
        try:
            self._call(self._stop)
        finally:
            self._pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def contract_page(web_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedPage]:
    """The contract suite's booted page (its own Chromium profile; tests isolate by index name)."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    if not Path(_browser.CHROMIUM).exists():
        pytest.skip(f"{_browser.CHROMIUM} missing: apt-get install -y chromium")
    page = ThreadedPage(web_url, tmp_path_factory.mktemp("contract-chromium-profile"))
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="session")
def api_contract_page(web_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedPage]:
    """A booted page served by ``serve.py --api`` (issue 11): the page and the HTTP API on one origin, so the
    page's ``RemoteIndex`` reaches ``/api`` under its CSP (``connect-src 'self'``). ``web_url`` builds the assets."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    pytest.importorskip("uvicorn", reason="the server extra: pip install -e '.[server]'")
    if not Path(_browser.CHROMIUM).exists():
        pytest.skip(f"{_browser.CHROMIUM} missing: apt-get install -y chromium")
    from serve_process import ServePy

    server = ServePy("--api", str(tmp_path_factory.mktemp("page-api-root")))
    page = None
    try:
        page = ThreadedPage(server.url, tmp_path_factory.mktemp("api-contract-chromium-profile"))
        yield page
    finally:
        if page is not None:
            page.close()
        server.stop()
