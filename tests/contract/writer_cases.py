"""The shared-writers contract: several ``LocalIndex`` objects writing one index, as browser tabs do.

Why its own file: the main contract (``cases.py``) opens indexes by location, where the file and memory stores
have one writer at a time. These cases take a *store factory* instead, so the same cases run on CPython
against ``MemoryStore(name, shared_writers=True)`` (``test_writers_cpython.py``) and inside the page against
``IndexedDBStore`` (``tests/browser/test_tabs.py``), and both must observe the same. Each ``LocalIndex``
opened on its own store object stands for one tab. Like ``cases.py`` this source is shipped into the page's
worker, so it uses only pyapp and the standard library.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pyapp import DuplicateId, InvalidInput, LocalIndex, ReadOnlyIndex
from pyapp.index import BULK_SNAPSHOT_OPS
from pyapp.stores import Store

DIMS = 8


def vec(seed: int) -> list[float]:
    """A reproducible vector with entries k/1024 (exact in float32), never all zero."""
    out = []
    for i in range(DIMS):
        x = (seed * 1_000_003 + i * 7919) & 0xFFFFFFFF
        x = ((x >> 16) ^ x) * 0x45D9F3B & 0xFFFFFFFF
        out.append(((x % 2001) - 1000) / 1024)
    return out if any(out) else [1.0] * DIMS


class Tabs:
    """Fresh locations, one store object per opened index ("tab"); closes and drops everything at the end."""

    def __init__(self, new_location: Callable[[], str], new_store: Callable[[str], Store]) -> None:
        self._new_location = new_location
        self.new_store = new_store
        self.locations: list[str] = []
        self.opened: list[LocalIndex] = []

    def location(self) -> str:
        self.locations.append(self._new_location())
        return self.locations[-1]

    async def create(self, location: str, **kwargs: Any) -> LocalIndex:
        kwargs.setdefault("dims", DIMS)
        idx = await LocalIndex.create(self.new_store(location), **kwargs)
        self.opened.append(idx)
        return idx

    async def open(self, location: str, read_only: bool = False) -> LocalIndex:
        idx = await LocalIndex.open(self.new_store(location), read_only=read_only)
        self.opened.append(idx)
        return idx

    async def cleanup(self) -> None:
        for idx in self.opened:
            try:
                await idx.close()
            except Exception:  # noqa: BLE001, S110 - best effort: the case already reported its failure
                pass
        for location in self.locations:
            try:
                await LocalIndex.drop(self.new_store(location))
            except Exception:  # noqa: BLE001, S110 - best effort
                pass


async def ids(idx: LocalIndex) -> list[str]:
    return await idx.ids()


async def raises(error: type[BaseException], awaitable: Awaitable[Any]) -> str:
    try:
        await awaitable
    except error as exc:
        return type(exc).__name__
    raise AssertionError(f"expected {error.__name__}")


# --------------------------------------------------------------------------- cases


async def case_alternating_writers_lose_nothing(tabs: Tabs) -> Any:
    """Two writers alternately add 50 items each: both end with all 100, in one insertion order, and so does
    a fresh open."""
    loc = tabs.location()
    a = await tabs.create(loc, indexed=["tab"])
    b = await tabs.open(loc)
    for i in range(50):
        await a.insert(vec(2 * i), id=f"a{i}", metadata={"tab": "a", "i": i}, text=f"note a {i}")
        await b.insert(vec(2 * i + 1), id=f"b{i}", metadata={"tab": "b", "i": i}, text=f"note b {i}")
    assert await b.count() == 100  # b's last commit caught up with a's
    assert await a.count() == 99  # a has not looked since
    assert await a.refresh() == 1 and await a.refresh() == 0 and await b.refresh() == 0
    order = [f"{t}{i}" for i in range(50) for t in "ab"]
    assert await ids(a) == order and await ids(b) == order
    assert await a.count({"tab": "b"}) == 50
    fresh = await tabs.open(loc, read_only=True)
    assert await ids(fresh) == order
    hits = [h.id for h in await fresh.query(text="note b 7", mode="keyword", top_k=1)]
    assert [h.id for h in await a.query(vec(15), top_k=3)] == [h.id for h in await fresh.query(vec(15), top_k=3)]
    return {"order": order == await ids(fresh), "hit": hits, "count": await fresh.count()}


async def case_insert_race_is_duplicate_id_and_commits_nothing(tabs: Tabs) -> Any:
    loc = tabs.location()
    a = await tabs.create(loc)
    b = await tabs.open(loc)
    b.begin_update()
    await b.insert(vec(1), id="y", metadata={"by": "b"})
    await b.insert(vec(2), id="x", metadata={"by": "b"})  # staged: "x" is free as far as b knows
    await a.insert(vec(3), id="x", metadata={"by": "a"})  # a takes "x" first
    names = [await raises(DuplicateId, b.end_update())]
    assert await b.count() == 1 and (await b.get("x")).metadata == {"by": "a"} and await b.get("y") is None
    # the same race through a batch and through insert_many: nothing of the failed commit is saved
    try:
        async with b.batch():
            await b.insert_many([{"id": "z", "vector": vec(4)}, {"id": "w", "vector": vec(5)}])
            await a.insert(vec(6), id="w")  # another writer's task while b's batch is open
    except DuplicateId as exc:
        names.append(type(exc).__name__)
    assert await b.ids() == ["x", "w"] and await a.refresh() == 0
    # an upsert is not an insert: it replaces what the other writer wrote
    b.begin_update()
    await b.upsert("v", vec(7), metadata={"by": "b"})
    await a.insert(vec(8), id="v", metadata={"by": "a"})
    await b.end_update()
    await a.refresh()
    assert (await a.get("v")).metadata == {"by": "b"} and await a.ids() == ["x", "w", "v"]
    return names


async def case_rebase_renumbers_and_reinserts(tabs: Tabs) -> Any:
    """Staged new items get seqs after the newest; an upsert of an item another writer deleted inserts it
    again; a metadata update keeps the other writer's newer vector and text, or fails if the item is gone."""
    loc = tabs.location()
    a = await tabs.create(loc)
    await a.insert_many([{"id": k, "vector": vec(i), "text": f"text {k}"} for i, k in enumerate("abcd")])
    b = await tabs.open(loc)
    b.begin_update()
    await b.upsert("b", vec(20), text="b by tab b")
    await b.insert(vec(21), id="n1")
    await b.update_metadata("c", {"tag": "from b"})
    await a.delete("b")
    await a.insert(vec(22), id="a2")
    await a.upsert("c", vec(23), text="c rewritten by a")
    await b.end_update()
    await a.refresh()
    order = await a.ids()
    assert order == ["a", "c", "d", "a2", "b", "n1"] == await b.ids(), order
    c = await a.get("c")
    assert c.metadata == {"tag": "from b"} and c.text == "c rewritten by a"
    assert [round(x, 5) for x in c.vector] == [round(x, 5) for x in (await b.get("c")).vector]
    # a later reopen numbers the same way (seqs are stored, not re-derived)
    fresh = await tabs.open(loc, read_only=True)
    assert await fresh.ids() == order
    b.begin_update()
    await b.update_metadata("d", {"tag": "late"})
    await a.delete("d")
    gone = await raises(InvalidInput, b.end_update())
    assert await b.get("d") is None
    return {"order": order, "gone": gone}


