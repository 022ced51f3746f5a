"""The notes page end to end, driven like a user: demo notes, add, search (each mode), filter, delete,
reload, a second (writing) tab, note text that looks like HTML, and no request leaving the origin.

One tab (its own IndexedDB index, via ``?index=``) is shared by the tests of this module, in order: booting a
page costs ~10 s of CPython start-up on the 2-core VM.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_helpers import BOOT_TIMEOUT_MS, AppPage

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TAG = uuid.uuid4().hex[:6]
TOKEN = f"zorbix{TAG}"  # a word no demo note contains, so keyword hits are exactly the notes added here
XSS = "<img src=x onerror=window.__pwned=1> and <script>window.__pwned=2</script>"


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert page.get_attribute("html", "data-state") == "ready", page.text_content("#error")


@pytest.fixture(scope="module")
def ui(browser_context: Any, web_url: str) -> Iterator[AppPage]:
    app = AppPage(browser_context.new_page(), web_url)
    app.index = f"ui-{TAG}"  # type: ignore[attr-defined]
    _open(app.page, f"{web_url}?test&index={app.index}")  # type: ignore[attr-defined]
    yield app
    try:
        app.run(
            "from pyapp import LocalIndex\nimport __main__\nawait __main__._APP['index'].close()\n"
            "await LocalIndex.drop(location)\n",
            location=app.page.get_attribute("html", "data-index"),
        )
    finally:
        app.close()


def _act(page: Any, action: Any) -> None:
    """Do a UI action and wait until the app has finished the operation it started."""
    before = int(page.get_attribute("html", "data-ops") or 0)
    action()
    page.wait_for_function(
        "n => Number(document.documentElement.dataset.ops || 0) > n && !document.documentElement.dataset.busy",
        arg=before,
        timeout=120_000,
    )


def _search(page: Any, text: str, mode: str = "hybrid", ward: str = "", flt: str = "") -> list[str]:
    page.fill("#search-text", "")  # else changing the selects below would start a search of the old text
    page.select_option("#search-mode", value=mode)
    page.select_option("#search-ward", value=ward)
    page.fill("#search-filter", flt)
    page.fill("#search-text", text)
    _act(page, lambda: page.click("#search-go"))
    return [li.get_attribute("data-id") for li in page.query_selector_all("#results > li")]


def _add(page: Any, text: str, ward: str = "", year: str = "", author: str = "") -> str:
    page.fill("#note-text", text)
    page.fill("#note-ward", ward)
    page.fill("#note-year", year)
    page.fill("#note-author", author)
    _act(page, lambda: page.click("#note-add"))
    match = re.search(r"Saved note (\S+) \(", page.text_content("#add-message") or "")
    assert match, (page.text_content("#add-message"), page.text_content("#app-error"))
    return match.group(1)


def _semantic(page: Any) -> bool:
    return page.get_attribute("html", "data-embedder") == "onnx"


def test_first_run_offers_the_demo_notes_and_loads_them(ui: AppPage) -> None:
    page = ui.page
    assert page.is_visible("#demo-offer")
    assert page.text_content("#stat-items") == "0"
    assert page.text_content("#recent") == "No notes yet."
    _act(page, lambda: page.click("#demo-load"))
    assert page.text_content("#demo-status").startswith("Loaded 40 demo notes")
    assert page.text_content("#stat-items") == "40"
    assert page.get_attribute("#demo-progress", "value") == "100"
    # The ward select now lists the demo wards.
    wards = [o.get_attribute("value") for o in page.query_selector_all("#search-ward option")]
    assert {"ED", "ICU", "Cardiology"} <= set(wards)
    if _semantic(page):
        # Meaning, not words: no demo note says "blood clot", "lungs" or "plane".
        hits = _search(page, "blood clot in the lungs after a plane trip", mode="semantic")
        assert hits[0] == "note-001"
    else:
        assert _search(page, "pulmonary embolism", mode="keyword")[0] == "note-001"
    assert "cosine" in page.text_content("#results > li") or not _semantic(page)
    assert page.is_hidden("#app-error")


def test_add_search_each_mode_filter_delete_and_reload(ui: AppPage) -> None:
    page = ui.page
    a_text = f"Recurrent {TOKEN} syndrome: chest tightness and palpitations after exercise, troponin negative."
    b_text = f"{TOKEN} follow-up visit: the itchy rash resolved with a topical steroid, no further flares."
    ward_a, ward_b = f"Renal-{TAG}", f"Derm-{TAG}"
    a = _add(page, a_text, ward=ward_a, year="2024", author="Dr A. Tester")
    b = _add(page, b_text, ward=ward_b, year="2021", author="Dr B. Tester")
    assert page.text_content("#stat-items") == "42"
    assert page.get_attribute("#recent > li:first-child", "data-id") == b

    keyword = _search(page, TOKEN, mode="keyword")
    assert sorted(keyword) == sorted([a, b])
    assert "BM25" in page.text_content(f'#results > li[data-id="{a}"]')
    semantic = _search(page, a_text, mode="semantic")
    assert semantic[0] == a and len(semantic) == 10  # semantic ranks every note; the same text is nearest
    assert "cosine 1.0" in page.text_content("#results > li:first-child")
    hybrid = _search(page, f"{TOKEN} palpitations", mode="hybrid")
    assert hybrid[0] == a and b in hybrid
    first = page.text_content("#results > li:first-child")
    assert "fused" in first and "semantic" in first and "keyword" in first
    assert f"ward {ward_a}" in first and "2024" in first and "Dr A. Tester" in first

    # Filters: the ward select, a JSON filter, both; bad JSON is an inline error, the page stays ready.
    assert _search(page, TOKEN, mode="hybrid", ward=ward_a) == [a]
    assert _search(page, TOKEN, mode="keyword", flt='{"year": {"$lt": 2022}}') == [b]
    assert _search(page, TOKEN, mode="semantic", ward=ward_b, flt='{"author": "Dr B. Tester"}') == [b]
    assert _search(page, TOKEN, mode="keyword", ward=ward_a, flt='{"year": 2021}') == []
    _search(page, TOKEN, flt="{year: 2021")
    assert page.is_visible("#app-error") and "not valid JSON" in page.text_content("#app-error")
    assert page.get_attribute("html", "data-state") == "ready"

    # Delete from the result list; the note is gone from results, the newest list and the count.
    assert sorted(_search(page, TOKEN, mode="keyword")) == sorted([a, b])
    _act(page, lambda: page.click(f'#results > li[data-id="{a}"] button.delete'))
    assert page.query_selector(f'#results > li[data-id="{a}"]') is None
    assert page.query_selector(f'#recent > li[data-id="{a}"]') is None
    assert page.text_content("#stat-items") == "41"
    assert _search(page, TOKEN, mode="keyword") == [b]

    # Reload: the index comes back from IndexedDB without A and with B.
    ui.boot(reload=True)
    assert page.is_hidden("#demo-offer")  # not offered again once notes exist
    assert page.text_content("#stat-items") == "41"
    assert _search(page, TOKEN, mode="keyword") == [b]
    assert a not in _search(page, a_text, mode="semantic")


def test_note_markup_is_rendered_as_text(ui: AppPage) -> None:
    page = ui.page
    text = f"{TOKEN} markup {XSS}"
    note = _add(page, text, ward="<b>ward</b>", author="<i>x</i>")
    hits = _search(page, f"{TOKEN} markup", mode="keyword")
    assert hits[0] == note
    shown = page.text_content(f'#results > li[data-id="{note}"] .note-text')
    assert shown == text
    assert XSS in page.inner_text("#results")  # visible, literally
    assert XSS in page.inner_text("#recent")
    assert "ward <b>ward</b>" in page.inner_text("#results")
    assert page.evaluate("() => window.__pwned") is None
    assert page.query_selector_all("#app img, #app script, #app b, #app i") == []


def test_a_second_tab_opens_the_same_notes_read_write(ui: AppPage, open_app: Any, web_url: str) -> None:
    """Every tab is a full app: a second tab on the same notes becomes ready, can search and write, and says
    so (two tabs open). tests/browser/test_tabs.py covers the two tabs writing and following each other."""
    second = open_app(boot=False)
    _open(second.page, f"{web_url}?test&index={ui.index}")  # type: ignore[attr-defined]
    page = second.page
    assert "read-only" not in (page.text_content("#notice") or "")
    assert page.is_enabled("#note-add")
    assert _search(page, TOKEN, mode="keyword") != []
    assert page.text_content("#stat-access").startswith("read-write")
    assert page.text_content('[data-testid="tab-status"]').startswith("read-write")


def test_every_request_stays_on_the_origin(ui: AppPage, request_log: list[str], web_url: str) -> None:
    origin = urlsplit(web_url)
    # The quota test of test_idb_store.py uses localhost:PORT (same server, a second origin); nothing else.
    allowed = {(origin.scheme, origin.netloc), (origin.scheme, f"localhost:{origin.port}")}
    seen = [url.removeprefix("blob:") for url in request_log]
    assert (
        any(url.endswith("/models/minilm/vocab.txt") for url in seen)
        or ui.page.get_attribute("html", "data-embedder") == "hashing"
    ), "the request log missed the model download"
    assert (
        any(url.endswith("/ort-wasm-simd-threaded.wasm") for url in seen)
        or ui.page.get_attribute("html", "data-embedder") == "hashing"
    )
    foreign = [url for url in seen if urlsplit(url)[:2] not in allowed]
    assert foreign == []
    assert json.loads(json.dumps(ui.page.evaluate("() => window.__pwned ?? null"))) is None
