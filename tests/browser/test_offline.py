"""Offline: opened once online, the page boots with the server gone, isolated, with its IndexedDB data.

Why a server of its own: the service worker and its 100+ MB precache belong to one origin, so this test
serves ``web/`` on another port (another origin) that it can stop, and the session's shared origin never
gets a service worker (the page registers one under ``?test`` only when asked with ``?test=sw``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_helpers import BOOT_TIMEOUT_MS, AppPage
from serve_process import ServePy

ROOT = Path(__file__).resolve().parents[2]
PRECACHE = ROOT / "web" / "vendor" / "precache.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import web_build  # noqa: E402 - after making the repository root importable


def _forget_requests_to(url: str, request_log: list[str], since: int) -> None:
    """Drop the requests to ``url``'s origin logged since ``since``: a test's own server (checked by the test)
    would look foreign to the session-wide network test, which expects the shared ``web_url`` only."""
    mine = urlsplit(url)[:2]
    others = [u for u in request_log[since:] if urlsplit(u.removeprefix("blob:"))[:2] != mine]
    del request_log[since:]
    request_log.extend(others)


@pytest.fixture()
def own_server(web_url: str) -> Iterator[ServePy]:
    """Depends on ``web_url`` only for its build step (which writes ``vendor/precache.json``)."""
    server = ServePy()
    try:
        yield server
    finally:
        server.stop()


def _sw_served(page: Any) -> dict[str, bool]:
    """path -> served by the service worker, for every http(s) response this page gets from now on."""
    seen: dict[str, bool] = {}

    def record(res: Any) -> None:
        if not res.url.startswith("blob:"):  # the worker's script blob never touches the network
            seen[urlsplit(res.url).path] = res.from_service_worker

    page.on("response", record)
    return seen


@pytest.mark.browser
def test_offline_reload_boots_from_the_service_worker_with_data_intact(
    browser_context: Any, own_server: ServePy, request_log: list[str]
) -> None:
    listed = json.loads(PRECACHE.read_text())["files"]
    assert any(p.endswith("pyodide-lock.json") for p in listed) and any(p.endswith(".wasm") for p in listed)
    assert "app/sw-register.mjs" in listed and "vendor/app/pyapp.zip" in listed
    logged_before = len(request_log)
    app = AppPage(browser_context.new_page(), own_server.url)
    mine = urlsplit(own_server.url)[:2]
    try:
        online_s = app.boot_offline()
        version = json.loads(PRECACHE.read_text())["version"]
        cached = app.page.evaluate(
            """async (name) => {
            const cache = await caches.open(name);
            return (await cache.keys()).map((r) => new URL(r.url).pathname);
        }""",
            f"clinvec-v-{version}",
        )
        assert {"/", "/sw-state.json", "/vendor/app/pyapp.zip", "/manifest.webmanifest"} <= set(cached)
        assert len(cached) == len(listed) + 1  # every listed file, plus the worker's state record
        app.run("""
from pyapp import LocalIndex
idx = await LocalIndex.create("offline-check", dims=3, indexed=["ward"], exist_ok=True)
await idx.upsert_many([{"id": f"n{i}", "vector": [1, i, 0], "metadata": {"ward": "ICU"}, "text": f"note {i}"}
                       for i in range(5)])
await idx.close()
""")

        own_server.stop()
        served = _sw_served(app.page)
        started = time.perf_counter()
        app.boot(reload=True)
        offline_s = time.perf_counter() - started
        page = app.page
        assert page.get_attribute("html", "data-state") == "ready"
        assert page.evaluate("() => crossOriginIsolated") is True  # COOP/COEP kept by the cached responses
        assert page.evaluate("() => navigator.serviceWorker.controller !== null") is True
        out = app.run("""
from pyapp import LocalIndex
idx = await LocalIndex.open("offline-check")
result = {"ids": await idx.ids(), "icu": await idx.count({"ward": "ICU"}),
          "top": [h.id for h in await idx.query([1, 4, 0], top_k=1)],
          "keyword": [h.id for h in await idx.query(text="note 3", mode="keyword", top_k=1)]}
