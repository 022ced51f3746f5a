"""Files into the notes page, driven like a user in real Chromium: the file picker with every type (a .txt, a
.md, a .jsonl with and without vectors, a .csv through the column-mapping preview, a PDF made by the test and
read by the vendored pdfjs), a folder pick, a drop of files built in the page, a bad JSONL line reported by its
number while the other files go in, Cancel, and searches that find what was imported (a PDF's text too).

The page runs with ``?model=models/none/`` (the hashing fallback: seconds, not minutes) except in the one
``slow`` test, which imports a few hundred short notes with the real MiniLM and prints the rate in notes/s.
One tab per module (its own IndexedDB index): booting costs ~10 s of CPython start-up on the 2-core VM.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_helpers import BOOT_TIMEOUT_MS, AppPage

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from pdf_maker import minimal_pdf  # noqa: E402 - a PDF neither pypdf nor pdfjs wrote

TAG = uuid.uuid4().hex[:6]
HASHING_DIMS = 256
SERVICE = "import __main__\nsvc = __main__._APP['service']\n"
COUNT = '[data-testid="note-count"]'


def _open(app: AppPage, query: str) -> None:
    app.page.goto(f"{app.base_url}?test&{query}")
    app.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=BOOT_TIMEOUT_MS)
    assert app.page.get_attribute("html", "data-state") == "ready", app.page.text_content("#error")


@pytest.fixture(scope="module")
def tab(browser_context: Any, web_url: str) -> Iterator[AppPage]:
    app = AppPage(browser_context.new_page(), web_url)
    _open(app, f"index=import-{TAG}&model=models/none/")
    assert app.page.get_attribute("html", "data-embedder") == "hashing"
    yield app
    _drop_index(app)


def _drop_index(app: AppPage) -> None:
    try:
        app.run(
            "from pyapp import LocalIndex\nimport __main__\nawait __main__._APP['index'].close()\n"
            "await LocalIndex.drop(location)\nresult = True",
            location=app.page.get_attribute("html", "data-index"),
        )
    finally:
        app.close()


def _ops(page: Any) -> int:
    return int(page.get_attribute("html", "data-ops") or 0)


def _wait_done(page: Any, before: int, timeout_ms: int = 120_000) -> None:
    """Wait (on selectors: the CSP forbids eval) until the page finished one more operation and is idle."""
    page.wait_for_selector(f'html[data-ops="{before + 1}"]:not([data-busy])', state="attached", timeout=timeout_ms)


def _payload(name: str, data: bytes | str, mime: str = "application/octet-stream") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data.encode() if isinstance(data, str) else data}


def _count(page: Any) -> int:
    text = (page.text_content(COUNT) or "").strip()
    assert text.isdigit(), text
    return int(text)


def _errors(page: Any) -> list[tuple[str, str | None, str]]:
    rows = page.query_selector_all('[data-testid="import-errors"] li')
    return [(li.get_attribute("data-file"), li.get_attribute("data-line"), li.text_content()) for li in rows]


def _search(page: Any, text: str, mode: str = "keyword") -> list[str]:
    page.fill('[data-testid="search"]', "")  # else changing the mode searches by itself
    page.select_option('[data-testid="search-mode"]', mode)
    before = _ops(page)
    page.fill('[data-testid="search"]', text)
    page.click('[data-testid="search-submit"]')
    _wait_done(page, before)
    return [li.get_attribute("data-note-id") for li in page.query_selector_all('[data-testid="result"]')]


def _note(app: AppPage, note_id: str) -> Any:
    return app.run(SERVICE + "result = await svc.get(note_id)", note_id=note_id)


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_picker_imports_every_type_with_the_csv_mapping_and_finds_the_pdf(tab: AppPage) -> None:
    page = tab.page
    word = f"quetiapine{TAG}"
    vector = [0.0] * HASHING_DIMS
    vector[7] = 1.0
    files = [
        _payload("admission.txt", f"Admitted with delirium; started {word} at night.\n", "text/plain"),
        _payload("round.md", "# Ward round\n\n- Afebrile, **mobilising**.\n", "text/markdown"),
        _payload(
            "batch.jsonl",
            _jsonl(
                [
                    {"id": f"j1-{TAG}", "text": "Hypokalaemia corrected orally.", "metadata": {"ward": "Renal"}},
                    {"id": f"j2-{TAG}", "text": "Imported with its own vector.", "vector": vector},
                ]
            ),
        ),
        _payload("clinic.csv", f"mrn,unit,body\nc1-{TAG},Cardio,Atrial flutter ablated\nc2-{TAG},Cardio,Sinus\n"),
        _payload("labs.pdf", minimal_pdf([f"Ferritin 9 ug/L pdfmarker{TAG}", "Iron infusion arranged"])),
    ]
    start_count = _count(page)
    before = _ops(page)
    page.set_input_files('[data-testid="import-file"]', files=files)
    # The CSV stops the run for its column mapping: a preview of its rows, the suggestion preselected.
    page.wait_for_selector('[data-testid="csv-mapping"]:not([hidden])', timeout=60_000)
    assert page.get_attribute("html", "data-busy") == "true"
    table = page.text_content('[data-testid="csv-mapping"] table') or ""
    assert "Atrial flutter ablated" in table and "unit" in table
    assert page.input_value('[data-testid="csv-text"]') == "body"
    page.select_option('[data-testid="csv-id"]', "mrn")
    page.click('[data-testid="csv-confirm"]')
    _wait_done(page, before)

    assert _errors(page) == []
    assert _count(page) == start_count + 7  # txt, md, 2 JSONL records, 2 CSV rows, PDF
    summary = page.text_content('[data-testid="import-summary"]') or ""
    assert "Imported 5 files (7 notes)" in summary and "notes/s" in summary
    assert page.is_hidden('[data-testid="import-progress"]')

    assert _note(tab, "admission.txt")["text"] == f"Admitted with delirium; started {word} at night.\n"
    assert _note(tab, "round.md")["text"].startswith("# Ward round")
    assert _note(tab, f"c1-{TAG}")["metadata"] == {"unit": "Cardio"}
    assert _note(tab, f"j1-{TAG}")["metadata"] == {"ward": "Renal"}
    stored = tab.run(
        "import __main__\nit = await __main__._APP['index'].get(i)\nresult = [it.vector[7], it.metadata]", i=f"j2-{TAG}"
    )
    assert stored[0] == pytest.approx(1.0) and "_doc" not in stored[1]  # the given vector, imported as is
    pdf = _note(tab, "labs.pdf")["text"]
    assert f"pdfmarker{TAG}" in pdf and "Iron infusion arranged" in pdf
    # refreshed without a reload: newest notes and the ward list
    assert "Renal" in (page.text_content("#search-ward") or "")
    assert page.query_selector('#recent li[data-id="labs.pdf"]') is not None
    # a search finds the PDF's text (its result is named by the file) and the text file's word
    assert _search(page, f"pdfmarker{TAG}") == ["labs.pdf"]
    assert _search(page, word, mode="hybrid")[0] == "admission.txt"
    passage = page.text_content('[data-testid="result"] [data-testid="passage"]') or ""
    assert word in passage


def test_drop_reports_a_bad_jsonl_line_by_number_and_imports_the_rest(tab: AppPage) -> None:
    page = tab.page
    good = json.dumps({"id": f"bad-1-{TAG}", "text": "would be fine alone"})
    files = {
        f"ok-{TAG}.txt": f"Dropped note {TAG}: pressure ulcer grade 2.",
        f"broken-{TAG}.jsonl": f'{good}\n{{"id": "x", "text": \n{good}\n',
        f"also-{TAG}.md": "Second dropped note.",
        "picture.png": "not a note",
    }
    start_count = _count(page)
    before = _ops(page)
    page.evaluate(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, text] of Object.entries(files)) dt.items.add(new File([text], name));
            const init = { dataTransfer: dt, bubbles: true, cancelable: true };
            document.body.dispatchEvent(new DragEvent("dragover", init));
            document.body.dispatchEvent(new DragEvent("drop", init));
        }""",
        files,
    )
    _wait_done(page, before)
    errors = _errors(page)
    assert [(name, line) for name, line, _ in errors] == [("picture.png", None), (f"broken-{TAG}.jsonl", "2")]
    assert f"broken-{TAG}.jsonl line 2:" in errors[1][2]
    assert page.is_visible('[data-testid="import-errors"]')
    assert _count(page) == start_count + 2  # the two good files; nothing of the broken one
    assert _note(tab, f"bad-1-{TAG}") is None
    assert _note(tab, f"ok-{TAG}.txt")["text"] == f"Dropped note {TAG}: pressure ulcer grade 2."
    assert "2 files not imported" in (page.text_content('[data-testid="import-summary"]') or "")


