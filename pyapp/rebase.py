"""Re-checking a staged commit against the newest state, when other writers (tabs) committed meanwhile.

Why: ops are staged against the state as it was when the call began (ids checked, ``seq`` numbered,
metadata updates carrying the item's vector and text). With a store that has shared writers
(IndexedDB: every tab writes), another tab may have committed since. At commit time, under the store's
commit lock and once those commits are applied, the staged ops are derived again from the newest state,
so the result is what the same calls would have done had they started now:

* an insert whose id another writer took meanwhile fails with ``DuplicateId`` (nothing is committed);
* a new item gets the next ``seq`` after the newest (insertion order stays a total order across tabs);
* an upsert keeps the ``seq`` its item has now; if another writer deleted the item, it is inserted again;
* a metadata update carries the newest text and vector, or fails with ``InvalidInput`` when the item is gone.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import DuplicateId, InvalidInput
from .rows import IndexRows
from .stores import Delete, Op, Put, Row

NEW, EXISTING = "new", "existing"


def _kinds(count: int, intents: Sequence[tuple[int, int, str]]) -> list[str | None]:
    """Each op's promise ("new", "existing" or None for upsert/delete), from the staged runs."""
    kinds: list[str | None] = [None] * count
    for start, end, kind in intents:
        kinds[start:end] = [kind] * (end - start)
    return kinds


def rebase(rows: IndexRows, ops: Sequence[Op], intents: Sequence[tuple[int, int, str]]) -> list[Op]:
    """The staged ``ops`` re-derived against ``rows`` (the newest state); raises before anything is written."""
    kinds = _kinds(len(ops), intents)
    overlay: dict[str, Put | None] = {}  # this commit's own earlier ops: None = deleted
    row_of, stored = rows.row_of, rows.rows
    next_seq = rows.next_seq
    commit = rows.next_commit  # other writers took the stamp these ops were staged with
    out: list[Op] = []
    for op, kind in zip(ops, kinds):
        if isinstance(op, Delete):
            overlay[op.id] = None
            out.append(op._replace(commit=commit))
            continue
        row = op.row
        if row.id in overlay:
            earlier = overlay[row.id]
            current: Row | None = None if earlier is None else earlier.row
        else:
            earlier = None
            at = row_of.get(row.id)
            current = None if at is None else stored[at]
        if kind == NEW and current is not None:
            raise DuplicateId(f"id {row.id!r} was added in another tab meanwhile; nothing was saved")
        if kind == EXISTING:
            if current is None:
                raise InvalidInput(f"no item with id {row.id!r} (deleted in another tab meanwhile); nothing was saved")
            vector = earlier.vector if earlier is not None else rows.vector_of(row.id)
            new = Put(Row(row.id, row.metadata, current.text, current.seq, commit, row.time), vector)
        elif current is not None:
            new = Put(row._replace(seq=current.seq, commit=commit), op.vector)
        else:
            new = Put(row._replace(seq=next_seq, commit=commit), op.vector)
            next_seq += 1
        overlay[row.id] = new
        out.append(new)
    return out
