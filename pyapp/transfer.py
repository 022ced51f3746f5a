"""Import and export: JSONL, CSV (vector as a JSON array column) and vectra 0.15 index folders.

Exports are round-trip exact: stored vectors are float32, and ``repr`` of a float32 widened to a Python
float parses back to the same float32. Imports read and check the whole source before anything is
written, so a malformed file changes nothing (the index commits all items in one go).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput

if TYPE_CHECKING:
    from .index import LocalIndex

FORMATS = ("jsonl", "csv", "vectra")
CSV_FIELDS = ("id", "vector", "metadata", "text")
LineProgress = Callable[[int, int], None]


def detect_format(path: str) -> str:
    """Guess a source's format: a folder with ``index.json`` is vectra, else by file extension."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "index.json")):
            return "vectra"
        raise InvalidInput(f"{path!r} is a folder without index.json: not a vectra index")
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    raise InvalidInput(f"cannot tell the format of {path!r}; pass format='jsonl', 'csv' or 'vectra'")


def _item_lines(index: LocalIndex) -> Iterator[dict[str, Any]]:
    state = index._state  # interim: the transfer rework builds on iter_items
    for item in state.items(state.in_order()):
        yield item.to_dict()


def export_items(index: LocalIndex, path: str, format: str = "jsonl") -> int:
    """Write every committed item in insertion order; the file is replaced atomically."""
    if format not in ("jsonl", "csv"):
        raise InvalidInput(f"export format must be 'jsonl' or 'csv', got {format!r}")
    tmp = f"{path}.tmp-{os.getpid()}"
    count = 0
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        if format == "jsonl":
            for item in _item_lines(index):
                handle.write(json.dumps(item, ensure_ascii=False, allow_nan=False) + "\n")
                count += 1
        else:
            writer = csv.writer(handle)
            writer.writerow(CSV_FIELDS)
            for item in _item_lines(index):
                writer.writerow(
                    [
                        item["id"],
                        json.dumps(item["vector"]),
                        json.dumps(item["metadata"], ensure_ascii=False, allow_nan=False),
                        "" if item["text"] is None else item["text"],
                    ]
                )
                count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


def _parse_json(value: str, where: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where}: not valid JSON ({exc.msg})") from None


def _check_item(raw: Any, where: str, dims: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected an object with id/vector/metadata/text")
    unknown = set(raw) - set(CSV_FIELDS)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {sorted(unknown)}")
    vector = raw.get("vector")
    if vector is not None:
        if not isinstance(vector, list):
            raise InvalidInput(f"{where}: vector must be a JSON array of numbers")
        if len(vector) != dims:
            raise InvalidInput(f"{where}: vector has {len(vector)} dimensions; the index has {dims}")
    return {k: raw.get(k) for k in CSV_FIELDS}


def _read_jsonl(path: str, dims: int, progress: LineProgress | None) -> list[dict[str, Any]]:
    items = []
    total = os.path.getsize(path)
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                where = f"{path} line {number}"
                items.append(_check_item(_parse_json(line, where), where, dims))
            if progress is not None and number % 1000 == 0:
                progress(handle.buffer.tell() if hasattr(handle, "buffer") else 0, total)
    return items


def _read_csv(path: str, dims: int) -> list[dict[str, Any]]:
    items = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise InvalidInput(f"{path}: a CSV import needs a header with at least 'id' and 'vector' or 'text'")
        for number, record in enumerate(reader, 2):
            where = f"{path} row {number}"
            raw: dict[str, Any] = {"id": record.get("id") or None}
            if record.get("vector"):
                raw["vector"] = _parse_json(record["vector"], f"{where} vector")
            if record.get("metadata"):
                raw["metadata"] = _parse_json(record["metadata"], f"{where} metadata")
            if record.get("text"):
                raw["text"] = record["text"]
            items.append(_check_item(raw, where, dims))
    return items


def _read_vectra(folder: str, dims: int) -> list[dict[str, Any]]:
    """vectra 0.15 JSON index: ``index.json`` items; full metadata of indexed configs sits in side files."""
    path = os.path.join(folder, "index.json")
    with open(path, encoding="utf-8") as handle:
        data = _parse_json(handle.read(), path)
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise InvalidInput(f"{path}: not a vectra index (no 'items' list)")
    items = []
    for number, entry in enumerate(data["items"]):
        where = f"{path} item {number}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise InvalidInput(f"{where}: expected an object with an id")
        metadata = entry.get("metadata") or {}
        side = entry.get("metadataFile")
        if side:
            side_path = os.path.join(folder, os.path.basename(side))
            try:
                with open(side_path, encoding="utf-8") as handle:
                    metadata = _parse_json(handle.read(), side_path)
            except FileNotFoundError:
                raise InvalidInput(f"{where}: its metadata file {side!r} is missing") from None
        items.append(_check_item({"id": entry["id"], "vector": entry.get("vector"), "metadata": metadata}, where, dims))
    return items


def read_items(path: str, format: str | None, dims: int, progress: LineProgress | None = None) -> list[dict[str, Any]]:
    """Read and check every item of a source; raises ``InvalidInput`` naming the first bad line."""
    if not os.path.exists(path):
        raise InvalidInput(f"{path!r} does not exist")
    format = format or detect_format(path)
    if format == "jsonl":
        return _read_jsonl(path, dims, progress)
    if format == "csv":
        return _read_csv(path, dims)
    if format == "vectra":
        return _read_vectra(path, dims)
    raise InvalidInput(f"import format must be one of {FORMATS}, got {format!r}")
