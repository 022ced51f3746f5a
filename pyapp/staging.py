"""Turning write calls into validated ``Put``/``Delete`` ops, staged before anything is committed.

A ``Staged`` area holds the ops of one commit (a single call, a ``batch()`` or a ``begin_update``) plus an
overlay that answers "does id X exist, and what is it now" with the staged ops taken into account, so a batch
sees its own writes. Nothing here touches the store or the in-memory rows: a rejected call leaves no trace.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import repeat
from typing import Any

from .embed.base import Embedder, Progress
from .errors import DimensionMismatch, DuplicateId, InvalidInput, InvalidVector, NoEmbedder, describe
from .metadata import check_no_lone_surrogates, validate_metadata
from .rows import IndexRows
from .stores import Delete, Op, Put, Row
from .types import Item

MAX_ID_LENGTH = 512
_ITEM_KEYS = frozenset(("id", "vector", "metadata", "text"))

# pyapp.sync copies other writers' versions: they keep their writer's time (last writer wins compares it)
_KEPT_TIMES: ContextVar[Mapping[str, int] | None] = ContextVar("clinvec-kept-times", default=None)


@contextmanager
def keep_times(times: Mapping[str, int]) -> Iterator[None]:
    """Writes staged inside stamp the ids in ``times`` with that time instead of now (sync only)."""
    token = _KEPT_TIMES.set(times)
    try:
        yield
    finally:
        _KEPT_TIMES.reset(token)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_id(item_id: Any) -> str:
    if type(item_id) is not str or not item_id or len(item_id) > MAX_ID_LENGTH:
        raise InvalidInput(
            f"an id must be a non-empty string of at most {MAX_ID_LENGTH} characters, got {describe(item_id)}"
        )
    check_no_lone_surrogates(item_id, "id")
    return item_id


def check_text(text: Any) -> str | None:
    if text is not None:
        if type(text) is not str:
            raise InvalidInput(f"text must be a string or None, got {type(text).__name__}")
        check_no_lone_surrogates(text, "text")
    return text


def item_dicts(items: Any) -> list[dict[str, Any]]:
    """The items of an ``insert_many``/``upsert_many`` call as dicts, or ``InvalidInput`` for anything else."""
    if isinstance(items, (str, bytes, dict, Item)) or not isinstance(items, Iterable):
        raise InvalidInput("items must be a list of dicts with id/vector/metadata/text, or of Items")
    out = []
    for position, item in enumerate(items):
        if isinstance(item, Item):
            out.append(item.to_dict())
        elif isinstance(item, dict):
            if not item.keys() <= _ITEM_KEYS:
                raise InvalidInput(f"item {position} has unknown keys {sorted(map(str, set(item) - _ITEM_KEYS))}")
            out.append(item)
        else:
            raise InvalidInput(f"item {position} must be a dict with id/vector/metadata/text or an Item")
    return out


class Staged:
    """Ops of one pending commit plus an overlay answering 'does id X exist / what is it now'."""

    def __init__(self, next_seq: int, base: int = 0, commit: int = 0) -> None:
        self.ops: list[Op] = []
        self.overlay: dict[str, Put | Delete] = {}
        self.next_seq = next_seq
        self.commit = commit  # the sync stamps of this commit's ops (re-stamped by rebase if others committed)
        self.time = now_ms()
        # For stores with shared writers (pyapp.rebase): how many foreign changes the state had when staging
        # began, and what each run of ops promised ("new": insert, "existing": metadata update), so the ops
        # can be re-checked against the newest state at commit time.
        self.base = base
        self.intents: list[tuple[int, int, str]] = []  # (first op, end, intent)
        self.closed = False  # set once committed or rolled back: a straggling write must not land in it
        # When the ops are exactly one call's new items, their prepared vectors back to back: a bulk load
        # can then hand this one buffer to the kernel instead of re-joining 50k slices.
        self.block: memoryview | None = None
        self._building: asyncio.Lock | None = None

    def building(self) -> asyncio.Lock:
        """Held while one call stages into a shared area (tasks started inside a batch), so two calls cannot
        both pass the duplicate-id check before either has staged."""
        if self._building is None:
            self._building = asyncio.Lock()
        return self._building

    def add(self, op: Op) -> None:
        self.ops.append(op)
        self.overlay[op.row.id if isinstance(op, Put) else op.id] = op
        self.block = None

    def extend(self, puts: list[Put], block: memoryview | None = None) -> None:
        self.block = block if not self.ops else None
        self.ops.extend(puts)
        self.overlay.update({put.row.id: put for put in puts})


class Stager:
    """Validates write calls against the committed rows plus a ``Staged`` overlay and stages their ops."""

    def __init__(self, rows: IndexRows, dims: int) -> None:
        self._rows = rows
        self._dims = dims
        self.embedder: Embedder | None = None

    def current(self, item_id: str, staged: Staged | None) -> Row | None:
        """The row as it stands including staged ops (None when absent)."""
        if staged is not None and item_id in staged.overlay:
            op = staged.overlay[item_id]
            return op.row if isinstance(op, Put) else None
        index = self._rows.row_of.get(item_id)
        return None if index is None else self._rows.rows[index]

    def _vector_bytes(self, item_id: str, staged: Staged) -> bytes | memoryview:
        op = staged.overlay.get(item_id)
        if isinstance(op, Put):
            return op.vector
        return self._rows.vector_of(item_id)

    async def _vectors_for(self, entries: list[dict[str, Any]], progress: Progress | None = None) -> bytes:
        """Prepared vectors for entries: given vectors are packed, missing ones embedded from their text."""
        kernel = self._rows.kernel
        vectors = [e.get("vector") for e in entries]
        missing = [i for i, v in enumerate(vectors) if v is None]
        given = [i for i, v in enumerate(vectors) if v is not None] if missing else None  # None: all given
        packed: dict[int, bytes] = {}
        width = self._dims * 4
        joined: Any = b""
        if vectors and (given is None or given):
            raw = kernel.pack(vectors if given is None else [vectors[i] for i in given])
            if not missing:
                joined = raw  # the common bulk case: no per-item slicing and re-joining
            else:
                for j, i in enumerate(given or ()):
                    packed[i] = raw[j * width : (j + 1) * width]
        if missing:
            if self.embedder is None:
                raise NoEmbedder(
                    f"item {missing[0]} has no vector and this index has no embedder; "
                    "pass a vector or open the index with an embedder"
                )
            texts = [entries[i].get("text") for i in missing]
            if any(not t for t in texts):
                raise InvalidInput("an item without a vector needs non-empty text to embed")
            raw = await self.embedder.embed_raw(texts, progress)
            for j, i in enumerate(missing):
                packed[i] = raw[j * width : (j + 1) * width]
        if packed:
            joined = b"".join(packed[i] for i in range(len(entries)))
        try:
            return kernel.prepare(joined, len(entries))
        except (InvalidVector, DimensionMismatch) as exc:  # name the item, not the position in a sub-batch
            raise type(exc)(str(exc).replace("vector ", "item ", 1)) from None

    async def puts(
        self, staged: Staged, entries: list[dict[str, Any]], replace: bool, progress: Progress | None = None
    ) -> list[str]:
        """Stage one Put per entry; returns the ids (uuid4 for entries without one)."""
        # Column by column with comprehensions (a third of the per-item cost of one loop at 50k items);
        # the slow, precise checks only run to name the first offender.
        ids: list[str] = [str(uuid.uuid4()) if (i := e.get("id")) is None else i for e in entries]
        if not all(type(i) is str and 0 < len(i) <= MAX_ID_LENGTH and i.isascii() for i in ids):
            for item_id in ids:
                check_id(item_id)
        seen: set[str] = set(ids)
        if len(seen) != len(ids):
            once: set[str] = set()
            for item_id in ids:
                if item_id in once:
                    raise DuplicateId(f"id {item_id!r} appears twice in one call")
                once.add(item_id)
        metadatas = [{} if (m := e.get("metadata")) is None else validate_metadata(m) for e in entries]
        texts = [e.get("text") for e in entries]
        if not all(t is None or (type(t) is str and t.isascii()) for t in texts):
            texts = [check_text(t) for t in texts]
        if not replace:
            # one C-speed set intersection instead of a lookup per item; only clashes are looked at again
            clash = seen.intersection(self._rows.row_of)
            clash.update(seen.intersection(staged.overlay))
            for item_id in (i for i in ids if i in clash):
                if self.current(item_id, staged) is not None:
                    raise DuplicateId(f"id {item_id!r} already exists; use upsert to replace it")
        vectors = memoryview(await self._vectors_for(entries, progress))  # slices below copy nothing
        width = self._dims * 4
        seqs: Sequence[int] = range(staged.next_seq, staged.next_seq + len(ids))  # inserts: all new (checked above)
        all_new = True
        if replace:  # a replaced item keeps its place in insertion order
            kept: list[int] = []
            for item_id in ids:
                previous = self.current(item_id, staged)
                if previous is not None:
                    kept.append(previous.seq)
                    all_new = False
                else:
                    kept.append(staged.next_seq)
                    staged.next_seq += 1
            seqs = kept
        else:
            staged.next_seq += len(ids)
        # map() over NamedTuple constructors: a third faster than a Python loop for 50k items
        kept = _KEPT_TIMES.get()
        times = repeat(staged.time) if kept is None else [kept.get(i, staged.time) for i in ids]
        rows = map(Row, ids, metadatas, texts, seqs, repeat(staged.commit), times)
        slices = [vectors[start : start + width] for start in range(0, len(ids) * width, width)]
        if not replace:
            staged.intents.append((len(staged.ops), len(staged.ops) + len(ids), "new"))
        staged.extend(list(map(Put, rows, slices)), vectors if all_new else None)
        return ids

    def metadata_update(self, staged: Staged, item_id: str, metadata: Any) -> None:
        """Stage new metadata for an existing item; its vector, text and place stay."""
        current = self.current(item_id, staged)
        if current is None:
            raise InvalidInput(f"no item with id {item_id!r}")
        clean = validate_metadata(metadata)
        staged.intents.append((len(staged.ops), len(staged.ops) + 1, "existing"))
        row = Row(item_id, clean, current.text, current.seq, staged.commit, staged.time)
        staged.add(Put(row, self._vector_bytes(item_id, staged)))

    def deletes(self, staged: Staged, ids: list[str]) -> int:
        """Stage a Delete per existing id; returns how many existed."""
        count = 0
        kept = _KEPT_TIMES.get() or {}
        for item_id in dict.fromkeys(ids):
            if self.current(item_id, staged) is not None:
                staged.add(Delete(item_id, staged.commit, kept.get(item_id, staged.time)))
                count += 1
        return count
