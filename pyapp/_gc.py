"""Pause Python's cyclic garbage collector around bulk allocation.

Why: loading or staging 50k items allocates 100k+ containers, and every few hundred allocations (the
first ``gc.get_threshold()``) the collector scans the young generation, with full passes over everything
alive as it grows: a large share of a bulk insert's CPU, for objects that are never cyclic garbage.
Reference counting still frees memory at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK = 1000  # below this many items the collector's cost is noise


@contextmanager
def paused_gc(items: int = BULK) -> Iterator[None]:
    """Disable the collector for the block when ``items`` >= ``BULK`` (restores the previous state)."""
    if items < BULK or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