await idx.close()
""")
        assert out == {"ids": [f"n{i}" for i in range(5)], "icu": 5, "top": ["n4"], "keyword": ["n3"]}
        wasm = "/" + next(p for p in listed if p.endswith("/pyodide.asm.wasm"))
        for path in ("/", wasm, "/vendor/app/pyapp.zip"):
            assert path in served, path
        assert [path for path, from_sw in served.items() if not from_sw] == []  # the server is gone: all cached
        if any(p.startswith("models/") for p in listed):
            assert any(p.startswith("/models/") for p in served)  # the model bundle loaded offline too
        # The app itself searches offline, its model included (a semantic query embeds the text).
        page.fill("#search-text, [data-testid='search']", "note about the intensive care unit")
        page.select_option("#search-mode, [data-testid='search-mode']", "semantic")
        page.press("#search-text, [data-testid='search']", "Enter")
        page.wait_for_selector("html:not([data-busy])", state="attached", timeout=60_000)
        page.wait_for_selector("#search-summary:not(:empty)", state="attached", timeout=60_000)
        assert page.is_hidden("#app-error"), page.text_content("#app-error")
        assert page.get_attribute("html", "data-embedder") == "onnx"
        problems = [line for line in app.console if "Content Security Policy" in line]
        assert problems == []
        foreign = [u for u in request_log[logged_before:] if urlsplit(u.removeprefix("blob:"))[:2] != mine]
        assert foreign == []
        print(f"\nboot online {online_s:.1f} s, offline from the service worker {offline_s:.1f} s")
    finally:
        app.close()
        _forget_requests_to(own_server.url, request_log, logged_before)


def test_precache_list_names_every_asset_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``web_build.write_precache`` lists what the page loads (runtime, app, models), never npm inputs or sw.js."""
    web = tmp_path / "web"
    files = {
        "index.html": "<!doctype html>",
        "pyscript.json": "{}",
        "sw.js": "",
        "package.json": "{}",
        "app/main.mjs": "",
        "app/worker.py": "",
        "app/__pycache__/worker.cpython-311.pyc": "",
        "app/.swp": "",
        "vendor/build.json": "{}",
        "vendor/pyodide-1.0/pyodide.asm.wasm": "wasm",
        "vendor/app/pyapp.zip": "zip",
        "models/m/manifest.json": json.dumps({"files": {"model.onnx": {}, "vocab.txt": {}}, "vocab_file": "vocab.txt"}),
        "models/m/model.onnx": "onnx",
        "models/m/vocab.txt": "[PAD]",
        "models/m/notes.md": "not in the bundle",
        "models/plain/weights.bin": "no manifest: every file",
        "node_modules/x/index.js": "",
    }
    for rel, text in files.items():
        (web / rel).parent.mkdir(parents=True, exist_ok=True)
        (web / rel).write_text(text)
    monkeypatch.setattr(web_build, "WEB", web)
    monkeypatch.setattr(web_build, "VENDOR", web / "vendor")
    monkeypatch.setattr(web_build, "PRECACHE_JSON", web / "vendor" / "precache.json")
    record = {"files": ["pyodide-1.0/pyodide.asm.wasm", "app/pyapp.zip", "app/missing.mjs"]}
    first = web_build.write_precache(record)
    assert sorted(first["files"]) == sorted(
        [
            "./",
            "index.html",
            "pyscript.json",
            "app/main.mjs",
            "app/worker.py",
            "vendor/build.json",
            "vendor/pyodide-1.0/pyodide.asm.wasm",
            "vendor/app/pyapp.zip",
            "models/m/manifest.json",
            "models/m/model.onnx",
            "models/m/vocab.txt",
            "models/plain/weights.bin",
        ]
    )
    assert json.loads((web / "vendor" / "precache.json").read_text()) == first
    assert web_build.write_precache(record)["version"] == first["version"]  # same files, same version
    (web / "app" / "main.mjs").write_text("// edited")
    second = web_build.write_precache(record)
    assert second["version"] != first["version"]
    assert [k for k in first["files"] if first["files"][k] != second["files"][k]] == ["app/main.mjs"]


