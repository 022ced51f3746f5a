"""Import a JSONL, CSV, vectra or bundle source into an open index: read and check it all, then one commit.

Why read everything first: the index commits ``insert_many``/``upsert_many`` all or nothing, so a bad
line anywhere in the file changes nothing, and the error names that line. A bundle (``.clinvec``) is
streamed instead, batch by batch into one ``batch()`` commit that follows its sha256 check
(``pyapp.bundle.restore``): the same all or nothing in bounded memory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..bundle.format import EXTENSION
from ..bundle.restore import restore
from ..errors import InvalidInput
from .csvio import read_csv
from .items import LineProgress, Source, open_source
from .jsonl import read_jsonl
from .vectra import INDEX_FILE, read_vectra

if TYPE_CHECKING:
    from ..embed.base import Progress
    from ..index import LocalIndex

FORMATS = ("jsonl", "csv", "vectra", "bundle")
GZIP_MAGIC = b"\x1f\x8b"


def detect_format(path: str) -> str:
    """Guess a source's format: a folder with ``index.json`` is vectra, else by file extension."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, INDEX_FILE)):
            return "vectra"
        raise InvalidInput(f"{path!r} is a folder without {INDEX_FILE}: not a vectra index")
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(EXTENSION):
        return "bundle"
    raise InvalidInput(f"cannot tell the format of {path!r}; pass format='jsonl', 'csv', 'vectra' or 'bundle'")


def is_bundle(path: str, format: str | None) -> bool:
    """True when ``format`` says bundle, or is None and the file is one (``.clinvec``, or gzip data)."""
    if format is not None:
        return format == "bundle"
    path = os.fspath(path)
    if path.lower().endswith(EXTENSION):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == GZIP_MAGIC
    except OSError:
        return False


def read_source(
    path: str, format: str | None = None, dims: int | None = None, progress: LineProgress | None = None
) -> Source:
    """Read and check every item of a source (``dims=None``: any one length); raises ``InvalidInput``
    naming the first bad line or item. Nothing is written."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidInput(f"{path!r} does not exist")
    format = format or detect_format(path)
    if format == "jsonl":
        return read_jsonl(path, dims, progress)
    if format == "csv":
        return read_csv(path, dims)
    if format == "vectra":
        return read_vectra(path, dims)
    if format == "bundle":
        raise InvalidInput(f"{path!r} is a bundle: it is streamed by import_into or pyapp.bundle, not read whole")
    raise InvalidInput(f"import format must be one of {FORMATS}, got {format!r}")


def read_items(
    path: str, format: str | None, dims: int | None, progress: LineProgress | None = None
) -> list[dict[str, Any]]:
    """The checked items of a source (``read_source(...).items``)."""
    return read_source(path, format, dims, progress).items


async def write_source(
    index: LocalIndex, source: Source, progress: Progress | None = None, upsert: bool = False
) -> int:
    """Insert (or upsert) every item of ``source`` in one commit; returns how many."""
    write = index.upsert_many if upsert else index.insert_many
    return len(await write(source.items, progress=progress))


async def import_into(
    index: LocalIndex,
    path: str,
    format: str | None = None,
    progress: Progress | None = None,
    upsert: bool = False,
    read_progress: LineProgress | None = None,
) -> int:
    """Load every item of a source into an open index in one commit (all or nothing); returns how many."""
    if is_bundle(path, format):
        return await import_bundle(index, path, "upsert" if upsert else "insert", progress)
    source = read_source(path, format, index.dims, read_progress)
    return await write_source(index, source, progress=progress, upsert=upsert)


async def import_bundle(index: LocalIndex, path: str, mode: str = "insert", progress: Progress | None = None) -> int:
    """Restore a bundle file into an open index (``pyapp.bundle.MODES``); returns how many items it held."""
    with open_source(os.fspath(path)) as handle:
        return (await restore(index, handle, mode, progress))["restored"]
