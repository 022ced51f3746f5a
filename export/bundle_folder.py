"""Writing a bundle folder so that a failed or interrupted run never leaves a half-written bundle behind.

Both exports (``pipeline`` for embedders, ``finetune`` for classifiers) build into a hidden sibling folder and
rename it into place only once the manifest is written; one home for that rule keeps the two from drifting.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ExportError
from .manifest import MANIFEST, is_bundle

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    """The exports' default progress log: stdout is kept for the command's own output."""
    print(message, file=sys.stderr, flush=True)


def check_replaceable(out_dir: Path) -> None:
    """Only an empty folder or an earlier bundle may be replaced: never delete a user's unrelated folder."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ExportError(f"--out {out_dir} exists and is not a folder")
    if any(out_dir.iterdir()) and not is_bundle(out_dir):
        raise ExportError(f"--out {out_dir} is not empty and holds no bundle {MANIFEST}; refusing to replace it")


@contextmanager
def staged_bundle(out_dir: Path) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``out_dir`` to build in; swap it into place when the block succeeds,
    remove it when the block raises (the previous bundle, if any, is then left untouched)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished bundle into place; the old one is removed only after the new one is there."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        out_dir.rename(old)
    try:
        staging.rename(out_dir)
    except BaseException:
        if old is not None:
            old.rename(out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