class CopyServer:
    """``serve.py``'s server, in this process, over a copy of ``web/`` (hard links: no 100 MB copy) that a
    test may change and rebuild without touching the repository's own ``web/``."""

    def __init__(self, root: Path) -> None:
        import shutil
        import threading

        import serve

        def link_or_copy(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        self.web = root / "web"
        shutil.copytree(
            ROOT / "web", self.web, ignore=shutil.ignore_patterns("node_modules"), copy_function=link_or_copy
        )
        self.server = serve.make_server("127.0.0.1", 0, root=self.web, quiet=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def replace(self, rel: str, text: str) -> None:
        """Write a new file (never in place: the old one is a hard link into the repository)."""
        path = self.web / rel
        path.unlink()
        path.write_text(text)

    def rebuild_list(self, monkeypatch: pytest.MonkeyPatch) -> str:
        """Rewrite this copy's precache list (what ``serve.py``'s start-up refresh does); returns its version."""
        monkeypatch.setattr(web_build, "WEB", self.web)
        monkeypatch.setattr(web_build, "VENDOR", self.web / "vendor")
        monkeypatch.setattr(web_build, "PRECACHE_JSON", self.web / "vendor" / "precache.json")
        for name in ("precache.json", "precache.js"):
            (self.web / "vendor" / name).unlink()
        record = json.loads((self.web / "vendor" / "build.json").read_text())
        return web_build.write_precache(record)["version"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def copy_site(
    browser_context: Any, web_url: str, tmp_path: Path, request_log: list[str]
) -> Iterator[tuple[CopyServer, AppPage]]:
    """A copy of the build on a server (and origin) of its own, a page booted there with the service worker
    and the whole build cached; afterwards the page is closed, the server stopped and its requests forgotten.
    Depends on ``web_url`` only for its build step."""
    logged_before = len(request_log)
    server = CopyServer(tmp_path)
    app = AppPage(browser_context.new_page(), server.url)
    try:
        app.boot_offline()
        yield server, app
    finally:
        app.close()
        server.stop()
        _forget_requests_to(server.url, request_log, logged_before)


@pytest.mark.browser
def test_a_new_version_waits_for_the_users_reload_and_never_mixes(
    copy_site: tuple[CopyServer, AppPage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuilt app installs beside the running one; the open page keeps its version's files and keeps
    working until the user presses the banner's Reload, which switches to the new version as a whole."""
    server, app = copy_site
    page = app.page
    old_css = (server.web / "app" / "app.css").read_text()
    page.evaluate("() => { window.sameDocument = true; }")

    server.replace("app/app.css", old_css + "\n/* version-2 marker */\n")
    new_version = server.rebuild_list(monkeypatch)
    page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).update()")
    page.wait_for_selector('html[data-update="ready"]', state="attached", timeout=120_000)
    assert page.is_visible("#update") and "new version" in page.text_content("#update-text")
    assert page.get_attribute("html", "data-update") == "ready"

    # Still the old version, whole: its CSS (from its own cache, though the server has the new one),
    # and the app keeps answering.
    css = page.evaluate("async () => (await fetch('app/app.css')).text()")
    assert "version-2 marker" not in css
    assert page.evaluate("() => window.sameDocument") is True
    assert app.run("result = 1 + 1") == 2
    names = page.evaluate("() => caches.keys()")
    assert f"clinvec-v-{new_version}" in names and len([n for n in names if n.startswith("clinvec-v-")]) == 2

    page.focus("#update-reload")
    with page.expect_navigation(timeout=BOOT_TIMEOUT_MS):  # not the old page's own "ready"
        page.keyboard.press("Enter")  # the banner's button, by keyboard
    page.wait_for_selector('html[data-state="ready"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert page.evaluate("() => window.sameDocument") is None  # it reloaded
    css = page.evaluate("async () => (await fetch('app/app.css')).text()")
    assert "version-2 marker" in css
    assert page.is_hidden("#update")
    for _ in range(40):  # the old version's cache goes once no page uses it
        names = page.evaluate("() => caches.keys()")
        if [n for n in names if n.startswith("clinvec-v-")] == [f"clinvec-v-{new_version}"]:
            break
        page.reload()
        page.wait_for_selector('html[data-state="ready"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert [n for n in names if n.startswith("clinvec-v-")] == [f"clinvec-v-{new_version}"]


@pytest.mark.browser
def test_the_users_reload_switches_to_a_waiting_version_whole(
    copy_site: tuple[CopyServer, AppPage], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a new version waiting, a plain reload (no banner) activates it and the page comes back as that
    version whole: its page and its stylesheet, never the old page with new files or the reverse; the old
    version's cache goes once no page uses it."""
    server, app = copy_site
    page = app.page
    assert page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--build')") == ""
    # A new origin: nothing in Cache Storage yet, so Python came from the snapshot the build shipped.
    if json.loads((server.web / "vendor" / "build.json").read_text()).get("snapshot"):
        assert page.evaluate("() => window.clinvecBoot.phases.worker.snapshot_source") == "build"

    # Version B: a marker in the page itself and one in its stylesheet.
    html = (server.web / "index.html").read_text()
    server.replace("index.html", html.replace("<head>", '<head>\n  <meta name="clinvec-build" content="B">', 1))
    server.replace("app/app.css", (server.web / "app" / "app.css").read_text() + '\n:root { --build: "B"; }\n')
    new_version = server.rebuild_list(monkeypatch)
    page.evaluate("async () => (await navigator.serviceWorker.getRegistration()).update()")
    page.wait_for_selector('html[data-update="ready"]', state="attached", timeout=120_000)

    # Pages loaded from now on: only hand-over pages (empty, "Refresh: 0") before version B's own.
    pages: list[str | None] = []
    page.on(
        "response",
        lambda res: res.request.resource_type == "document" and pages.append(res.headers.get("refresh")),
    )
    page.reload()  # the user's reload, not the banner's button
    page.wait_for_selector('meta[name="clinvec-build"][content="B"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    page.wait_for_selector('html[data-state="ready"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--build')") == '"B"'
    version = page.evaluate("""() => new Promise((resolve) => {
        const channel = new MessageChannel();
        channel.port1.onmessage = ({ data }) => resolve(data);
        navigator.serviceWorker.controller.postMessage({ type: "VERSION" }, [channel.port2]);
    })""")
    assert version == new_version
    assert pages[-1] is None and set(pages[:-1]) == {"0"}  # the old page never loaded again
    assert page.is_hidden("#update") and page.get_attribute("html", "data-update") is None
    assert app.run("result = 2 + 3") == 5
    names: list[str] = []
    for _ in range(20):  # the old version's cache goes once no page uses it
        names = [n for n in page.evaluate("() => caches.keys()") if n.startswith("clinvec-v-")]
        if names == [f"clinvec-v-{new_version}"]:
            break
        page.reload()
        page.wait_for_selector('html[data-state="ready"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert names == [f"clinvec-v-{new_version}"]
