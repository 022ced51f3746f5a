"""pyapp.files and write_content inside the page (Pyodide, IndexedDB): the same documents as on CPython."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from browser_helpers import AppPage, BrowserPythonError

from pyapp.files import preview_csv, read_file

pytestmark = pytest.mark.browser

FILES = {
    "note.txt": b"\xef\xbb\xbfChest pain.\r\nTroponin negative.\n",
    "plan.md": "# Plan\n\n- caf\u00e9 au lait spots".encode(),
    "notes.jsonl": b'{"id": "n1", "text": "Hypoglycaemia overnight", "metadata": {"ward": "ICU"}}\n'
    b'{"id": "v1", "vector": [1, 0, 0, 0], "text": "pre-embedded"}\n',
    "table.csv": b'NoteID,Ward,Body\n7,ICU,"Delirium, agitated"\n8,ED,Cellulitis\n',
}

# Runs in the page: read every file (the PDF from page texts, as pdfjs hands them in) and write them.
IN_PAGE = """
import base64
from pyapp.documents import DocumentIndex
from pyapp.embed.hashing import HashingEmbedder
from pyapp.files import read_file, preview_csv, FileError
from pyapp.ingest import write_content
contents = [read_file(base64.b64decode(data), name, dims=4) for name, data in files.items()]
contents.append(read_file(b"", "scan.pdf", pdf_pages=pages))
docs = await DocumentIndex.create(location, HashingEmbedder(dims=4))
written = [(await write_content(docs, c)).documents for c in contents]
try:
    read_file(b'{"id": "a", "text": "ok"}\\n{oops\\n', "bad.jsonl")
except FileError as exc:
    error = [type(exc).__name__, exc.file, exc.line, str(exc)]
result = {
    "contents": [c.to_dict() for c in contents],
    "preview": preview_csv(base64.b64decode(files["table.csv"]), "table.csv").to_dict(),
    "written": written,
    "uris": sorted(d.uri for d in await docs.list_documents()),
    "pdf_text": await docs.get_document_text("scan.pdf"),
    "ids": sorted(await docs.index.ids()),
    "error": error,
}
await docs.close()
"""


def test_readers_and_writer_in_pyodide_match_cpython(app: AppPage, index_name: str) -> None:
    pages = ["Discharge summary", "Diagnosis: tension pneumothorax"]
    encoded = {name: base64.b64encode(data).decode() for name, data in FILES.items()}
    try:
        got: dict[str, Any] = app.run(IN_PAGE, files=encoded, pages=pages, location=index_name)
    except BrowserPythonError as exc:  # pragma: no cover - the message is the diagnosis
        raise AssertionError(str(exc)) from None
    expected = [read_file(data, name, dims=4).to_dict() for name, data in FILES.items()]
    expected.append(read_file(b"", "scan.pdf", pdf_pages=pages).to_dict())
    assert got["contents"] == expected
    assert got["preview"] == preview_csv(FILES["table.csv"], "table.csv").to_dict()
    assert got["written"] == [1, 1, 1, 2, 1]
    assert got["uris"] == [
        "7",
        "8",
        "n1",
        "note.txt",
        "plan.md",
        "scan.pdf",
        "v1",
    ]  # v1: a plain item reads as a one-chunk document
    assert got["pdf_text"] == "Discharge summary\n\nDiagnosis: tension pneumothorax"
    assert "v1" in got["ids"]
    assert got["error"][:3] == ["FileError", "bad.jsonl", 2]
