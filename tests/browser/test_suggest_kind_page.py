"""The add form's Type field and "Suggest type": the page's suggestion equals CPython's numpy LabelModel fitted on
the same note vectors, it says what it needs with too few labelled notes, and labels never become HTML.

Runs with ``?model=models/none/`` (the hashing embedder): fast, and the labelling path is the same as with MiniLM.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pytest
from browser_helpers import BOOT_TIMEOUT_MS, AppPage

from pyapp.labels import LabelModel

pytestmark = pytest.mark.browser

HTML_KIND = "<b>radiology</b>"
NOTES = [
    ("Discharge summary: admitted with pneumonia, treated with antibiotics, discharged home.", "discharge"),
    ("Discharge summary: heart failure admission, diuresed, discharged on furosemide.", "discharge"),
    ("Radiology report: chest x-ray shows right lower lobe consolidation.", HTML_KIND),
    ("Radiology report: CT head without contrast, no acute haemorrhage.", HTML_KIND),
]
DRAFT = "Radiology report: x-ray of the left wrist, no fracture."
VECTORS = """
import __main__
from pyapp.labels.notes import note_vectors, text_vector
idx = __main__._APP['service'].index
data = (await note_vectors(idx, 'kind')).labelled()
result = {"vectors": data.vectors, "labels": data.labels, "draft": await text_vector(idx, draft)}
"""


def wait_idle(tab: AppPage, ops: int) -> None:
    deadline = time.monotonic() + 30
    while int(tab.page.get_attribute("html", "data-ops") or 0) <= ops or tab.page.get_attribute("html", "data-busy"):
        assert time.monotonic() < deadline, tab.page.text_content("#app-error")
        time.sleep(0.05)


def form_add(tab: AppPage, text: str, kind: str) -> None:
    ops = int(tab.page.get_attribute("html", "data-ops") or 0)
    tab.page.fill("#note-text", text)
    tab.page.fill('[data-testid="note-kind"]', kind)
    tab.page.click('[data-testid="note-add"]')
    wait_idle(tab, ops)


def ask(tab: AppPage, text: str) -> str:
    ops = int(tab.page.get_attribute("html", "data-ops") or 0)
    tab.page.fill("#note-text", text)
    tab.page.click('[data-testid="suggest-kind"]')
    wait_idle(tab, ops)
    return tab.page.text_content("#kind-answer") or ""


def test_suggest_type_matches_numpy_and_fills_the_field(browser_context: Any, web_url: str) -> None:
    tab = AppPage(browser_context.new_page(), web_url)
    try:
        tab.page.goto(f"{web_url}?test&index=test-{uuid.uuid4().hex[:12]}&model=models/none/")
        tab.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=BOOT_TIMEOUT_MS)
        assert tab.page.get_attribute("html", "data-state") == "ready", tab.page.text_content("#error")
        for text, kind in NOTES[:3]:
            form_add(tab, text, kind)
        assert "at least 2 notes each of at least 2 types" in ask(tab, DRAFT)
        assert tab.page.query_selector('[data-testid="kind-suggestion"]') is None
        form_add(tab, *NOTES[3])

        ask(tab, DRAFT)
        shown = tab.page.wait_for_selector('[data-testid="kind-suggestion"]')
        got = tab.run(VECTORS, draft=DRAFT)
        model = LabelModel.fit(got["vectors"], got["labels"], backend="numpy")
        probs = model.predict_proba([got["draft"]])[0]
        best = int(np.argmax(probs))
        assert shown.get_attribute("data-label") == model.labels[best] == HTML_KIND
        assert float(shown.get_attribute("data-probability")) == pytest.approx(probs[best], abs=1e-3)
        assert f"Suggested type: {HTML_KIND} ({round(100 * probs[best])} % sure)" in shown.text_content()
        assert tab.page.query_selector("#kind-answer b") is None  # the label stayed text
        alt = tab.page.query_selector('[data-testid="kind-alternative"]')
        assert alt is not None and alt.get_attribute("data-label") == "discharge"
        assert tab.page.get_attribute("#kind-answer", "data-refit") == "true"
        assert tab.page.get_attribute("#kind-answer", "data-backend") == "js"  # no numpy in the page
        ask(tab, DRAFT)  # nothing changed: the worker's model is reused
        assert tab.page.get_attribute("#kind-answer", "data-refit") == "false"

        tab.page.click('[data-testid="kind-suggestion"]')
        assert tab.page.input_value('[data-testid="note-kind"]') == HTML_KIND
        tab.page.focus('[data-testid="note-kind"]')
        tab.page.wait_for_function("document.querySelectorAll('#kind-list option').length === 2")
        values = tab.page.eval_on_selector_all("#kind-list option", "els => els.map(e => e.value)")
        assert sorted(values) == sorted(["discharge", HTML_KIND])
    finally:
        tab.close()
