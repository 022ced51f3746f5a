""" "Sync with server" in the real page, against ``serve.py --api`` (page and API from one origin).

A server index of 10,000 notes (vectors given directly, with the page model's identity) is pulled by a fresh
page; five notes are added in the page while it is offline (a sync then fails and changes nothing), five on
the server; one note is edited on both sides (the server's edit is later); a sync brings both to 10,010 items
that agree item by item (id, metadata, text, float32 vector), and the overwritten page version is listed in the
sync log. The pull's time to searchable is printed (docs/BENCHMARKS.md has the figure with its command).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import time
import uuid
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import BOOT_TIMEOUT_MS, AppPage
from serve_process import ServePy

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DIMS = 384
N = 10_000
SERVER_INDEX = "ward-notes"

INDEX = "import __main__\nindex = __main__._APP['index']\n"
DIGEST = """
import __main__, hashlib, json
from array import array
index = __main__._APP['index']
rows = []
async for batch in index.iter_items():
    rows.extend((i.id, json.dumps(i.metadata, sort_keys=True), i.text, array('f', i.vector).tobytes()) for i in batch)
h = hashlib.sha256()
for row in sorted(rows):
    h.update(repr(row).encode())
result = {"count": len(rows), "digest": h.hexdigest()}
"""


def arun(coro: Any) -> Any:
    """Run a coroutine to the end on its own thread (Playwright's sync API holds this thread's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def digest_of(items: list[Any]) -> dict[str, Any]:
    rows = [(i.id, json.dumps(i.metadata, sort_keys=True), i.text, array("f", i.vector).tobytes()) for i in items]
    h = hashlib.sha256()
    for row in sorted(rows):
        h.update(repr(row).encode())
    return {"count": len(rows), "digest": h.hexdigest()}


def unit(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIMS)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


@pytest.fixture(scope="module")
def api_url(web_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``serve.py --api ROOT`` on a free port (``web_url`` first: it builds web/vendor)."""
    root = tmp_path_factory.mktemp("sync-api")
    server = ServePy("--api", str(root))
    try:
        yield server.url.rstrip("/"), root
    finally:
        server.stop()


async def _server_index(root: Path, identity: dict[str, Any]) -> None:
    """10,000 notes written straight into the server's folder (before the server opens it): no embedding."""
    from pyapp import LocalIndex
    from pyapp.bundle.restore import RecordedModel

    rng = random.Random(11)
    index = await LocalIndex.create(str(root / SERVER_INDEX), embedder=RecordedModel(identity, DIMS))
    index.use_embedder(None)
    wards = ["ED", "ICU", "Cardiology", "Oncology"]
    await index.insert_many(
        [
            {
                "id": f"s{i}",
                "vector": unit(rng),
                "metadata": {"ward": wards[i % 4], "year": str(2015 + i % 10)},
                "text": f"Server note {i}: {wards[i % 4]} review, observations stable, plan unchanged.",
            }
            for i in range(N)
        ]
    )
    await index.close()


async def _server_side(url: str, step: str) -> Any:
    """What the server holds or does, over HTTP (RemoteIndex for writes, a full bundle for the comparison)."""
    from pyapp import RemoteIndex
    from pyapp import bundle as bundles
    from pyapp.sync.http import HttpPeer

    rng = random.Random(step)
    if step == "digest":
        peer = HttpPeer(url + "/api", SERVER_INDEX)
        data = await peer.pull(None)
        await peer.aclose()
        copy = await bundles.create_from_bundle(f"memory://server-copy-{uuid.uuid4().hex}", io.BytesIO(data))
        items = [item async for batch in copy.iter_items() for item in batch]
        await copy.close()
        return digest_of(items)
    remote = await RemoteIndex.open(url + "/api", SERVER_INDEX)
    try:
        if step == "add":
            await remote.insert_many(
                [{"id": f"server-new-{i}", "vector": unit(rng), "text": f"Added on the server {i}"} for i in range(5)]
            )
        elif step == "ten":
            for i in range(10):
                await remote.upsert(f"s{100 + i}", unit(rng), {"ward": "ED"}, f"Server note {100 + i}, revised")
        elif step == "edit":
            await remote.upsert("s7", unit(rng), {"ward": "ICU", "edited": "server"}, "Server note 7, edited at base")
        return await remote.count()
    finally:
        await remote.close()


def _act(page: Any, action: Any, timeout: int = 180_000) -> None:
    before = int(page.get_attribute("html", "data-ops") or 0)
    action()
    page.wait_for_selector(f'html[data-ops="{before + 1}"]:not([data-busy])', state="attached", timeout=timeout)


def _error(page: Any) -> str:
    box = page.query_selector("#app-error")
    return "" if box is None or box.is_hidden() else (box.text_content() or "")


def test_a_fresh_page_pulls_10k_then_both_sides_add_offline_and_sync_to_the_same_10010(
    browser_context: Any, api_url: tuple[str, Path]
) -> None:
    url, root = api_url
    app = AppPage(browser_context.new_page(), url + "/")
    page = app.page
    try:
        page.goto(f"{url}/?test&index=sync-{uuid.uuid4().hex[:8]}&sync={SERVER_INDEX}")
        page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=BOOT_TIMEOUT_MS)
        assert page.get_attribute("html", "data-state") == "ready", page.text_content("#error")
        identity = app.run("import __main__\nresult = __main__._APP['index'].manifest['embedder']")
        arun(_server_index(root, identity))

        # 1. a fresh page pulls the whole server index, with progress, and can search it
        started = time.perf_counter()
        _act(page, lambda: page.click("[data-testid=sync]"))
        pulled_s = time.perf_counter() - started
        assert page.get_attribute("html", "data-sync") == "done", _error(page)
        assert "received 10000 new" in page.text_content("[data-testid=sync-status]")
        hits = app.run(
            INDEX + "result = [r.id for r in await index.query(text=q, top_k=3, mode='keyword')]",
            q="Server note 4321",
        )
        assert hits[0] == "s4321"
        timings = page.evaluate("() => window.clinvecSyncTimings")
        print(f"\npull of {N} x {DIMS} into a fresh page, click to searchable: {pulled_s:.2f} s; worker: {timings}")

        # 2. offline: five notes added in the page; a sync attempt fails and changes nothing
        browser_context.set_offline(True)
        try:
            for i in range(5):
                page.fill(
                    "[data-testid=note-text]",
                    f"Added offline in the field, patient {i}: wound check, dressing changed.",
                )
                _act(page, lambda: page.click("[data-testid=note-add]"))
                assert not _error(page)
            _act(page, lambda: page.click("[data-testid=sync]"))
            assert page.get_attribute("html", "data-sync") == "failed"
            assert "could not be reached" in page.text_content("[data-testid=sync-status]")
        finally:
            browser_context.set_offline(False)
        assert app.run("import __main__\nresult = await __main__._APP['index'].count()") == N + 5

        # 3. five notes on the server; one note edited on both sides, the server's edit last
        rng = random.Random(5)
        app.run(
            INDEX + "await index.upsert('s7', v, {'ward': 'ED', 'edited': 'page'}, 'page edit')",
            v=unit(rng),
        )
        time.sleep(0.01)
        assert arun(_server_side(url, "add")) == N + 5
        arun(_server_side(url, "edit"))

        # 4. sync: both hold 10,010 and agree item by item; the page's edit of s7 lost and is listed
        _act(page, lambda: page.click("[data-testid=sync]"))
        assert page.get_attribute("html", "data-sync") == "done", _error(page)
        mine = app.run(DIGEST)
        theirs = arun(_server_side(url, "digest"))
        assert mine["count"] == theirs["count"] == N + 10
        assert mine == theirs
        entry = page.locator("[data-testid=sync-log-entry][data-note-id=s7]")
        assert entry.count() == 1 and "overwritten" in entry.text_content() and "conflict" in entry.text_content()
        assert page.locator("[data-testid=sync-overwritten]").first.text_content() == "page edit"
        assert "1 conflict" in page.text_content("[data-testid=sync-status]")
        # 5. a delta of 10 server commits (each its own commit)
        arun(_server_side(url, "ten"))
        started = time.perf_counter()
        _act(page, lambda: page.click("[data-testid=sync]"))
        delta_s = time.perf_counter() - started
        assert "received 0 new, 10 updated" in page.text_content("[data-testid=sync-status]")
        timings = page.evaluate("() => window.clinvecSyncTimings")
        print(f"delta of 10 server commits into the page, click to done: {delta_s:.3f} s; worker: {timings}")
        assert "Added on the server 3" in (
            app.run("import __main__\nresult = (await __main__._APP['index'].get('server-new-3')).text")
        )
    finally:
        app.close()
