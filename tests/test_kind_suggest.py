"""Suggesting a note's type from the types given to other notes (NotesService.suggest_kind, KindSuggester)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

from pyapp import LocalIndex
from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import InvalidInput
from pyapp.labels import LabelModel
from pyapp.labels.notes import note_vectors, text_vector
from pyapp.notes import NotesService, clean_metadata

EMBEDDER = HashingEmbedder(64)
NOTES = [
    ("Discharge summary: admitted with pneumonia, treated with antibiotics, discharged home.", "discharge"),
    ("Discharge summary: heart failure admission, diuresed, discharged on furosemide.", "discharge"),
    ("Radiology report: chest x-ray shows right lower lobe consolidation.", "radiology"),
    ("Radiology report: CT head without contrast, no acute haemorrhage.", "radiology"),
]
DRAFT = "Radiology report: x-ray of the left wrist, no fracture."


@pytest.fixture()
async def notes() -> Any:
    location = f"memory://kinds-{uuid.uuid4().hex[:10]}"
    service = await NotesService.open(location, EMBEDDER)
    yield service
    await service.close()
    await LocalIndex.drop(location)


async def add_all(service: NotesService, rows: list[tuple[str, str]]) -> None:
    for text, kind in rows:
        await service.add({"text": text, "metadata": {"kind": f"  {kind} ", "ward": "W1"}})


def test_kind_is_cleaned_like_the_other_fields() -> None:
    assert clean_metadata({"kind": "  discharge  "}) == {"kind": "discharge"}
    assert clean_metadata({"kind": "   "}) == {}
    assert clean_metadata({"kind": "x" * 500})["kind"] == "x" * 200
    with pytest.raises(InvalidInput):
        clean_metadata({"kind": ["discharge"]})


async def test_needs_two_kinds_with_two_notes_each(notes: NotesService) -> None:
    await add_all(notes, NOTES[:3])  # discharge x2, radiology x1
    out = await notes.suggest_kind(DRAFT)
    assert out["ready"] is False
    assert out["kinds"] == {"discharge": 2, "radiology": 1}
    assert "at least 2 notes each of at least 2 types" in out["needs"]
    assert "label" not in out


async def test_suggestion_equals_label_model_on_the_same_vectors(notes: NotesService) -> None:
    await add_all(notes, NOTES)
    out = await notes.suggest_kind(DRAFT)
    assert out["ready"] and out["needs"] is None and out["refit"] is True and out["backend"] == "numpy"
    data = (await note_vectors(notes.index, "kind")).labelled()
    model = LabelModel.fit(data.vectors, data.labels, backend="numpy")
    probs = model.predict_proba([await text_vector(notes.index, DRAFT)])[0]
    best = int(np.argmax(probs))
    assert out["label"] == model.labels[best] == "radiology"
    assert out["probability"] == pytest.approx(probs[best], abs=1e-9)
    assert [a["label"] for a in out["alternatives"]] == ["radiology", "discharge"]
    assert sum(a["probability"] for a in out["alternatives"]) == pytest.approx(1.0)
    assert await notes.kinds() == ["discharge", "radiology"]


async def test_refits_only_when_the_notes_change(notes: NotesService) -> None:
    await add_all(notes, NOTES)
    first = await notes.suggest_kind(DRAFT)
    again = await notes.suggest_kind("Discharge summary: discharged home today.")
    assert (first["refit"], again["refit"]) == (True, False)
    assert notes._kinds.fits == 1
    added = await notes.add({"text": "Radiology report: MRI knee.", "metadata": {"kind": "radiology"}})
    assert (await notes.suggest_kind(DRAFT))["refit"] is True
    await notes.add({"id": added["id"], "text": "Radiology report: MRI knee.", "metadata": {"kind": "discharge"}})
    assert (await notes.suggest_kind(DRAFT))["refit"] is True  # relabelled
    assert notes._kinds.fits == 3
    await notes.add({"text": "An unlabelled note.", "metadata": {}})
    assert (await notes.suggest_kind(DRAFT))["refit"] is False  # no new labelled data


async def test_a_kind_with_one_note_is_not_learnt(notes: NotesService) -> None:
    await add_all(notes, [*NOTES, ("Operative note: laparoscopic appendicectomy.", "operative")])
    out = await notes.suggest_kind(DRAFT)
    assert out["kinds"]["operative"] == 1
    assert {a["label"] for a in out["alternatives"]} == {"discharge", "radiology"}


async def test_empty_draft_is_refused(notes: NotesService) -> None:
    with pytest.raises(InvalidInput):
        await notes.suggest_kind("   ")
