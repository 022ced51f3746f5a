"""pyapp.files: every reader on real bytes; errors name the file and line; JSONL/CSV follow pyapp.transfer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pdf_maker import minimal_pdf

from pyapp.errors import ClinvecError, InvalidInput
from pyapp.files import (
    CsvMapping,
    FileError,
    kind_of,
    preview_csv,
    read_csv,
    read_file,
    read_pdf,
    suggest_mapping,
)
from pyapp.transfer import read_source

ROOT = Path(__file__).resolve().parent.parent


def error_of(data: bytes, name: str, **kwargs) -> FileError:
    with pytest.raises(FileError) as info:
        read_file(data, name, **kwargs)
    assert isinstance(info.value, ClinvecError) and info.value.file == name
    assert str(info.value).startswith(name)
    return info.value


# ---------------------------------------------------------------------- text
def test_text_and_markdown_are_one_document_named_by_the_file() -> None:
    content = read_file(b"\xef\xbb\xbfChest pain.\r\nTroponin negative.\n", "ed-note.txt")
    assert content.kind == "text" and not content.items
    [doc] = content.documents
    assert doc.uri == "ed-note.txt" and doc.text == "Chest pain.\r\nTroponin negative.\n"  # BOM gone, bytes kept
    assert read_file("# Plan\n\n- café au lait".encode(), "plan.MD").documents[0].text.endswith("café au lait")
    assert read_file(b"x", "plan.MD").kind == "markdown"


def test_invalid_utf8_names_file_and_line() -> None:
    error = error_of(b"line one\nline two\nbad \xff byte\n", "latin1.txt")
    assert error.line == 3 and "not UTF-8" in str(error) and "latin1.txt line 3" in str(error)


def test_empty_and_unknown_files_are_refused() -> None:
    assert "no text" in str(error_of(b" \n\t", "blank.md"))
    assert "not a file clinvec reads" in str(error_of(b"x", "scan.docx"))
    assert kind_of("A/B/notes.JSONL") == "jsonl" and kind_of("notes") is None


# ---------------------------------------------------------------------- PDF
def test_pdf_text_through_pypdf_and_from_page_texts() -> None:
    pytest.importorskip("pypdf")
    data = minimal_pdf(["Discharge summary (day 3)", "Diagnosis: tension pneumothorax"])
    content = read_file(data, "summary.pdf")
    [doc] = content.documents
    assert content.kind == "pdf" and doc.uri == "summary.pdf"
    assert "Discharge summary (day 3)" in doc.text and doc.text.endswith("tension pneumothorax")
    assert doc.text.index("Discharge") < doc.text.index("Diagnosis")
    # The browser hands in pdfjs page texts instead: the same document.
    same = read_file(data, "summary.pdf", pdf_pages=["Discharge summary (day 3)", "Diagnosis: tension pneumothorax"])
    assert same.documents == content.documents


def test_broken_and_textless_pdfs_are_refused() -> None:
    pytest.importorskip("pypdf")
    data = minimal_pdf(["Some text"])
    assert "not a readable PDF" in str(error_of(data[:40], "cut.pdf"))
    assert "no text layer" in str(error_of(minimal_pdf([""]), "scan.pdf"))
    with pytest.raises(FileError, match="page texts must be strings"):
        read_pdf([1, 2], "x.pdf")  # type: ignore[list-item]
    with pytest.raises(FileError, match="lone surrogate"):
        read_pdf(["bad \ud800 text"], "x.pdf")


# ---------------------------------------------------------------------- JSONL
JSONL = (
    b"\xef\xbb\xbf"
    + json.dumps({"id": "n1", "text": "Hypoglycaemia overnight", "metadata": {"ward": "ICU"}}).encode()
    + b"\n\n"
    + json.dumps({"text": "Fall from bed, no injury"}).encode()
    + b"\n"
    + json.dumps({"id": "c1", "vector": [1, 0, 0], "text": "chunk", "metadata": {"_doc": {"uri": "x"}}}).encode()
    + b"\n"
)


def test_jsonl_records_become_documents_or_items() -> None:
    content = read_file(JSONL, "notes.jsonl")
    assert [(d.uri, d.line) for d in content.documents] == [("n1", 1), ("notes.jsonl:3", 3)]
    assert content.documents[0].metadata == {"ward": "ICU"}
    # A record with its own vector (e.g. from `python -m pyapp export`) is kept as it is, _doc included.
    assert content.items == [{"id": "c1", "vector": [1, 0, 0], "text": "chunk", "metadata": {"_doc": {"uri": "x"}}}]


def test_jsonl_is_read_by_the_transfer_reader(tmp_path: Path) -> None:
    """Same records as `python -m pyapp add --file` reads (one reader, not a copy)."""
    path = tmp_path / "notes.jsonl"
    path.write_bytes(JSONL)
    source = read_source(str(path))
    content = read_file(JSONL, "notes.jsonl")
    by_file = {d.uri: d for d in content.documents}
    assert source.items[0]["text"] == by_file["n1"].text and source.items[0]["metadata"] == by_file["n1"].metadata
    assert source.items[2] == content.items[0]
    assert source.lines == [1, 3, 4]


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b'{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', 2, "not valid JSON"),
        (b'{"id": "a", "text": "ok"}\n{"id": "a", "text": "again"}\n', 2, "used again (first on line 1)"),
        (b'{"id": "a", "text": "ok"}\n\n{"id": "b", "metadata": {}}\n', 3, "needs a text or a vector"),
        (b'{"id": "a", "text": "t", "metadata": {"_doc": 1}}\n', 1, "reserved"),
        (b'{"id": "a", "text": "t", "metadata": [1]}\n', 1, "JSON object"),
        (b'{"id": "a", "text": "t"}\n{"id": "b", "vector": [0, 0, 0]}\n', 2, "all zeros"),
        (b'{"id": "a", "vector": [1, "2", 3]}\n', 1, "expected numbers"),
        (b'{"id": "a", "vector": [1, true, 3]}\n', 1, "expected numbers"),
        (b'{"id": "a", "text": "t", "metadata": {"n": ' + b"9" * 5000 + b"}}\n", 1, "line 1"),
        (b'{"id": "a", "vector": [1, 2], "text": "t"}\n', 1, "dimensions"),
        (b'{"id": "a", "text": "t", "extra": 1}\n', 1, "unknown keys"),
        (b'{"id": "a", "text": "ok"}\n\xff\n', 2, "UTF-8"),
    ],
)
def test_jsonl_errors_name_the_line(data: bytes, line: int, words: str) -> None:
    error = error_of(data, "bad.jsonl", dims=3)
    assert error.line == line and words in str(error)


# ---------------------------------------------------------------------- CSV
CSV = b'NoteID,Ward,Body,Year\r\n7,ICU,Pt short of breath,2024\r\n8,,"Long, quoted\nnote",2025\r\n'


def test_csv_preview_suggests_a_mapping() -> None:
    preview = preview_csv(CSV + b"9,ED,x,2026\n" * 10, "export.csv", rows=2)
    assert preview.columns == ["NoteID", "Ward", "Body", "Year"]
    assert preview.rows == [["7", "ICU", "Pt short of breath", "2024"], ["8", "", "Long, quoted\nnote", "2025"]]
    assert preview.more is True
    assert preview.mapping == CsvMapping(id="NoteID", text="Body", fields=("Ward", "Year"))
    assert preview.to_dict()["mapping"]["fields"] == ["Ward", "Year"]
    # No column named like a text: the one with the longest values is suggested.
    assert suggest_mapping(["a", "b"], [["x", "a long narrative"], ["y", "more"]]).text == "b"


def test_csv_read_through_a_mapping() -> None:
    content = read_csv(CSV, "export.csv", CsvMapping(id="NoteID", text="Body", fields=("Ward",)))
    assert [(d.uri, d.text, d.metadata, d.line) for d in content.documents] == [
        ("7", "Pt short of breath", {"Ward": "ICU"}, 2),
        ("8", "Long, quoted\nnote", {}, 3),  # an empty cell is absent, not ""
    ]
    assert read_file(CSV, "export.csv").documents[0].metadata == {"Ward": "ICU", "Year": "2024"}  # suggested
    mapping = CsvMapping.from_dict({"id": None, "text": "Body", "fields": []})
    assert [d.uri for d in read_csv(CSV, "e.csv", mapping).documents] == ["e.csv:2", "e.csv:3"]


def test_csv_of_a_clinvec_export_maps_to_itself(tmp_path: Path) -> None:
    data = b'id,vector,metadata,text\r\na,"[1, 0]","{""ward"": ""ICU""}",first\r\nb,,,second note\r\n'
    path = tmp_path / "items.csv"
    path.write_bytes(data)
    source = read_source(str(path))
    content = read_file(data, "items.csv")
    assert content.items == [source.items[0]]
    assert [(d.uri, d.text) for d in content.documents] == [("b", "second note")]


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b'id,text\n1,ok\n2,"never closed\n3,x\n', 3, "never closed"),
        (b"id,text\n1,ok\n2,ok,extra\n", 3, "3 fields, the header has 2"),
        (b"id,text\n1,ok\n1,again\n", 3, "used again"),
        (b"id,text\n1,ok\n2,\xff\n", 3, "UTF-8"),
        (b"id,text,text\n1,a,b\n", 1, "column twice"),
        (b"id,text,metadata\n1,a,[1]\n", 2, "JSON object"),
    ],
)
def test_csv_errors_name_the_line(data: bytes, line: int, words: str) -> None:
    error = error_of(data, "bad.csv")
    assert error.line == line and words in str(error)


def test_csv_mapping_errors() -> None:
    with pytest.raises(FileError, match="does not have"):
        read_csv(CSV, "e.csv", CsvMapping(text="Notes"))
    with pytest.raises(FileError, match="needs a text column"):
        read_csv(CSV, "e.csv", CsvMapping(id="NoteID"))
    with pytest.raises(FileError, match="twice"):
        read_csv(CSV, "e.csv", CsvMapping(text="Body", fields=("Body",)))
    with pytest.raises(FileError, match="empty"):
        preview_csv(b"", "e.csv")
    for bad in ({"text": 3}, {"colour": "x"}, {"text": "Body", "fields": "Ward"}, []):
        with pytest.raises(InvalidInput):
            CsvMapping.from_dict(bad)
    clash = b'id,text,metadata,ward\n1,a,"{""ward"": ""x""}",ICU\n'
    assert "both by a column and in the metadata" in str(error_of(clash, "c.csv"))


def test_readers_import_without_numpy() -> None:
    """They run in Pyodide where numpy may be missing: importing and reading must not need it."""
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "from pyapp.files import read_file\n"
        'print(len(read_file(b\'{"id": "a", "text": "x"}\\n\', \'a.jsonl\').documents))\n'
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr
