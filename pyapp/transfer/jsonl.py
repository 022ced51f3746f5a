"""JSONL: one item object per line, UTF-8 (a leading BOM is accepted); blank lines are skipped.

Lines are read as bytes and decoded one at a time, so a bad byte, bad JSON, a 5,000-digit integer or
JSON nested too deeply is reported with its line number (``InvalidInput``), never as a raw Python error.
"""

from __future__ import annotations

import json
from typing import IO, Any, BinaryIO

from ..metadata import parse_json
from .items import LineProgress, Source, check_item, common_dims, file_size, open_source

_BOM = b"\xef\xbb\xbf"


def read_jsonl(path: str, dims: int | None, progress: LineProgress | None = None) -> Source:
    """Every item of a JSONL file, checked; raises ``InvalidInput`` naming the first bad line."""
    with open_source(path) as handle:
        return read_jsonl_stream(handle, path, dims, file_size(path), progress)


def read_jsonl_stream(
    handle: BinaryIO, where: str, dims: int | None, total: int = 0, progress: LineProgress | None = None
) -> Source:
    """``read_jsonl`` on an open binary stream (a file, or ``io.BytesIO`` of an uploaded file in the browser);
    ``where`` names the source in errors."""
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(handle, 1):
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line.strip():
            at = f"{where} line {number}"
            items.append(check_item(parse_json(line, at), at, dims))
            lines.append(number)
        if progress is not None and number % 1000 == 0:
            progress(handle.tell(), total)
    if progress is not None:
        progress(total, total)
    return Source(items, dims=common_dims(items, where) if dims is None else dims, lines=lines)


def write_jsonl_record(handle: IO[str], record: dict[str, Any]) -> None:
    """One compact JSON object per line; non-ASCII text stays UTF-8, not escaped."""
    handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
