"""What every reader produces: checked item dicts plus what the source says about the index it came from.

Why one checker: JSONL, CSV and vectra sources all end up as ``{"id", "vector", "metadata", "text"}``
dicts handed to ``insert_many``; checking shape, dimensions and text here, with the source's own line
or item number, gives errors that point into the file rather than at "item 4711" of a batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import InvalidInput
from ..metadata import check_no_lone_surrogates

FIELDS = ("id", "vector", "metadata", "text")
LineProgress = Callable[[int, int], None]
"""``(bytes_read, bytes_total)``, called now and then while a file is read."""


@dataclass
class Source:
    """Items read from a source, and the index settings it implies (vectra folders record some)."""

    items: list[dict[str, Any]]
    indexed: list[str] = field(default_factory=list)
    dims: int | None = None
    lines: list[int] = field(default_factory=list)
    """The line each item starts on, for files read line by line (JSONL, CSV); empty otherwise."""


def check_item(raw: Any, where: str, dims: int | None) -> dict[str, Any]:
    """One item's shape, checked before anything is written; ``dims=None`` accepts any length."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected an object with id/vector/metadata/text")
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {sorted(unknown)}")
    item_id, vector, text = raw.get("id"), raw.get("vector"), raw.get("text")
    if item_id is not None:
        if not isinstance(item_id, str):
            raise InvalidInput(f"{where}: id must be a string, got {type(item_id).__name__}")
        check_no_lone_surrogates(item_id, f"{where} id")
    if text is not None:
        if not isinstance(text, str):
            raise InvalidInput(f"{where}: text must be a string, got {type(text).__name__}")
        check_no_lone_surrogates(text, f"{where} text")
    if vector is not None:
        if not isinstance(vector, list):
            raise InvalidInput(f"{where}: vector must be a JSON array of numbers")
        if dims is not None and len(vector) != dims:
            raise InvalidInput(f"{where}: vector has {len(vector)} dimensions; the index has {dims}")
    return {k: raw.get(k) for k in FIELDS}


def common_dims(items: list[dict[str, Any]], where: str) -> int | None:
    """The one vector length of ``items`` (None when none has a vector); mixed lengths are an error."""
    dims = None
    for number, item in enumerate(items):
        vector = item["vector"]
        if vector is None:
            continue
        if dims is None:
            dims = len(vector)
        elif len(vector) != dims:
            raise InvalidInput(f"{where} item {number}: vector has {len(vector)} dimensions; earlier ones have {dims}")
    return dims


@contextmanager
def open_source(path: str) -> Iterator[BinaryIO]:
    """Open a source file for reading; OS errors become ``InvalidInput`` naming the path."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, errors mapped
    except OSError as exc:
        raise InvalidInput(f"cannot read {path!r}: {exc.strerror or exc}") from None
    with handle:
        try:
            yield handle
        except OSError as exc:
            raise InvalidInput(f"cannot read {path!r}: {exc.strerror or exc}") from None


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
