"""What changed after a commit: the rows a later commit wrote and the ids a later commit deleted.

Why here: sync (``pyapp.sync``) and delta bundles (``pyapp.bundle``) need "everything after commit N" from
any store, without replaying logs that compaction has folded away. Every row carries the stamp of the commit
that last wrote it and every delete leaves a tombstone (``pyapp.rows``), so the answer is one pass over the
rows. Reads only; the row list is looked up again per batch, as ``iter_items`` does, because rows move when
other rows are deleted between batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .rows import ROW_SEQ, IndexRows
from .stores import Row


@dataclass(frozen=True)
class Tombstone:
    """An id deleted by commit ``commit`` at ``time`` (ms since the epoch)."""

    id: str
    commit: int
    time: int


def changed_ids(state: IndexRows, since: int | None) -> list[str]:
    """Ids of the rows written after commit ``since`` (all rows when None), in insertion order."""
    rows = state.rows if since is None else [row for row in state.rows if row.commit > since]
    return [row.id for row in sorted(rows, key=ROW_SEQ)]


def tombstones_after(state: IndexRows, since: int | None) -> list[Tombstone]:
    """Deletes after commit ``since``, oldest first (a full bundle, ``since`` None, carries none)."""
    if since is None:
        return []
    found = [Tombstone(i, c, t) for i, (c, t) in state.tombstones.items() if c > since]
    return sorted(found, key=lambda t: (t.commit, t.id))


def read_rows(state: IndexRows, ids: list[str]) -> Iterator[tuple[Row, bytes]]:
    """``(row, float32 vector bytes)`` for the ids still present, in the given order."""
    row_of = state.row_of
    found = [r for r in map(row_of.get, ids) if r is not None]
    if not found:
        return iter(())
    blob = bytes(state.kernel.get_rows(found))
    width = state.kernel.dims * 4
    return ((state.rows[r], blob[k * width : (k + 1) * width]) for k, r in enumerate(found))


def versions_of(state: IndexRows, ids: list[str]) -> dict[str, tuple[Row, bytes] | Tombstone]:
    """For each id the index knows: its current ``(row, float32 bytes)``, or its tombstone if deleted."""
    out: dict[str, tuple[Row, bytes] | Tombstone] = {row.id: (row, vector) for row, vector in read_rows(state, ids)}
    for item_id in ids:
        if item_id not in out and item_id in state.tombstones:
            commit, time = state.tombstones[item_id]
            out[item_id] = Tombstone(item_id, commit, time)
    return out