def test_folder_pick_names_files_inside_the_folder(tab: AppPage, tmp_path: Path) -> None:
    page = tab.page
    folder = tmp_path / f"ward-{TAG}"
    (folder / "sub").mkdir(parents=True)
    (folder / "handover.txt").write_text(f"Handover {TAG}: sats stable.")
    (folder / "sub" / "plan.md").write_text(f"Plan {TAG}: discharge tomorrow.")
    (folder / ".hidden.txt").write_text("editor state")
    (folder / "scan.png").write_bytes(b"\x89PNG")
    start_count = _count(page)
    before = _ops(page)
    page.set_input_files('[data-testid="import-folder"]', str(folder))
    _wait_done(page, before)
    assert _errors(page) == []
    assert _count(page) == start_count + 2
    assert _note(tab, "handover.txt")["text"] == f"Handover {TAG}: sats stable."
    assert _note(tab, "sub/plan.md")["text"] == f"Plan {TAG}: discharge tomorrow."
    assert "2 files of other types skipped" in (page.text_content('[data-testid="import-summary"]') or "")


def test_cancel_stops_after_the_current_file_which_goes_in_whole(tab: AppPage) -> None:
    page = tab.page
    many = 1500
    big = _jsonl([{"id": f"big-{TAG}-{i}", "text": f"Observation {i}: obs within range."} for i in range(many)])
    files = [
        _payload(f"big-{TAG}.jsonl", big),
        _payload(f"later-{TAG}.csv", "id,text\nl1,later\n"),
        _payload(f"last-{TAG}.txt", "never imported"),
    ]
    start_count = _count(page)
    before = _ops(page)
    page.set_input_files('[data-testid="import-file"]', files=files)
    page.wait_for_selector('[data-testid="import-progress"]:visible', timeout=30_000)
    status = page.text_content('[data-testid="import-status"]') or ""
    assert f"of 3: big-{TAG}.jsonl" in status
    started = time.perf_counter()
    page.evaluate("() => document.title")  # the page answers while the worker embeds: it never freezes
    assert time.perf_counter() - started < 1.0
    page.click('[data-testid="import-cancel"]')
    _wait_done(page, before)
    assert _count(page) == start_count + many  # the file under way finished, whole
    assert _note(tab, "l1") is None and _note(tab, f"last-{TAG}.txt") is None
    summary = page.text_content('[data-testid="import-summary"]') or ""
    assert "Cancelled" in summary or "not imported (cancelled)" in (page.text_content("#import-errors") or "")
    log = page.evaluate("() => window.clinvecImport")
    assert log["cancelled"] is True and log["files"] == 1 and log["notes"] == many


