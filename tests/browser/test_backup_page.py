"""Backup and restore through the real page: notes added in the UI, one click downloads a .clinvec bundle
(Playwright's download event), a fresh index restores it item for item, and ``python -m pyapp import`` on
CPython reads the very same file. Restoring over existing notes asks first; an altered file changes nothing.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import BOOT_TIMEOUT_MS, AppPage

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TAG = uuid.uuid4().hex[:6]
NOTES = [
    ("Dyspnoea after a long-haul flight; D-dimer raised, CT angiogram shows a segmental PE.", "ED", "2023"),
    ("Postoperative day 2 after hip replacement: mobilising, pain controlled, wound clean.", "Ortho", "2022"),
    ("Ärztlicher Befund: Fieber 39,2 °C, CRP 180 mg/l <b>not html</b> — Verdacht auf Pneumonie.", "ICU", "2024"),
]
DUMP = """
import __main__
index = __main__._APP['index']
result = {"manifest": index.manifest, "items": []}
async for batch in index.iter_items():
    for it in batch:
        raw = __import__('array').array('f', it.vector).tobytes().hex()
        result["items"].append([it.id, it.metadata, it.text, raw])
"""


def _open(app: AppPage, index: str) -> None:
    app.page.goto(f"{app.base_url}?test&index={index}")
    app.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert app.page.get_attribute("html", "data-state") == "ready", app.page.text_content("#error")


def _act(page: Any, action: Any) -> None:
    """Do a UI action and wait (on selectors: the CSP forbids eval) until the app finished it."""
    before = int(page.get_attribute("html", "data-ops") or 0)
    action()
    page.wait_for_selector(f'html[data-ops="{before + 1}"]:not([data-busy])', state="attached", timeout=120_000)


def _error(page: Any) -> str:
    box = page.query_selector("#app-error")
    return "" if box is None or box.is_hidden() else (box.text_content() or "")


@pytest.fixture(scope="module")
def pages(browser_context: Any, web_url: str) -> Any:
    opened = [AppPage(browser_context.new_page(), web_url) for _ in range(2)]
    yield opened
    for app in opened:
        app.close()


def _dump(app: AppPage) -> dict[str, Any]:
    return app.run(DUMP)


def test_export_restore_round_trip_and_cpython_import(pages, tmp_path):
    source, fresh = pages
    _open(source, f"backup-src-{TAG}")
    page = source.page
    for text, ward, year in NOTES:
        page.fill("#note-text", text)
        page.fill("#note-ward", ward)
        page.fill("#note-year", year)
        _act(page, lambda: page.click("#note-add"))
        assert not _error(page), _error(page)
    want = _dump(source)
    assert len(want["items"]) == len(NOTES)

    with page.expect_download() as info:
        _act(page, lambda: page.click('[data-testid="export"]'))
    download = info.value
    location = page.get_attribute("html", "data-index")
    assert re.fullmatch(re.escape(location) + r"-\d{4}-\d{2}-\d{2}\.clinvec", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert gzip.decompress(saved.read_bytes())[:8] == b"CLINVECB"
    assert "3 items" in (page.text_content("#backup-status") or "")

    # a fresh index in another tab restores it: every item exactly, model identity included
    _open(fresh, f"backup-fresh-{TAG}")
    dialogs: list[str] = []
    fresh.page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    _act(fresh.page, lambda: fresh.page.set_input_files('[data-testid="restore-file"]', str(saved)))
    assert not _error(fresh.page), _error(fresh.page)
    assert dialogs == []  # nothing here to overwrite: no question asked
    got = _dump(fresh)
    assert got["items"] == want["items"]
    assert got["manifest"]["embedder"] == want["manifest"]["embedder"]
    assert "now holds 3" in (fresh.page.text_content("#backup-status") or "")

    # CPython reads the page's file: the same items, bit for bit
    target = tmp_path / "server-copy"
    proc = subprocess.run(
        [sys.executable, "-m", "pyapp", "-q", "import", str(target), str(saved), "--create"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "pyapp", "-q", "list", str(target), "--with-vector"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    from array import array

    server = [[r["id"], r["metadata"], r["text"], array("f", r["vector"]).tobytes().hex()] for r in rows]
    assert server == want["items"]


def test_restore_over_notes_asks_first_and_altered_files_change_nothing(pages, tmp_path):
    source, _ = pages
    page = source.page  # the index of the test above: 3 notes
    before = _dump(source)
    with page.expect_download() as info:
        _act(page, lambda: page.click('[data-testid="export"]'))
    saved = tmp_path / "same.clinvec"
    info.value.save_as(saved)

    answers = iter([False, True])
    dialogs: list[str] = []
    handler = lambda d: (dialogs.append(d.message), d.accept() if next(answers) else d.dismiss())  # noqa: E731
    page.on("dialog", handler)
    _act(page, lambda: page.set_input_files('[data-testid="restore-file"]', str(saved)))
    assert "3 will REPLACE" in dialogs[0] and "cancelled" in (page.text_content("#backup-status") or "")
    _act(page, lambda: page.set_input_files('[data-testid="restore-file"]', str(saved)))
    assert len(dialogs) == 2 and not _error(page)
    assert _dump(source) == before  # replaced by identical versions: same items, same order

    raw = bytearray(gzip.decompress(saved.read_bytes()))
    raw[raw.index(b"Dyspnoea")] = ord("d")
    altered = tmp_path / "altered.clinvec"
    altered.write_bytes(gzip.compress(bytes(raw)))
    _act(page, lambda: page.set_input_files('[data-testid="restore-file"]', str(altered)))
    assert "sha256" in _error(page) and len(dialogs) == 2  # refused before any question
    assert "Nothing was restored" in (page.text_content("#backup-status") or "")
    page.remove_listener("dialog", handler)
    assert _dump(source) == before
