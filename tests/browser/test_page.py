"""The page boots in Chromium, offline-clean: ready state, Python in a worker, no foreign requests."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser


def test_page_reaches_ready_and_reports_runtime(app: Any) -> None:
    page = app.page
    assert page.get_attribute("html", "data-state") == "ready"
    assert page.evaluate("() => crossOriginIsolated") is True
    kernel = page.get_attribute("html", "data-kernel")
    assert kernel in ("js", "numpy")
    assert page.text_content("#fact-kernel").startswith("JavaScript" if kernel == "js" else "numpy")
    assert page.text_content("#fact-storage").startswith("IndexedDB, ")
    assert page.get_attribute("html", "data-persisted") in ("true", "false")
    assert "3.14" in page.text_content("#fact-python")
    assert page.is_hidden("#error")
    # Python really runs in a worker (its JS global is a worker scope), and pyapp imports there.
    facts = app.run(
        "import js, sys, pyapp\n"
        "from pyapp.kernels import default_kernel\n"
        "result = [str(js.globalThis.constructor.name), sys.platform, type(default_kernel(8)).__name__]"
    )
    assert facts == ["DedicatedWorkerGlobalScope", "emscripten", "JsKernel" if kernel == "js" else "NumpyKernel"]
    problems = [
        line
        for line in app.console
        if "Content Security Policy" in line or "Failed to load resource" in line or line.startswith("error")
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("**/vendor/app/pyapp.zip", "pyapp.zip is missing"),
        ("**/vendor/build.json", "serve.py --build"),
        ("**/vendor/pyodide-*/pyodide.asm.wasm", "pyodide.asm.wasm is missing"),
        ("**/app/worker.py", "worker.py"),
    ],
)
def test_boot_failure_shows_a_visible_error(open_app: Any, missing: str, message: str) -> None:
    """A missing asset must end in data-state="error" with a message, not an endless spinner."""
    app = open_app(boot=False)
    app.page.route(missing, lambda route: route.fulfill(status=404, body="gone"))
    app.page.goto(app.base_url + "?test")
    app.page.wait_for_selector('html[data-state="error"]', state="attached", timeout=180_000)
    assert app.page.is_visible("#error")
    assert message in app.page.text_content("#error")


def test_no_request_leaves_the_origin(app: Any, request_log: list[str], web_url: str) -> None:
    """Every request of every page this session (boot, reload, IDB work) went to the test server.

    Pages load from ``127.0.0.1``; the quota test also uses ``localhost`` (a second origin on the same
    server, for untouched storage). No other host, no CDN.
    """
    app.run(
        "from pyapp import LocalIndex\n"
        "idx = await LocalIndex.create('network-check', dims=2, exist_ok=True)\n"
        "await idx.upsert('a', [1, 0], {}, 'text')\n"
        "result = len(await idx.query([1, 0]))\n"
        "await idx.close()\n"
    )
    port = urlsplit(web_url).port
    allowed = {("http", f"127.0.0.1:{port}"), ("http", f"localhost:{port}")}
    assert any(url.endswith("/pyodide.asm.wasm") for url in request_log), "the request log missed the boot"
    foreign = [url for url in request_log if not url.startswith("blob:") and urlsplit(url)[:2] not in allowed]
    assert foreign == []
    blobs = [url.removeprefix("blob:") for url in request_log if url.startswith("blob:")]
    assert all(urlsplit(url)[:2] in allowed for url in blobs)  # same-origin worker blobs


def _snapshot_state(page: Any) -> str:
    settled = 'html[data-snapshot]:not([data-snapshot="pending"]):not([data-snapshot="making"])'
    page.wait_for_selector(settled, state="attached", timeout=180_000)
    return page.get_attribute("html", "data-snapshot")


def test_python_snapshot_is_made_once_then_restored_and_a_bad_one_is_dropped(open_app: Any) -> None:
    """The first boot of a build stores a Python memory snapshot; later boots restore it (CPython's start-up
    skipped), with fresh randomness and a working app; a corrupt snapshot is dropped and Python starts from
    scratch."""
    app = open_app()
    page = app.page
    assert _snapshot_state(page) in ("saved", "restored")
    first = app.run("import random\nresult = random.random()")
    app.boot(reload=True)
    assert page.evaluate("() => window.clinvecBoot.phases.worker.snapshot") == "restored"
    assert _snapshot_state(page) == "restored"
    out = app.run(
        "import random, sys\n"
        "from pyapp import LocalIndex\n"
        "idx = await LocalIndex.create('snapshot-check', dims=2, exist_ok=True)\n"
        "await idx.upsert('a', [1, 0], {}, 'restored interpreter')\n"
        "hits = await idx.query(text='restored', mode='keyword')\n"
        "result = [random.random(), [h.id for h in hits], list(sys.version_info[:2])]\n"
        "await idx.close()\n"
        "await LocalIndex.drop('snapshot-check')\n"
    )
    assert out[0] != first and out[1] == ["a"] and out[2] == [3, 14]
    page.evaluate("""async () => {
        const cache = await caches.open("clinvec-python-snapshot");
        for (const request of await cache.keys()) await cache.put(request, new Response(new Uint8Array(64)));
    }""")
    app.boot(reload=True)
    assert page.evaluate("() => window.clinvecBoot.phases.worker.snapshot") == "missing"
    assert app.run("result = 6 * 7") == 42
    assert _snapshot_state(page) == "saved"  # a good one replaces it