def test_another_tab_follows_an_import(tab: AppPage, browser_context: Any, web_url: str) -> None:
    other = AppPage(browser_context.new_page(), web_url)
    try:
        _open(other, f"index=import-{TAG}&model=models/none/")
        assert _count(other.page) == _count(tab.page)
        before = _ops(tab.page)
        tab.page.set_input_files(
            '[data-testid="import-file"]', files=[_payload(f"shared-{TAG}.txt", f"Seen by both tabs {TAG}.")]
        )
        _wait_done(tab.page, before)
        want = _count(tab.page)
        deadline = time.monotonic() + 5
        while _count(other.page) != want:
            assert time.monotonic() < deadline, f"the other tab shows {_count(other.page)} notes, expected {want}"
            time.sleep(0.05)
        assert other.page.query_selector(f'#recent li[data-id="shared-{TAG}.txt"]') is not None
    finally:
        try:  # release the index here, so the module's teardown may drop it
            other.run("import __main__\nawait __main__._APP['index'].close()\nresult = True")
        finally:
            other.close()


def test_a_page_with_the_hashing_fallback_made_no_foreign_request(
    tab: AppPage, request_log: list[str], web_url: str
) -> None:
    origin = urlsplit(web_url)
    allowed = {(origin.scheme, origin.netloc), (origin.scheme, f"localhost:{origin.port}")}
    seen = [url.removeprefix("blob:") for url in request_log]
    assert any(url.endswith("/pdf.worker.min.mjs") for url in seen), "pdfjs's worker came from the vendored path"
    assert [url for url in seen if urlsplit(url)[:2] not in allowed] == []


@pytest.mark.slow
def test_real_minilm_import_rate_and_semantic_search(browser_context: Any, web_url: str) -> None:
    """A few hundred short notes (one JSONL file) and a PDF with the packaged MiniLM; prints notes/s."""
    if not (ROOT / "web" / "models" / "minilm" / "manifest.json").is_file():
        pytest.skip("no packaged MiniLM bundle under web/models/minilm (scripts/model.sh)")
    app = AppPage(browser_context.new_page(), web_url)
    try:
        _open(app, f"index=import-minilm-{TAG}")
        assert app.page.get_attribute("html", "data-embedder") == "onnx"
        page = app.page
        count = 300
        conditions = ["chest pain", "fall at home", "fever and cough", "low sodium", "new rash", "headache"]
        notes = [
            {"id": f"m{i}", "text": f"Day {i % 9 + 1} review: {conditions[i % len(conditions)]}, plan reviewed."}
            for i in range(count)
        ]
        pdf = minimal_pdf(["Discharge letter", "Diagnosis: community-acquired pneumonia treated with amoxicillin."])
        before = _ops(page)
        started = time.perf_counter()
        page.set_input_files(
            '[data-testid="import-file"]', files=[_payload("notes.jsonl", _jsonl(notes)), _payload("letter.pdf", pdf)]
        )
        _wait_done(page, before, timeout_ms=600_000)
        wall = time.perf_counter() - started
        assert _errors(page) == []
        info = page.evaluate("() => window.clinvecImport")
        assert info["notes"] == count + 1
        per_file = page.evaluate("() => window.clinvecImportLog")
        jsonl_ms = next(f["ms"] for f in per_file if f["name"] == "notes.jsonl")
        print(
            f"\nMiniLM import in the page: {count} short notes in {jsonl_ms / 1000:.1f} s = "
            f"{1000 * count / jsonl_ms:.1f} notes/s (whole run {info['rate']:.1f} notes/s, wall {wall:.1f} s)"
        )
        assert "letter.pdf" in _search(page, "lung infection treated with antibiotics", mode="semantic")[:3]
        print(json.dumps({"notes": count, "ms": jsonl_ms, "notes_per_s": round(1000 * count / jsonl_ms, 1)}))
    finally:
        _drop_index(app)