async def case_compaction_by_another_writer(tabs: Tabs) -> Any:
    """One writer compacts: the other notices the new snapshot, reloads it, and its next commit lands on it."""
    loc = tabs.location()
    a = await tabs.create(loc)
    b = await tabs.open(loc)
    await a.insert_many([{"id": f"p{i}", "vector": vec(i)} for i in range(30)])
    await b.insert(vec(100), id="from-b")
    await a.compact()  # catches up b's commit first, then rewrites the snapshot
    await a.insert(vec(101), id="after")
    assert await b.refresh() >= 1
    assert await b.ids() == [*(f"p{i}" for i in range(30)), "from-b", "after"]
    await b.insert(vec(102), id="b2")
    await b.compact()
    await a.insert(vec(103), id="a3")  # a's commit reloads b's snapshot first
    expected = [*(f"p{i}" for i in range(30)), "from-b", "after", "b2", "a3"]
    assert await a.ids() == expected
    await b.refresh()
    fresh = await tabs.open(loc, read_only=True)
    assert await b.ids() == expected == await fresh.ids()
    return (await fresh.stats())["items"]


async def case_bulk_first_load_race(tabs: Tabs) -> Any:
    """Two writers each bulk-load into what they saw as an empty index: the second one's commit is logged on
    top of the first one's snapshot (never a second snapshot that would drop it)."""
    loc = tabs.location()
    a = await tabs.create(loc)
    b = await tabs.open(loc)
    n = BULK_SNAPSHOT_OPS
    b.begin_update()
    await b.insert_many([{"id": f"b{i}", "vector": vec(i)} for i in range(n)])
    await a.insert_many([{"id": f"a{i}", "vector": vec(n + i)} for i in range(n)])  # snapshot path
    await b.end_update()
    await a.refresh()
    fresh = await tabs.open(loc, read_only=True)
    got = await fresh.ids()
    assert got == [f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)] == await a.ids() == await b.ids()
    return len(got)


async def case_reader_follows_writers(tabs: Tabs) -> Any:
    loc = tabs.location()
    a = await tabs.create(loc)
    reader = await tabs.open(loc, read_only=True)
    assert await reader.refresh() == 0
    await a.insert(vec(1), id="one")
    await a.insert(vec(2), id="two")
    seen = [await reader.refresh(), await reader.count(), await reader.refresh()]
    await a.delete("one")
    seen += [await reader.refresh(), await reader.ids()]
    seen.append(await raises(ReadOnlyIndex, reader.insert(vec(3), id="three")))
    return seen


# --------------------------------------------------------------------------- running

# What every store with shared writers must observe (CPython's MemoryStore and the page's IndexedDBStore alike).
EXPECTED: dict[str, Any] = {
    "alternating_writers_lose_nothing": {"order": True, "hit": ["b7"], "count": 100},
    "insert_race_is_duplicate_id_and_commits_nothing": ["DuplicateId", "DuplicateId"],
    "rebase_renumbers_and_reinserts": {"order": ["a", "c", "d", "a2", "b", "n1"], "gone": "InvalidInput"},
    "compaction_by_another_writer": 34,
    "bulk_first_load_race": 2000,
    "reader_follows_writers": [2, 2, 0, 1, ["two"], "ReadOnlyIndex"],
}


def all_cases() -> list[str]:
    return [k[len("case_") :] for k, v in globals().items() if k.startswith("case_") and inspect.iscoroutinefunction(v)]


async def run_case(name: str, new_location: Callable[[], str], new_store: Callable[[str], Store]) -> Any:
    """Run ``case_<name>``; returns its observation after a JSON round trip (closes and drops everything)."""
    tabs = Tabs(new_location, new_store)
    try:
        observed = await globals()[f"case_{name}"](tabs)
    finally:
        await tabs.cleanup()
    return json.loads(json.dumps(observed))
