"""Apply another side's bundle by the sync rule: last writer wins per id by commit time; deletes win ties.

Why a merge and not a restore: both sides may have changed the same id since they last met. Each version
carries its writer's time (``Row.time``; a delete's tombstone too), so every side decides alike, in any order:
the newer time wins; at equal times a delete wins, then the larger content hash (deterministic on both sides).
A version that loses is never dropped silently: it is listed in the log with its text and metadata. Whatever
is applied keeps its writer's time (``staging.keep_times``), so the next side compares the same stamps.

All or nothing: the decisions and writes happen inside one ``index.batch()``, committed only after the
bundle's trailer (sha256) has been checked; a refused or damaged bundle changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from ..bundle.format import BundleError
from ..bundle.reader import Batch, BundleReader
from ..bundle.restore import check_fits, describe
from ..changes import Tombstone
from ..staging import keep_times

if TYPE_CHECKING:
    from ..embed.base import Progress
    from ..index import LocalIndex
    from ..stores import Row

PREVIEW = 200  # characters of a losing version's text kept in the log


class ModelMismatch(BundleError):
    """The other side's vectors come from another model (or one side records none): nothing was synced."""


def check_same_model(mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> None:
    """Sync is stricter than restore: both sides must record the same model, or both none."""
    if not mine and not theirs:
        return
    keys = ("model", "variant") + (
        ("sha256",) if mine and theirs and mine.get("sha256") and theirs.get("sha256") else ()
    )
    if not mine or not theirs or any(mine.get(k) != theirs.get(k) for k in keys):
        raise ModelMismatch(
            f"the other side's vectors come from {describe(theirs)}; this index's come from {describe(mine)}: "
            "they would not compare, so nothing was synced"
        )


def content_key(metadata: Any, text: str | None) -> str:
    """The tie-breaker for two versions written in the same millisecond: the same on every side."""
    blob = json.dumps([metadata, text], sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


@dataclass
class Merged:
    """What one merge did: counts, the log of every version that lost, and the new local position."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    kept: int = 0  # incoming versions that lost to a newer local one (or to a later delete)
    log: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0  # the index's newest commit after the merge
    committed: bool = False  # whether the merge wrote a commit (False: nothing to change)
    source_position: int | None = None  # the other side's position the bundle reflects

    @property
    def moved(self) -> int:
        return self.added + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "kept": self.kept,
            "moved": self.moved,
            "log": self.log,
            "position": self.position,
            "source_position": self.source_position,
        }


def _version(row: Row | dict[str, Any] | Tombstone, side: str) -> dict[str, Any]:
    """A version as the log shows it (text cut to ``PREVIEW`` characters)."""
    if isinstance(row, Tombstone):
        return {"side": side, "deleted": True, "time": row.time}
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    text = get("text")
    return {
        "side": side,
        "deleted": False,
        "time": get("time"),
        "text": text if text is None or len(text) <= PREVIEW else text[:PREVIEW] + "…",
        "metadata": get("metadata"),
    }


class _Merge:
    """The decisions for one bundle, batch by batch, staged into the open ``index.batch()``."""

    def __init__(self, index: LocalIndex, since_local: int | None, here: str, there: str) -> None:
        self.index = index
        self.since_local = since_local  # local versions written after this commit are unsynced edits
        self.here, self.there = here, there
        self.out = Merged()

    def _unsynced(self, commit: int) -> bool:
        return self.since_local is None or commit > self.since_local

    def _lose(self, item_id: str, winner: dict[str, Any], loser: dict[str, Any], rule: str, conflict: bool) -> None:
        self.out.log.append({"id": item_id, "rule": rule, "conflict": conflict, "winner": winner, "overwritten": loser})

    async def batch(self, batch: Batch) -> None:
        ids = [row["id"] for row in batch.rows] + list(batch.deletes)
        known = self.index.versions(ids)
        chosen: list[int] = []
        times: dict[str, int] = {}
        for i, row in enumerate(batch.rows):
            if self._row(row, known.get(row["id"])):
                chosen.append(i)
                times[row["id"]] = row["time"]
        deletes = [t for t in batch.tombstones if self._delete(t, known.get(t["id"]))]
        times.update({t["id"]: t["time"] for t in deletes})
        with keep_times(times):
            if chosen:
                items = batch.items()
                await self.index.upsert_many([items[i] for i in chosen])
            if deletes:
                await self.index.delete_many([t["id"] for t in deletes])

    def _row(self, row: dict[str, Any], local: tuple[Row, bytes] | Tombstone | None) -> bool:
        """Whether the incoming row is applied; logs the version that loses."""
        out, item_id = self.out, row["id"]
        incoming = _version(row, self.there)
        if local is None:
            out.added += 1
            return True
        if isinstance(local, Tombstone):
            if row["time"] > local.time:  # an edit newer than the delete brings the item back
                out.added += 1
                self._lose(item_id, incoming, _version(local, self.here), "newer edit wins over a delete", True)
                return True
            out.kept += 1
            self._lose(item_id, _version(local, self.here), incoming, "delete wins over an older edit", True)
            return False
        mine, _ = local
        if row["time"] == mine.time and row["metadata"] == mine.metadata and row["text"] == mine.text:
            out.unchanged += 1
            return False
        theirs_key = (row["time"], content_key(row["metadata"], row["text"]))
        if theirs_key > (mine.time, content_key(mine.metadata, mine.text)):
            out.updated += 1
            conflict = self._unsynced(mine.commit)
            self._lose(item_id, incoming, _version(mine, self.here), "last writer wins", conflict)
            return True
        out.kept += 1
        self._lose(item_id, _version(mine, self.here), incoming, "last writer wins", True)
        return False

    def _delete(self, tombstone: dict[str, Any], local: tuple[Row, bytes] | Tombstone | None) -> bool:
        """Whether an incoming delete is applied (deletes win ties); logs the version that loses."""
        if local is None or isinstance(local, Tombstone):
            return False  # nothing here to delete
        mine, _ = local
        theirs = {"side": self.there, "deleted": True, "time": tombstone["time"]}
        if tombstone["time"] >= mine.time:
            self.out.deleted += 1
            self._lose(
                tombstone["id"],
                theirs,
                _version(mine, self.here),
                "delete wins over an older edit",
                self._unsynced(mine.commit),
            )
            return True
        self.out.kept += 1
        self._lose(tombstone["id"], _version(mine, self.here), theirs, "newer edit wins over a delete", True)
        return False


async def merge(
    index: LocalIndex,
    fileobj: IO[bytes],
    since_local: int | None,
    here: str = "here",
    there: str = "there",
    progress: Progress | None = None,
) -> Merged:
    """Merge the bundle in ``fileobj`` into ``index`` by the sync rule, in one commit after its sha256 check.

    ``since_local``: the local commit the other side has already seen (its rows written later are unsynced
    edits, so losing them is a conflict); None when the two sides have never met. ``here``/``there`` name the
    sides in the log. ``ModelMismatch`` when the models differ, ``BundleError`` on any defect: nothing changes."""
    reader = BundleReader(fileobj)
    check_same_model(index.manifest.get("embedder"), reader.manifest["index"].get("embedder"))
    check_fits(index.manifest, reader.manifest)
    work = _Merge(index, since_local, here, there)
    total = reader.manifest["items"]
    before = index.position
    done = 0
    if progress is not None:
        progress(0, total)
    async with index.batch():
        for batch in reader.batches():
            await work.batch(batch)
            done += len(batch.rows)
            if progress is not None:
                progress(done, max(done, total))
    work.out.position = index.position
    work.out.committed = index.position != before
    work.out.source_position = reader.manifest.get("position")
    return work.out
