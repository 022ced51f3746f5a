"""The page's file import rules (pyapp.notes_import) on CPython: memory store + HashingEmbedder, real files.

The Chromium tests (tests/browser/test_import_page.py) drive the same calls through the worker; here every
rule is checked where a failure is cheap to see: what each file type becomes, the CSV mapping, a bad line by
its number with nothing written, all-or-nothing across embedding groups, unchanged files, bad names.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pdf_maker import minimal_pdf

from pyapp import LocalIndex
from pyapp.embed.base import Progress
from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import ClinvecError, InvalidInput
from pyapp.files import SUFFIXES, FileError
from pyapp.notes import NotesService
from pyapp.notes_import import MAX_NOTE_CHARS, NotesImport

ROOT = Path(__file__).resolve().parents[1]
DIMS = 64


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting embedding passes; texts holding ``fail_on`` raise (a model error)."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(dims=DIMS)
        self.calls: list[int] = []
        self.fail_on = fail_on

    async def embed_raw(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        self.calls.append(len(texts))
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise InvalidInput("the model refused this text")
        return await super().embed_raw(texts, progress)


@pytest.fixture()
def location() -> str:
    return f"memory://import-{uuid.uuid4().hex[:10]}"


async def _open(location: str, embedder: HashingEmbedder | None = None) -> NotesService:
    return await NotesService.open(location, embedder or CountingEmbedder())


@pytest.fixture()
async def svc(location: str) -> Any:
    service = await _open(location)
    yield service
    await service.close()
    await LocalIndex.drop(location)


async def _state(service: NotesService) -> tuple[dict[str, int], list[str]]:
    return await service.counts(), sorted(n["id"] for n in await service.newest(200))


async def test_text_and_markdown_are_one_note_each_named_by_the_file(svc: NotesService) -> None:
    imp = NotesImport(svc)
    text = "\ufeffDischarge summary\r\n\nPatient admitted with chest pain; troponin negative.\n"
    staged = imp.stage(text.encode(), "discharge.txt")
    assert staged == {"name": "discharge.txt", "kind": "text", "bytes": len(text.encode()), "preview": None}
    out = await imp.commit()
    assert (out["name"], out["notes"], out["documents"], out["items"], out["note_count"]) == (
        "discharge.txt",
        1,
        1,
        0,
        1,
    )
    got = await svc.get("discharge.txt")
    assert got is not None and got["text"] == text[1:]  # BOM dropped, everything else byte-exact
    imp.stage(b"# Ward round\n\n- BP 120/80\n", "round.md")
    assert (await imp.commit())["kind"] == "markdown"
    assert (await svc.counts())["note_count"] == 2


async def test_jsonl_with_and_without_vectors(svc: NotesService) -> None:
    imp = NotesImport(svc)
    vector = [0.0] * DIMS
    vector[3] = 2.0
    lines = [
        {"id": "n1", "text": "Sepsis on the ward, lactate 4.1.", "metadata": {"ward": "ICU"}},
        {"text": "No id: named by its file and line."},
        {"id": "v1", "text": "Carries its own vector.", "vector": vector, "metadata": {"ward": "ED"}},
    ]
    imp.stage("\n".join(json.dumps(line) for line in lines).encode(), "batch.jsonl")
    out = await imp.commit()
    assert (out["notes"], out["documents"], out["items"]) == (3, 2, 1)
    assert {n["id"] for n in await svc.newest(10)} == {"n1", "batch.jsonl:2", "v1"}
    stored = await svc.index.get("v1")
    assert stored is not None and stored.vector[3] == pytest.approx(1.0)  # imported as is (normalised)
    assert await svc.wards() == ["ED", "ICU"]


async def test_bad_jsonl_line_is_named_and_nothing_of_the_file_is_written(svc: NotesService) -> None:
    imp = NotesImport(svc)
    imp.stage(b"one note\n", "keep.txt")
    await imp.commit()
    before = await _state(svc)
    good = json.dumps({"id": "a", "text": "fine"})
    imp.stage(f'{good}\n{good.replace(chr(34) + "a", chr(34) + "b")}\n{{"id": "c", "text": \n'.encode(), "bad.jsonl")
    with pytest.raises(FileError) as caught:
        await imp.commit()
    assert (caught.value.file, caught.value.line) == ("bad.jsonl", 3)
    assert "bad.jsonl line 3" in str(caught.value)
    assert await _state(svc) == before
    assert imp.staged is None  # a failed file is dropped; the next file stages afresh
    with pytest.raises(InvalidInput, match="no file is staged"):
        await imp.commit()


async def test_csv_preview_then_the_confirmed_mapping(svc: NotesService) -> None:
    imp = NotesImport(svc)
    csv = "mrn,ward,body,seen\n77,Cardio,Atrial fibrillation with rapid ventricular response,2024\n"
    csv += '78,Renal,"AKI stage 2, creatinine rising",2023\n'
    staged = imp.stage(csv.encode(), "clinic.csv")
    preview = staged["preview"]
    assert preview["columns"] == ["mrn", "ward", "body", "seen"]
    assert preview["rows"][0][0] == "77" and preview["more"] is False
    assert preview["mapping"]["text"] == "body"  # by its usual name
    mapping = {"id": "mrn", "text": "body", "vector": None, "metadata": None, "fields": ["ward"]}
    out = await imp.commit(mapping)
    assert (out["notes"], out["documents"]) == (2, 2)
    note = await svc.get("78")
    assert note is not None and note["text"] == "AKI stage 2, creatinine rising"
    assert note["metadata"] == {"ward": "Renal"}  # "seen" was not chosen: left out
    assert await svc.wards() == ["Cardio", "Renal"]


async def test_csv_mapping_errors_change_nothing(svc: NotesService) -> None:
    imp = NotesImport(svc)
    data = b"id,text\n1,hello there\n"
    before = await _state(svc)
    for mapping, message in [
        ({"text": "nope"}, "columns the file does not have"),
        ({"id": "id"}, "needs a text column"),
        ({"text": 3}, "name a column"),
        ("text", "is an object"),
    ]:
        imp.stage(data, "m.csv")
        with pytest.raises(FileError, match=message) as caught:
            await imp.commit(mapping)
        assert caught.value.file == "m.csv"
    assert await _state(svc) == before


async def test_pdf_from_page_texts_and_from_bytes(svc: NotesService) -> None:
    imp = NotesImport(svc)
    staged = imp.stage(None, "scan.pdf", pages=["Page one: anaemia.", "  Page two: iron given.  "])
    assert staged["kind"] == "pdf" and staged["bytes"] == 0
    await imp.commit()
    note = await svc.get("scan.pdf")
    assert note is not None and note["text"] == "Page one: anaemia.\n\nPage two: iron given."
    pytest.importorskip("pypdf")
    imp.stage(minimal_pdf(["Haemoglobin 82 g/L", "Transfused two units"]), "labs.pdf")
    await imp.commit()
    note = await svc.get("labs.pdf")
    assert note is not None and "Transfused two units" in note["text"]
    with pytest.raises(FileError, match="only for a PDF"):
        imp.stage(None, "notes.txt", pages=["x"])
    with pytest.raises(FileError, match="no text layer"):
        imp.stage(None, "blank.pdf", pages=["", "  "])
        await imp.commit()


async def test_documents_are_embedded_in_groups_with_progress_in_notes(location: str) -> None:
    embedder = CountingEmbedder()
    svc = await _open(location, embedder)
    try:
        imp = NotesImport(svc, group=4)
        lines = [json.dumps({"id": f"n{i}", "text": f"short note number {i}"}) for i in range(10)]
        imp.stage("\n".join(lines).encode(), "ten.jsonl")
        seen: list[tuple[float, int]] = []
        embedder.calls.clear()
        out = await imp.commit(progress=lambda done, total: seen.append((done, total)))
        assert out["documents"] == 10 and (await svc.counts())["note_count"] == 10
        assert embedder.calls == [4, 4, 2]  # one embedding pass per group, not one per note
        assert seen[-1] == (10, 10) and all(t == 10 for _, t in seen)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert {4, 8} <= {d for d, _ in seen}
    finally:
        await svc.close()
        await LocalIndex.drop(location)


async def test_a_failure_in_a_later_group_leaves_none_of_the_file(location: str) -> None:
    svc = await _open(location, CountingEmbedder(fail_on="BOOM"))
    try:
        imp = NotesImport(svc, group=2)
        lines = [json.dumps({"id": f"n{i}", "text": "BOOM" if i == 4 else f"note {i}"}) for i in range(6)]
        imp.stage("\n".join(lines).encode(), "six.jsonl")
        with pytest.raises(FileError, match="six.jsonl: the model refused"):
            await imp.commit()
        assert await _state(svc) == ({"note_count": 0, "items": 0}, [])
    finally:
        await svc.close()
        await LocalIndex.drop(location)


async def test_importing_the_same_file_again_embeds_nothing(location: str) -> None:
    embedder = CountingEmbedder()
    svc = await _open(location, embedder)
    try:
        imp = NotesImport(svc)
        for _ in range(2):
            imp.stage(b"Unchanged letter to the GP.", "letter.txt")
            out = await imp.commit()
        assert (out["documents"], out["unchanged"], out["note_count"]) == (0, 1, 1)
        imp.stage(b"Changed letter to the GP.", "letter.txt")
        out = await imp.commit()
        assert (out["documents"], out["note_count"]) == (1, 1)
        note = await svc.get("letter.txt")
        assert note is not None and note["text"] == "Changed letter to the GP."
    finally:
        await svc.close()
        await LocalIndex.drop(location)


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("", InvalidInput, "non-empty string"),
        (None, InvalidInput, "non-empty string"),
        ("setup.exe", FileError, "not a file clinvec reads"),
        ("x" * 600 + ".txt", FileError, "cannot be a note id"),
    ],
)
async def test_bad_names_are_refused_before_anything(svc: NotesService, name: Any, error: type, message: str) -> None:
    imp = NotesImport(svc)
    with pytest.raises(error, match=message):
        imp.stage(b"text", name)
    assert imp.staged is None


async def test_bad_bytes_and_oversized_notes_are_file_errors(svc: NotesService) -> None:
    imp = NotesImport(svc)
    imp.stage(b"line one\nline two \xff\n", "latin1.txt")
    with pytest.raises(FileError) as caught:
        await imp.commit()
    assert caught.value.line == 2
    with pytest.raises(FileError, match="expected the file's bytes"):
        imp.stage("a str, not bytes", "x.txt")
    long = json.dumps({"id": "huge", "text": "x " * (MAX_NOTE_CHARS // 2 + 1)})
    imp.stage(f"{json.dumps({'id': 'ok', 'text': 'fine'})}\n{long}\n".encode(), "long.jsonl")
    with pytest.raises(FileError, match="at most") as caught:
        await imp.commit()
    assert caught.value.line == 2
    assert (await svc.counts())["note_count"] == 0


async def test_a_read_only_tab_refuses_to_stage(location: str) -> None:
    writer = await _open(location)
    reader = NotesService(await LocalIndex.open(location, read_only=True, embedder=writer.embedder), writer.embedder)
    try:
        with pytest.raises(FileError, match="read-only"):
            NotesImport(reader).stage(b"text", "a.txt")
    finally:
        await reader.close()
        await writer.close()
        await LocalIndex.drop(location)


def test_every_error_is_a_clinvec_error() -> None:
    assert issubclass(FileError, ClinvecError)


def test_the_page_accepts_exactly_the_suffixes_python_reads() -> None:
    source = (ROOT / "web" / "app" / "import.mjs").read_text(encoding="utf-8")
    match = re.search(r"const SUFFIXES = \[([^\]]*)\]", source)
    assert match, "import.mjs declares its SUFFIXES list"
    assert sorted(re.findall(r'"([^"]+)"', match.group(1))) == sorted(SUFFIXES)
