"""CSV: a header naming ``id`` and some of ``vector`` (JSON array), ``metadata`` (JSON object), ``text``.

Reading is stricter than the ``csv`` module's defaults, because its defaults lose data quietly:
fields may be any size (the module's 128 KiB default limit would refuse clinvec's own export of a long
note), a quote that is never closed is an error naming the line where the field opened (by default it
swallows every following row into one field), every row must have as many fields as the header, and
a UTF-8 byte-order mark (Excel writes one) is skipped. An empty field means absent.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import IO, Any, BinaryIO

from ..errors import InvalidInput
from ..metadata import parse_json
from .items import FIELDS, Source, check_item, common_dims, open_source

FIELD_LIMIT = 2**31 - 1
"""Largest field accepted, in characters: the largest value ``csv.field_size_limit`` takes on every
platform (it is a C long, 32 bits on Windows and wasm32)."""


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """Raise the ``csv`` module's (process-wide) field size limit while one file is read."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def read_csv(path: str, dims: int | None) -> Source:
    """Every item of a CSV file, checked; raises ``InvalidInput`` naming the first bad line."""
    with open_source(path) as raw:
        return read_csv_stream(raw, path, dims)


def read_csv_stream(raw: BinaryIO, where: str, dims: int | None) -> Source:
    """``read_csv`` on an open binary stream; ``where`` names the source in errors."""
    with closing(iter_csv_rows(raw, where)) as rows:  # closing: the field limit is restored on an error too
        return _read_items(rows, where, dims)


def _read_items(rows: Iterator[tuple[int, list[str]]], where: str, dims: int | None) -> Source:
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    first = next(rows, None)
    if first is None or "id" not in first[1]:
        raise InvalidInput(f"{where}: a CSV import needs a header row naming 'id' and 'vector' or 'text'")
    header_line, header = first
    unknown = [name for name in header if name not in FIELDS]
    if unknown:
        raise InvalidInput(f"{where} line {header_line}: unknown columns {unknown}; expected some of {list(FIELDS)}")
    for line, row in rows:
        at = f"{where} line {line}"
        items.append(check_item(record_item(dict(zip(header, row)), at), at, dims))
        lines.append(line)
    return Source(items, dims=common_dims(items, where) if dims is None else dims, lines=lines)


def iter_csv_rows(raw: BinaryIO, where: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of every non-blank row, the header first, with the strict rules above; every row
    must have as many fields as the header. Shared with the column-mapping reader (``pyapp.files``)."""
    with _field_limit(FIELD_LIMIT):
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), strict=True)
        width: int | None = None
        while True:
            line = reader.line_num + 1
            row = _next_row(reader, where)
            if row is None:
                return
            if not row:
                continue  # a blank line
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise InvalidInput(
                    f"{where} line {line}: {len(row)} fields, the header has {width} "
                    "(a quote opened in an earlier field and closed too late?)"
                )
            yield line, row


def _next_row(reader: Any, path: str) -> list[str] | None:
    start = reader.line_num + 1
    try:
        return next(reader)  # type: ignore[no-any-return]
    except StopIteration:
        return None
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise InvalidInput(f"{path} line {start}: a quoted field opened on this line is never closed") from None
        if reader.line_num > start:
            raise InvalidInput(
                f"{path} lines {start}-{reader.line_num}: malformed CSV ({exc}); is a quote opened on line {start} "
                "closed in the wrong place?"
            ) from None
        raise InvalidInput(f"{path} line {start}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} near line {start}: not UTF-8 text ({exc.reason})") from None


def record_item(record: dict[str, str], where: str) -> dict[str, Any]:
    """A row as ``{"id", "vector", "metadata", "text"}`` (vector and metadata parsed from JSON), unchecked."""
    raw: dict[str, Any] = {"id": record.get("id") or None}
    if record.get("vector"):
        raw["vector"] = parse_json(record["vector"], f"{where} vector")
    if record.get("metadata"):
        raw["metadata"] = parse_json(record["metadata"], f"{where} metadata")
    if record.get("text"):
        raw["text"] = record["text"]
    return raw


def write_csv_header(handle: IO[str]) -> Any:
    """A ``csv.writer`` on ``handle`` with the header row written; pass it to ``write_csv_record``."""
    writer = csv.writer(handle)
    writer.writerow(FIELDS)
    return writer


def write_csv_record(writer: Any, record: dict[str, Any]) -> None:
    """One item as a row; a text of None becomes an empty field (an empty text is not stored apart)."""
    writer.writerow(
        [
            record["id"],
            json.dumps(record["vector"]),
            json.dumps(record["metadata"], ensure_ascii=False, allow_nan=False),
            "" if record["text"] is None else record["text"],
        ]
    )
