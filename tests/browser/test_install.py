"""Installable and usable by everyone: manifest and icons (Chromium's installability check), the storage
panel (persistence asked and shown, usage and quota, what eviction means), keyboard-only use, axe-core on the
ready and results pages in light and dark mode, and screenshots of each state.

Screenshots go to a temporary folder; with ``CLINVEC_SCREENSHOTS=docs/screenshots`` they are written there
(the reviewed ones are committed).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import BOOT_TIMEOUT_MS

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import web_icons  # noqa: E402 - after making the repository root importable

SEARCH = '[data-testid="search"], #search-text'


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw RGBA rows of a PNG written by ``web_icons.png`` (filter 0 rows only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 6)
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    rows = [raw[r * stride + 1 : (r + 1) * stride] for r in range(height)]
    assert all(raw[r * stride] == 0 for r in range(height))
    return width, height, rows


@pytest.mark.parametrize("size", web_icons.SIZES)
def test_icons_are_valid_pngs_with_a_safe_zone_for_maskable(size: int) -> None:
    """``any``: transparent corners, opaque centre. ``maskable``: opaque everywhere, and the glyph (white)
    stays inside the central safe circle (radius 40 % of the size), so any launcher mask keeps it whole."""
    width, height, rows = _png_pixels(web_icons.png(web_icons.icon(size, "any")))
    assert (width, height) == (size, size)
    assert rows[0][3] == 0 and rows[size // 2][size // 2 * 4 + 3] == 255
    width, height, rows = _png_pixels(web_icons.png(web_icons.icon(size, "maskable")))
    white_outside = 0
    for y, row in enumerate(rows):
        for x in range(size):
            r, g, b, a = row[x * 4 : x * 4 + 4]
            assert a == 255
            dist = ((x + 0.5 - size / 2) ** 2 + (y + 0.5 - size / 2) ** 2) ** 0.5
            if dist > 0.4 * size and (r, g, b) != web_icons.BACKGROUND:
                white_outside += 1
    assert white_outside == 0
    with pytest.raises(ValueError):
        web_icons.icon(size, "monochrome")


@pytest.mark.browser
def test_manifest_icons_and_no_installability_errors(app: Any, browser_context: Any) -> None:
    page = app.page
    cdp = browser_context.new_cdp_session(page)
    try:
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        manifest = cdp.send("Page.getAppManifest")
    finally:
        cdp.detach()
    assert errors == [], errors
    assert manifest["errors"] == []
    parsed = json.loads(manifest["data"])
    assert parsed["display"] == "standalone" and parsed["start_url"] == "./"
    icons = {(i["sizes"], i["purpose"]): i["src"] for i in parsed["icons"]}
    assert set(icons) == {(f"{s}x{s}", p) for s in web_icons.SIZES for p in web_icons.PURPOSES}
    for (sizes, _purpose), src in icons.items():
        res = page.request.get(app.base_url + src)
        assert res.ok and res.headers["content-type"] == "image/png"
        assert _png_pixels(res.body())[:2] == tuple(int(n) for n in sizes.split("x"))
    manifest_type = page.request.get(app.base_url + "manifest.webmanifest").headers["content-type"]
    assert manifest_type == "application/manifest+json"


@pytest.mark.browser
def test_storage_panel_shows_persistence_usage_quota_and_eviction_advice(app: Any) -> None:
    page = app.page
    page.wait_for_selector("#storage-usage[data-usage-bytes]", state="attached", timeout=30_000)
    granted = page.evaluate("() => navigator.storage.persisted()")
    # The panel refreshes every 10 s and after each operation: an earlier test in this shared page may have been
    # granted persistence after the panel last looked, so wait for the panel to catch up (bounded).
    for _ in range(30):
        if page.get_attribute("#storage-persisted", "data-persisted") == str(granted).lower():
            break
        page.wait_for_timeout(500)
    shown = page.get_attribute("#storage-persisted", "data-persisted")
    assert shown == str(granted).lower()
    text = page.text_content("#storage-persisted")
    assert text.startswith("Persistent" if granted else "Not persistent")
    assert page.is_visible("#storage-persist") is (not granted)  # a way to ask again when refused
    assert page.get_attribute("html", "data-persisted") == str(granted).lower()  # the runtime facts agree
    quota = int(page.get_attribute("#storage-usage", "data-quota-bytes"))
    usage = int(page.get_attribute("#storage-usage", "data-usage-bytes"))
    estimate = page.evaluate("() => navigator.storage.estimate()")
    # Chromium's quota follows the disk's free space, so it moves a little between two calls.
    assert estimate["quota"] > 0 and abs(quota - estimate["quota"]) <= 0.01 * estimate["quota"]
    assert 0 <= usage <= quota
    assert " of " in page.text_content("#storage-usage") and "available to this site" in page.text_content(
        "#storage-usage"
    )
    note = page.text_content("#storage-note")
    assert "evict" in note and "backup" in note.lower()
    # Usage follows the data: 4 MB more in IndexedDB shows up after the next refresh.
    app.run(
        "from pyapp import LocalIndex\n"
        "idx = await LocalIndex.create('storage-panel', dims=256, exist_ok=True)\n"
        "import random\nrnd = random.Random(7)\n"  # incompressible: IndexedDB compresses what it stores
        "await idx.upsert_many([{'id': f'n{i}', 'vector': [rnd.uniform(-1, 1) for _ in range(256)]}"
        " for i in range(4000)])\n"
        "await idx.close()\n"
    )
    page.evaluate("() => document.documentElement.setAttribute('data-ops', String(Date.now()))")
    for _ in range(60):
        if int(page.get_attribute("#storage-usage", "data-usage-bytes")) > usage + 2_000_000:
            break
        page.wait_for_timeout(500)
    assert int(page.get_attribute("#storage-usage", "data-usage-bytes")) > usage + 2_000_000
    app.run("from pyapp import LocalIndex\nawait LocalIndex.drop('storage-panel')\nresult = True")


def _axe(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is (WCAG 2.x A/AA rules and best practice).

    axe is injected over the DevTools protocol (``evaluate``), which the page's CSP does not govern: it is a
    test-time npm package, never served by the app."""
    if not AXE.is_file():
        pytest.skip("axe-core missing: cd web && npm ci")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;0")
    result = page.evaluate("async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))")
    violations = json.loads(result)["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def _shot(page: Any, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CLINVEC_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _search(page: Any, text: str) -> None:
    page.fill(SEARCH, text)
    page.press(SEARCH, "Enter")
    page.wait_for_selector("html:not([data-busy])", state="attached", timeout=60_000)
    page.wait_for_selector("#results li, [data-testid='result']", timeout=60_000)


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violations_ready_and_with_results(
    open_app: Any, index_name: str, scheme: str, tmp_path: Path
) -> None:
    app = open_app(boot=False)
    page = app.page
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{app.base_url}?test&index={index_name}")
    if scheme == "light":
        _shot(page, "loading", tmp_path)
    page.wait_for_selector('html[data-state="ready"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches") is (scheme == "dark")
    background = page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
    assert background == ("rgb(20, 23, 28)" if scheme == "dark" else "rgb(255, 255, 255)")
    assert _axe(page) == []
    _shot(page, f"ready-{scheme}", tmp_path)
    page.fill("#note-text, [data-testid='note-text']", "Chest pain radiating to the left arm; troponin raised.")
    page.click("#note-add, [data-testid='note-add']")
    page.wait_for_selector("html:not([data-busy])", state="attached", timeout=60_000)
    _search(page, "chest pain")
    assert _axe(page) == []
    _shot(page, f"results-{scheme}", tmp_path)


@pytest.mark.browser
def test_keyboard_only_search_with_visible_focus(open_app: Any, index_name: str) -> None:
    app = open_app(boot=False)
    page = app.page
    page.goto(f"{app.base_url}?test&index={index_name}")
    page.wait_for_selector('html[data-state="ready"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    assert page.is_visible(".skip-link")  # shown when focused
    page.keyboard.press("Enter")  # skip to the notes
    assert page.evaluate("() => document.activeElement.id") == "app"
    seen = []
    for _ in range(40):  # Tab through the app: every stop shows a focus ring
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const el = document.activeElement; const s = getComputedStyle(el);
            return {id: el.id, tag: el.tagName, outline: s.outlineStyle, width: s.outlineWidth}; }""")
        seen.append(info["id"] or info["tag"])
        assert info["outline"] != "none" and info["width"] != "0px", info
        if page.evaluate(f"() => document.activeElement.matches({json.dumps(SEARCH)})"):
            break
    else:
        raise AssertionError(f"the search box is not reachable with Tab: {seen}")
    page.keyboard.type("troponin")
    page.keyboard.press("Escape")  # Escape clears a search box
    assert page.input_value(SEARCH) == ""
    page.keyboard.type("troponin")
    page.keyboard.press("Enter")  # Enter searches
    page.wait_for_selector("html:not([data-busy])", state="attached", timeout=60_000)
    page.wait_for_selector("#search-summary:not(:empty)", state="attached", timeout=60_000)
    assert page.evaluate("() => document.documentElement.dataset.state") == "ready"


@pytest.mark.browser
def test_error_state_screenshot(open_app: Any, tmp_path: Path) -> None:
    app = open_app(boot=False)
    page = app.page
    page.route("**/vendor/app/pyapp.zip", lambda route: route.fulfill(status=404, body="gone"))
    page.goto(app.base_url + "?test")
    page.wait_for_selector('html[data-state="error"]', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert page.is_visible("#error") and page.is_hidden("#progress")
    assert _axe(page) == []
    _shot(page, "error", tmp_path)
