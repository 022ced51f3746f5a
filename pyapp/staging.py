"""Turning write calls into validated ``Put``/``Delete`` ops, staged before anything is committed.

A ``Staged`` area holds the ops of one commit (a single call, a ``batch()`` or a ``begin_update``) plus an
overlay that answers "does id X exist, and what is it now" with the staged ops taken into account, so a batch
sees its own writes. Nothing here touches the store or the in-memory rows: a rejected call leaves no trace.
"""

from __future__ import annotations

import asyncio
import math
import operator
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain, repeat
from typing import Any

from .embed.base import Embedder, Progress
from .errors import DimensionMismatch, DuplicateId, InvalidInput, InvalidVector, NoEmbedder, describe
from .metadata import MAX_INT_DIGITS, check_no_lone_surrogates, validate_metadata
from .rows import IndexRows
from .stores import Delete, Op, Put, Row
from .types import Item

MAX_ID_LENGTH = 512
_ITEM_KEYS = frozenset(("id", "vector", "metadata", "text"))
_NONE = type(None)
_INT_BOUND = 10**MAX_INT_DIGITS
_FLAT_VALUE_TYPES = frozenset((str, int, bool, float, _NONE))

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


async def embed_missing(
    embedder: Embedder | None, entries: list[dict[str, Any]], missing: list[int], progress: Progress | None
) -> Any:
    """Embed, in one batch, the texts of the items at ``missing`` (they came without a vector): every engine's
    write path. ``NoEmbedder`` without an embedder, ``InvalidInput`` when one of them has no text."""
    if embedder is None:
        raise NoEmbedder(
            f"item {missing[0]} has no vector and this index has no embedder; "
            "pass a vector or open the index with an embedder"
        )
    texts = [entries[i].get("text") for i in missing]
    if any(not t for t in texts):
        raise InvalidInput("an item without a vector needs non-empty text to embed")
    return await embedder.embed_raw(texts, progress)


def column(entries: list[dict[str, Any]], key: str) -> list[Any]:
    """One field of every entry (None where absent), read at C speed: no Python frame per item."""
    return list(map(dict.get, entries, repeat(key)))


def item_dicts(items: Any) -> list[dict[str, Any]]:
    """The items of an ``insert_many``/``upsert_many`` call as dicts, or ``InvalidInput`` for anything else."""
    if isinstance(items, (str, bytes, dict, Item)) or not isinstance(items, Iterable):
        raise InvalidInput("items must be a list of dicts with id/vector/metadata/text, or of Items")
    # The bulk case, checked column-wise in C: a list of plain dicts with known keys only. Anything else (an
    # Item, a dict subclass, an unknown key) takes the loop below, which also names the offending item.
    if type(items) is list and set(map(type, items)) <= {dict} and all(map(_ITEM_KEYS.issuperset, items)):
        return list(items)
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


def _plain_ids(ids: list[Any]) -> bool:
    """True when every id is an ASCII str of 1..MAX_ID_LENGTH characters (no per-item check needed)."""
    return (
        set(map(type, ids)) == {str}
        and all(map(str.isascii, ids))
        and 0 < min(map(len, ids))
        and max(map(len, ids)) <= MAX_ID_LENGTH
    )


def _flat_copies(metadatas: list[Any]) -> list[dict[str, Any]] | None:
    """Copies of the call's metadata (None -> ``{}``) when every one is a flat dict that ``validate_metadata``
    would accept as it is (ASCII str keys; ASCII str, bool, None, finite float or bounded int values), checked
    over all values at once; else None, and each goes through ``validate_metadata``."""
    types = set(map(type, metadatas))
    if not types <= {dict, _NONE}:
        return None
    dicts = metadatas if _NONE not in types else [m for m in metadatas if m is not None]
    keys = set(chain.from_iterable(dicts))
    if not (set(map(type, keys)) <= {str} and all(map(str.isascii, keys))):
        return None
    values = list(chain.from_iterable(map(dict.values, dicts)))
    kinds = set(map(type, values))
    if not kinds <= _FLAT_VALUE_TYPES:
        return None
    if str in kinds and not all(map(str.isascii, values if kinds == {str} else _of(values, str))):
        return None
    if int in kinds:
        ints = _of(values, int)
        if not (-_INT_BOUND < min(ints) and max(ints) < _INT_BOUND):
            return None
    if float in kinds and not all(map(math.isfinite, _of(values, float))):
        return None
    if _NONE in types:
        return [{} if m is None else dict(m) for m in metadatas]
    return list(map(dict, metadatas))


def _of(values: list[Any], kind: type) -> list[Any]:
    return [v for v in values if type(v) is kind]


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
        vectors = column(entries, "vector")
        missing: list[int] = []
        given: list[int] | None = None  # None: all given
        if any(map(operator.is_, vectors, repeat(None))):
            missing = [i for i, v in enumerate(vectors) if v is None]
            given = [i for i, v in enumerate(vectors) if v is not None]
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
            raw = await embed_missing(self.embedder, entries, missing, progress)
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
        # Column by column, each check one C-level pass (map/set/all over a column: no Python frame per item);
        # the slow, precise per-item checks only run to name the first offender.
        ids: list[str] = column(entries, "id")
        if any(map(operator.is_, ids, repeat(None))):
            ids = [str(uuid.uuid4()) if i is None else i for i in ids]
        if ids and not _plain_ids(ids):
            for item_id in ids:
                check_id(item_id)
        seen: set[str] = set(ids)
        if len(seen) != len(ids):
            once: set[str] = set()
            for item_id in ids:
                if item_id in once:
                    raise DuplicateId(f"id {item_id!r} appears twice in one call")
                once.add(item_id)
        given_metadata = column(entries, "metadata")
        metadatas = _flat_copies(given_metadata)
        if metadatas is None:  # nested values, or something to reject: validate_metadata names the path
            metadatas = [{} if m is None else validate_metadata(m) for m in given_metadata]
        texts = column(entries, "text")
        if not (set(map(type, texts)) <= {str, _NONE} and all(map(str.isascii, filter(None, texts)))):
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
        # Rows and Puts built by tuple.__new__ over zipped columns: a NamedTuple's own constructor is a Python
        # function, one frame per item; this is the same tuple subclass made in C.
        kept = _KEPT_TIMES.get()
        times = repeat(staged.time) if kept is None else [kept.get(i, staged.time) for i in ids]
        rows = map(tuple.__new__, repeat(Row), zip(ids, metadatas, texts, seqs, repeat(staged.commit), times))
        end = len(ids) * width
        slices = map(vectors.__getitem__, map(slice, range(0, end, width), range(width, end + width, width)))
        if not replace:
            staged.intents.append((len(staged.ops), len(staged.ops) + len(ids), "new"))
        staged.extend(list(map(tuple.__new__, repeat(Put), zip(rows, slices))), vectors if all_new else None)
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
