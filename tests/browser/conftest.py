"""Fixtures for the browser tests: build the assets once, serve ``web/``, drive Debian's Chromium.

Why one persistent Chromium context per session: a fresh context re-downloads and recompiles the
9.6 MB Pyodide wasm on every page; a persistent profile keeps the HTTP cache, so each extra page
costs only Python's start-up. Tests isolate themselves by using their own IndexedDB names.
Never ``playwright install``: the browser is ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import AppPage
from chromium import CHROMIUM, LAUNCH_ARGS
from serve_process import ServePy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def web_url() -> Iterator[str]:
    """Build ``web/vendor`` if missing (else repack pyapp only), serve it on a free loopback port."""
    sys.path.insert(0, str(ROOT))
    import web_build

    if web_build.needs_build():
        web_build.build()
    else:
        web_build.refresh_app()
    server = ServePy()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def request_log() -> list[str]:
    """Every URL any page of the session requested (filled by ``browser_context``)."""
    return []


@pytest.fixture(scope="session")
def browser_context(web_url: str, request_log: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One persistent Chromium profile for the session; every request any page makes is logged."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=LAUNCH_ARGS,
            headless=True,
        )
        context.on("request", lambda request: request_log.append(request.url))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture()
def open_app(browser_context: Any, web_url: str) -> Iterator[Any]:
    """Factory: ``open_app()`` -> a booted ``AppPage``; pages are closed after the test."""
    pages: list[AppPage] = []

    def factory(boot: bool = True) -> AppPage:
        app = AppPage(browser_context.new_page(), web_url)
        pages.append(app)
        if boot:
            app.boot()
        return app

    yield factory
    for app in pages:
        if not app.page.is_closed():
            app.close()


def _booted(browser_context: Any, web_url: str) -> Iterator[AppPage]:
    app = AppPage(browser_context.new_page(), web_url)
    app.boot()
    yield app
    if not app.page.is_closed():
        app.close()


@pytest.fixture(scope="session")
def app(browser_context: Any, web_url: str) -> Iterator[AppPage]:
    """The session's main booted tab. Booting costs 10-30 s (CPython start-up), so tests share it and
    isolate themselves by index name; tests may reload it, none may close it."""
    yield from _booted(browser_context, web_url)


@pytest.fixture(scope="session")
def second_app(browser_context: Any, web_url: str) -> Iterator[AppPage]:
    """A second tab of the same origin (writer-lock and cross-tab tests)."""
    yield from _booted(browser_context, web_url)


@pytest.fixture()
def index_name() -> str:
    """A fresh IndexedDB index name per test, so tests sharing the profile never see each other's data."""
    return f"test-{uuid.uuid4().hex[:12]}"
