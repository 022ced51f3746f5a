"""Export every item of an index to a JSONL, CSV or bundle file, through the public ``iter_items`` API only.

Round-trip exact: stored vectors are float32, and the ``repr`` of a float32 widened to a Python float
parses back to the same float32. The file is written under a temporary name in the target's folder,
fsynced and renamed over the target, so a reader never sees half a file; on any failure the temporary
file is removed and the target is left as it was. Writing into the index's own folder is refused (it
would overwrite, or be swept up with, the index's files). A bundle (``.clinvec``, docs/BUNDLE.md) also
carries the index's configuration and model identity.
"""

from __future__ import annotations

import os
import tempfile
from typing import IO, TYPE_CHECKING

from ..bundle.format import EXTENSION
from ..bundle.writer import write as write_bundle
from ..errors import InvalidInput, StorageError
from .csvio import write_csv_header, write_csv_record
from .jsonl import write_jsonl_record

if TYPE_CHECKING:
    from ..embed.base import Progress
    from ..index import LocalIndex

EXPORT_FORMATS = ("jsonl", "csv", "bundle")


def export_format(path: str) -> str:
    """The format a target's extension names: ``.clinvec`` a bundle, ``.csv`` CSV, anything else JSONL."""
    lower = os.fspath(path).lower()
    if lower.endswith(EXTENSION):
        return "bundle"
    return "csv" if lower.endswith(".csv") else "jsonl"


def check_target(index: LocalIndex, path: str) -> None:
    """Refuse a target that is a folder or lies inside the index's own folder."""
    if os.path.isdir(path):
        raise InvalidInput(f"cannot export to {path!r}: it is a folder; name a file")
    location = index.location
    if not isinstance(location, str) or not os.path.isdir(location):
        return  # memory:// and IndexedDB indexes have no folder to collide with
    home = os.path.realpath(location)
    target = os.path.realpath(path)
    if os.path.commonpath([home, target]) == home:
        raise InvalidInput(f"refusing to export to {path!r}: it is inside the index's own folder {location!r}")


async def export_items(
    index: LocalIndex,
    path: str,
    format: str | None = "jsonl",
    progress: Progress | None = None,
    since: int | None = None,
    int8: bool = False,
) -> int:
    """Write every committed item in insertion order to ``path``; returns how many.

    ``format=None`` picks it from the extension (``export_format``). Raises ``InvalidInput`` for a bad format
    or target, or an item that cannot be written as UTF-8 JSON (naming its id), and ``StorageError`` when the
    file system refuses the write. ``progress(done, total)`` is called for bundles. Bundles only: ``since``
    writes a delta (the commits after it), ``int8`` stores int8 vectors with scales (docs/BUNDLE.md).
    """
    if format is None:
        format = export_format(path)
    if format not in EXPORT_FORMATS:
        raise InvalidInput(f"export format must be one of {EXPORT_FORMATS}, got {format!r}")
    if format != "bundle" and (since is not None or int8):
        raise InvalidInput("since and int8 apply to bundles only")
    path = os.fspath(path)
    check_target(index, path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise StorageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    try:
        if format == "bundle":
            with open(fd, "wb") as raw:
                count = await write_bundle(index, raw, progress, since=since, int8=int8)
                raw.flush()
                os.fsync(raw.fileno())
        else:
            with open(fd, "w", encoding="utf-8", newline="") as handle:
                count = await _write_all(index, handle, format)
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise StorageError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise
    return count


async def _write_all(index: LocalIndex, handle: IO[str], format: str) -> int:
    writer = write_csv_header(handle) if format == "csv" else None
    count = 0
    async for batch in index.iter_items():
        for item in batch:
            record = item.to_dict()
            try:
                if writer is None:
                    write_jsonl_record(handle, record)
                else:
                    write_csv_record(writer, record)
            except (ValueError, UnicodeError) as exc:  # lone surrogates or huge ints stored by older versions
                raise InvalidInput(f"item {ascii(item.id)} cannot be exported: {_reason(exc)}") from None
            count += 1
    return count


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeEncodeError):
        return f"a lone surrogate {exc.object[exc.start : exc.end]!r} is not UTF-8 text"
    return str(exc)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
