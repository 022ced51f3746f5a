"""File readers: the one place that turns a file's bytes into documents and items.

Pure Python (no numpy, no OS calls: bytes and a file name in), so the server's ``python -m pyapp ingest``
and the page's import in Pyodide read every format by the same rules:

- ``.txt``, ``.md``: one document, id = the file name, UTF-8 (BOM accepted);
- ``.pdf``: one document, from the bytes (pypdf, server) or page texts extracted by pdfjs (browser);
- ``.jsonl``, ``.csv``: records as ``python -m pyapp add --file`` reads them (CSV through a column mapping).

Every error is a ``FileError`` (an ``InvalidInput``) naming the file and, where it applies, the line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from .model import Document, FileContent, FileError
from .pdf import read_pdf
from .records import CsvMapping, CsvPreview, preview_csv, read_csv, read_jsonl, suggest_mapping
from .text import decode_text, read_text

KINDS = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".pdf": "pdf", ".jsonl": "jsonl", ".csv": "csv"}
SUFFIXES = tuple(KINDS)


def kind_of(name: str) -> str | None:
    """The reader for a file name (by suffix, any case), or None for files clinvec does not read."""
    return KINDS.get(posixpath.splitext(name.lower())[1])


def read_file(
    data: bytes,
    name: str,
    dims: int | None = None,
    csv_mapping: CsvMapping | None = None,
    pdf_pages: Sequence[str] | None = None,
) -> FileContent:
    """Read one file by its suffix. ``dims`` checks record vectors against the index; ``csv_mapping`` is the
    confirmed CSV mapping (default: the suggested one); ``pdf_pages`` are page texts already extracted."""
    kind = kind_of(name)
    if kind is None:
        raise FileError.at(name, f"not a file clinvec reads (expected one of {', '.join(SUFFIXES)})")
    if kind in ("text", "markdown"):
        return read_text(data, name, kind)
    if kind == "pdf":
        return read_pdf(data if pdf_pages is None else pdf_pages, name)
    if kind == "jsonl":
        return read_jsonl(data, name, dims)
    return read_csv(data, name, csv_mapping, dims)


__all__ = [
    "KINDS",
    "SUFFIXES",
    "CsvMapping",
    "CsvPreview",
    "Document",
    "FileContent",
    "FileError",
    "decode_text",
    "kind_of",
    "preview_csv",
    "read_csv",
    "read_file",
    "read_jsonl",
    "read_pdf",
    "read_text",
    "suggest_mapping",
]
