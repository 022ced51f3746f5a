"""JSONL and CSV files: many records per file, read by ``pyapp.transfer``'s readers (one set of rules).

A record is what ``python -m pyapp add --file`` reads: ``id``, ``text``, ``metadata``, optional ``vector``.
A record with a vector is imported as it is (an *item*: e.g. a chunk from ``python -m pyapp export``, whose
``_doc`` metadata makes it part of a document again); a record with text but no vector becomes a *document*,
chunked and embedded like a ``.txt`` file, so a long note in a JSONL file is searchable to its end. A record
without an id is named ``<file>:<line>``, so re-reading the same file names it the same way.

CSV files may use any column names: ``preview_csv`` shows the columns, the first rows and a suggested
mapping, and ``read_csv`` takes the mapping the user confirmed (columns not mapped become metadata fields).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from ..errors import ClinvecError, InvalidInput
from ..metadata import validate_metadata
from ..transfer.csvio import iter_csv_rows, record_item
from ..transfer.items import check_item
from ..transfer.jsonl import read_jsonl_stream
from .model import Document, FileContent, FileError
from .text import decode_text

DOC_KEY = "_doc"  # the document index's reserved metadata key (pyapp.documents.DOC_KEY; not imported: no numpy)
PREVIEW_ROWS = 5
_ID_NAMES = ("id", "note_id", "noteid", "doc_id", "document_id", "uri", "identifier")
_TEXT_NAMES = ("text", "note", "note_text", "body", "content", "report", "narrative", "description")


def read_jsonl(data: bytes, name: str, dims: int | None = None) -> FileContent:
    """Every record of a JSONL file, checked (``dims``: the index's, or None for any one length)."""
    try:
        source = read_jsonl_stream(io.BytesIO(bytes(data)), name, dims, len(data))
    except InvalidInput as exc:
        raise FileError.wrap(exc, name) from None
    return records_content(name, "jsonl", source.items, source.lines)


# ---------------------------------------------------------------------- CSV with a column mapping
@dataclass(frozen=True)
class CsvMapping:
    """Which CSV column holds each part of a record; ``fields`` are copied into metadata as strings."""

    id: str | None = None
    text: str | None = None
    vector: str | None = None
    metadata: str | None = None  # a column holding a JSON object
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        parts = {"id": self.id, "text": self.text, "vector": self.vector, "metadata": self.metadata}
        return {**parts, "fields": list(self.fields)}

    @classmethod
    def from_dict(cls, raw: Any) -> CsvMapping:
        """From the page's JSON; ``InvalidInput`` for anything but column names."""
        if not isinstance(raw, dict) or set(raw) - {"id", "text", "vector", "metadata", "fields"}:
            raise InvalidInput("a CSV mapping is an object with some of id, text, vector, metadata, fields")
        parts = {key: raw.get(key) for key in ("id", "text", "vector", "metadata")}
        if not all(value is None or isinstance(value, str) for value in parts.values()):
            raise InvalidInput("CSV mapping: id, text, vector and metadata name a column (a string) or are null")
        fields = raw.get("fields") or []
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise InvalidInput("CSV mapping: fields is a list of column names")
        return cls(**parts, fields=tuple(fields))

    def check(self, columns: Sequence[str], file: str) -> None:
        """Every mapped column exists, none is used twice, and a record can get a text or a vector."""
        used = [c for c in (self.id, self.text, self.vector, self.metadata) if c is not None] + list(self.fields)
        missing = [c for c in used if c not in columns]
        if missing:
            raise FileError.at(file, f"the mapping names columns the file does not have: {missing}")
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise FileError.at(file, f"the mapping uses a column twice: {twice}")
        if self.text is None and self.vector is None:
            raise FileError.at(file, "the mapping needs a text column (or a vector column)")


@dataclass(frozen=True)
class CsvPreview:
    """What the page shows before a CSV import: the header, the first rows and a suggested mapping."""

    name: str
    columns: list[str]
    rows: list[list[str]]
    mapping: CsvMapping
    more: bool = field(default=False)  # rows follow the ones shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": self.columns,
            "rows": self.rows,
            "mapping": self.mapping.to_dict(),
            "more": self.more,
        }


def preview_csv(data: bytes, name: str, rows: int = PREVIEW_ROWS) -> CsvPreview:
    """The columns, the first ``rows`` rows and a suggested mapping; errors in those rows are reported now."""
    shown: list[list[str]] = []
    more = False
    with closing(_rows(data, name)) as reader:
        header = _header(reader, name)
        for _line, row in _catch(reader, name):
            if len(shown) == rows:
                more = True
                break
            shown.append(row)
    return CsvPreview(name, header, shown, suggest_mapping(header, shown), more)


