"""The app's backup and restore rules on bytes in memory: what the page's worker calls, tested on CPython.

Why here and not in the worker: the worker can only be exercised through Chromium; the file name, the plan a
user confirms and the restore mode are rules, so they live beside the format and run in the CPython suite.
The page restores by merging (``upsert``): notes the backup does not hold are kept, notes it holds come back
as they were in the backup. Nothing is overwritten before the user has seen how many notes would be.
"""

from __future__ import annotations

import io
import re
import time
from typing import TYPE_CHECKING, Any

from .format import EXTENSION
from .restore import describe, plan, restore
from .writer import write

if TYPE_CHECKING:
    from ..embed.base import Progress
    from ..index import LocalIndex

RESTORE_MODE = "upsert"
MAX_BUNDLE_BYTES = 2 * 1024**3  # what the page will read into memory at once


def backup_name(location: str, now: float | None = None) -> str:
    """``<index>-<YYYY-MM-DD>.clinvec``: the index's last path part, made safe for any file system."""
    base = re.split(r"[\\/]", location.rstrip("/\\"))[-1] or "clinvec"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip(".-") or "clinvec"
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
    return f"{safe}-{day}{EXTENSION}"


async def backup_bytes(index: LocalIndex, progress: Progress | None = None) -> tuple[bytes, dict[str, Any]]:
    """The whole index as bundle bytes, and ``{"name", "items", "bytes"}`` for the download."""
    buf = io.BytesIO()
    count = await write(index, buf, progress)
    data = buf.getvalue()
    return data, {"name": backup_name(index.location), "items": count, "bytes": len(data)}


async def restore_plan(index: LocalIndex, data: bytes) -> dict[str, Any]:
    """Verify the bundle, check it fits, and say in words what restoring it will do (``message``);
    ``confirm`` is True when notes would be overwritten or kept beside the backup's."""
    outcome = await plan(index, io.BytesIO(data))
    parts = [f"The backup holds {outcome['items']} note item{'s' if outcome['items'] != 1 else ''}"]
    if outcome["created"]:
        parts[0] += f" (made {outcome['created']}, model {describe(outcome['embedder'])})"
    parts.append(f"{outcome['new']} will be added")
    if outcome["overwrite"]:
        parts.append(f"{outcome['overwrite']} will REPLACE the note with the same id here")
    if outcome["kept"]:
        parts.append(f"{outcome['kept']} note item{'s' if outcome['kept'] != 1 else ''} here not in the backup stay")
    message = "; ".join(parts) + ". All or nothing: a failure changes nothing."
    return {**outcome, "message": message, "confirm": bool(outcome["overwrite"] or outcome["kept"])}


async def restore_bytes(index: LocalIndex, data: bytes, progress: Progress | None = None) -> dict[str, Any]:
    """Merge the bundle into the index (``RESTORE_MODE``) in one commit; counts and the new total."""
    outcome = await restore(index, io.BytesIO(data), RESTORE_MODE, progress)
    return {**outcome, "items": await index.count()}