def suggest_mapping(columns: Sequence[str], rows: Sequence[Sequence[str]] = ()) -> CsvMapping:
    """id/text/vector/metadata by their usual names (text: else the column with the longest values);
    every other named column becomes a metadata field. A clinvec export maps to itself."""
    lower = {c.lower(): c for c in columns}

    def named(names: Sequence[str]) -> str | None:
        return next((lower[n] for n in names if n in lower), None)

    id_col = named(_ID_NAMES)
    vector = named(("vector", "embedding"))
    metadata = named(("metadata",))
    text = named(_TEXT_NAMES)
    taken = {id_col, vector, metadata}
    if text is None:
        lengths = {c: sum(len(r[i]) for r in rows) for i, c in enumerate(columns) if c and c not in taken}
        text = max(lengths, key=lambda c: lengths[c]) if lengths and max(lengths.values()) > 0 else None
    taken.add(text)
    fields = tuple(c for c in columns if c and c not in taken)
    return CsvMapping(id=id_col, text=text, vector=vector, metadata=metadata, fields=fields)


def read_csv(data: bytes, name: str, mapping: CsvMapping | None = None, dims: int | None = None) -> FileContent:
    """Every row of a CSV file as a record, through ``mapping`` (default: the suggested one)."""
    with closing(_rows(data, name)) as reader:
        header = _header(reader, name)
        rows = list(_catch(reader, name))
    mapping = mapping or suggest_mapping(header, [row for _line, row in rows[:PREVIEW_ROWS]])
    mapping.check(header, name)
    position = {column: i for i, column in enumerate(header)}
    items, lines = [], []
    for line, row in rows:
        items.append(_mapped_item(row, position, mapping, name, line, dims))
        lines.append(line)
    return records_content(name, "csv", items, lines)


def _rows(data: bytes, name: str) -> Iterator[tuple[int, list[str]]]:
    decode_text(data, name)  # the csv reader decodes in 8 KiB blocks, so it can only say "near line 1"
    return iter_csv_rows(io.BytesIO(bytes(data)), name)


def _catch(rows: Iterator[tuple[int, list[str]]], name: str) -> Iterator[tuple[int, list[str]]]:
    try:
        yield from rows
    except InvalidInput as exc:
        raise FileError.wrap(exc, name) from None


def _header(rows: Iterator[tuple[int, list[str]]], name: str) -> list[str]:
    try:  # not through _catch: closing that generator would close ``rows`` too
        first = next(rows, None)
    except InvalidInput as exc:
        raise FileError.wrap(exc, name) from None
    if first is None:
        raise FileError.at(name, "the CSV file is empty (a header row naming the columns comes first)")
    line, header = first
    named = [c for c in header if c]
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        raise FileError.at(name, f"the header names a column twice: {twice}", line)
    return header


def _mapped_item(
    row: list[str], position: dict[str, int], mapping: CsvMapping, name: str, line: int, dims: int | None
) -> dict[str, Any]:
    where = f"{name} line {line}"

    def cell(column: str | None) -> str:
        return "" if column is None else row[position[column]]

    try:
        raw = record_item(
            {
                "id": cell(mapping.id),
                "text": cell(mapping.text),
                "vector": cell(mapping.vector),
                "metadata": cell(mapping.metadata),
            },
            where,
        )
        metadata = raw.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInput(f"{where}: the metadata column must hold a JSON object")
        extra = {column: row[position[column]] for column in mapping.fields if row[position[column]] != ""}
        if extra:
            clash = sorted(set(extra) & set(metadata or {}))
            if clash:
                raise InvalidInput(f"{where}: {clash} set both by a column and in the metadata column")
            raw["metadata"] = {**(metadata or {}), **extra}
        return check_item(raw, where, dims)
    except InvalidInput as exc:
        raise FileError.wrap(exc, name) from None


# ---------------------------------------------------------------------- records -> documents and items
def _check_vector(vector: list[Any]) -> None:
    """Numbers, finite, not all zero: what the index's kernels accept (checked here to report the line)."""
    if not vector:
        raise InvalidInput("the vector is empty")
    for value in vector:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"the vector holds {type(value).__name__} {value!r}; expected numbers")
        if not math.isfinite(value):
            raise InvalidInput(f"the vector holds {value!r}; expected finite numbers")
    if not any(vector):
        raise InvalidInput("the vector is all zeros (it has no direction to compare)")


def records_content(name: str, kind: str, records: Sequence[dict[str, Any]], lines: Sequence[int]) -> FileContent:
    """Split checked records into items (with a vector) and documents (text only); ids are unique per file."""
    content = FileContent(name, kind)
    seen: dict[str, int] = {}
    for record, line in zip(records, lines, strict=True):
        uri = record["id"] if record["id"] is not None else f"{name}:{line}"
        if uri in seen:
            raise FileError.at(name, f"id {uri!r} is used again (first on line {seen[uri]})", line)
        seen[uri] = line
        try:  # the index would refuse these too, but only for the whole file, without a line
            metadata = validate_metadata(record["metadata"] or {})
            if record["vector"] is not None:
                _check_vector(record["vector"])
        except ClinvecError as exc:
            raise FileError.at(name, str(exc), line) from None
        if record["vector"] is not None:
            content.items.append({**record, "id": uri})
            continue
        if DOC_KEY in metadata:
            raise FileError.at(name, f"metadata key {DOC_KEY!r} is reserved (a chunk needs its vector)", line)
        if record["text"] is None or not record["text"].strip():
            raise FileError.at(name, "a record needs a text or a vector", line)
        content.documents.append(Document(uri, record["text"], metadata, line))
    return content
