"""IndexedDBStore in Chromium: durable across reloads, atomic commits, shared writers, StorageFull on quota."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_helpers import AppPage, BrowserPythonError

pytestmark = pytest.mark.browser

STORE_CASES = Path(__file__).resolve().parents[1] / "stores" / "store_cases.py"
CASES_SOURCE = STORE_CASES.read_text()
CASES_SHA = hashlib.sha256(CASES_SOURCE.encode()).hexdigest()
_spec = importlib.util.spec_from_file_location("_clinvec_store_cases", STORE_CASES)
assert _spec is not None and _spec.loader is not None
store_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(store_cases)

# Runs in the page: (re)load the store conformance cases when their source changed, then run one case
# against IndexedDBStore (or a never-failing FaultyStore around it). Damage is done with raw IndexedDB
# requests: the first byte of a stored record becomes 0xFF, as the CPython harnesses do to files/memory.
CONFORMANCE_DRIVER = """
import asyncio, sys, types
import js
from pyodide.ffi import create_once_callable
from pyapp.browser.idb_store import IndexedDBStore
from pyapp.stores import FaultyStore
mod = sys.modules.get("clinvec_store_cases")
if mod is None or getattr(mod, "SOURCE_SHA", None) != sha:
    mod = types.ModuleType("clinvec_store_cases")
    sys.modules["clinvec_store_cases"] = mod
    exec(compile(source, "tests/stores/store_cases.py", "exec"), mod.__dict__)
    mod.SOURCE_SHA = sha

async def damage_first_byte(name, store_name, index):
    loop = asyncio.get_event_loop()
    opened, done = loop.create_future(), loop.create_future()
    request = js.indexedDB.open("clinvec/" + name)
    request.onsuccess = create_once_callable(lambda event: opened.set_result(request.result))
    db = await opened
    tx = db.transaction(store_name, "readwrite")
    records = tx.objectStore(store_name)
    tx.oncomplete = create_once_callable(lambda event: done.set_result(True))
    keys = records.getAllKeys()

    def got_keys(event):
        key = keys.result[index]
        get = records.get(key)

        def got(event):  # still inside the transaction: put synchronously
            data = js.Uint8Array.new(get.result.slice(0))
            data.fill(255, 0, 1)
            records.put(data.buffer, key)

        get.onsuccess = create_once_callable(got)

    keys.onsuccess = create_once_callable(got_keys)
    await done
    db.close()

class IDBHarness:
    def __init__(self):
        self.made = 0

    def location(self):
        self.made += 1
        return f"{prefix}-{self.made}"

    def store(self, location):
        inner = IndexedDBStore(location)
        return FaultyStore(inner, fail={}) if faulty else inner

    async def damage_log(self, location, index):
        await damage_first_byte(location, "log", index)

    async def damage_rows(self, location):
        await damage_first_byte(location, "rows", 0)

await mod.run_case(case, IDBHarness())
names = [db.name for db in await js.indexedDB.databases()]
result = [n for n in names if prefix in n]
"""

HELPERS = """
import base64, random
from array import array
from pyapp.browser.idb_store import IndexedDBStore
from pyapp.stores.base import Put, Delete, Row
from pyapp.errors import (CorruptIndex, IndexClosed, IndexExists, IndexLocked, IndexNotFound, ReadOnlyIndex,
                          StorageFull)

def vec(*xs):
    return array("f", xs).tobytes()

def dump_ops(ops):
    return [["p", o.row.id, o.row.metadata, o.row.text, o.row.seq, base64.b64encode(o.vector).decode()]
            if isinstance(o, Put) else ["d", o.id] for o in ops]

def dump(s):
    return {"manifest": s.manifest, "rows": [[r.id, r.metadata, r.text, r.seq] for r in s.rows],
            "vectors": base64.b64encode(bytes(s.vectors)).decode(), "log": [dump_ops(c) for c in s.log]}

def big_commit(seed, n, dims=768):
    rnd = random.Random(seed)
    return [Put(Row(f"id{i}", {"i": i, "seed": seed}, f"note {i}", i), rnd.randbytes(dims * 4)) for i in range(n)]

import builtins
keep = builtins.__dict__.setdefault("_clinvec_keep", {})
"""


def run(app: AppPage, code: str, **params: Any) -> Any:
    return app.run(HELPERS + code, **params)


@pytest.fixture()
def tabs(app: AppPage, second_app: AppPage) -> tuple[AppPage, AppPage]:
    """The session's two booted tabs of the same origin."""
    return app, second_app


def test_commits_and_snapshot_survive_a_reload(tabs: tuple[AppPage, AppPage], index_name: str) -> None:
    """Index 1: two commits, never closed. Index 2: snapshot in 3 chunks + one commit. Reload, reopen both."""
    tab, _ = tabs
    before = run(
        tab,
        """
s = IndexedDBStore(name, chunk_rows=3)
assert not await s.exists()
await s.create({"dims": 2, "note": "\\u00e9\\u2713"})
snap0 = await s.open()
c1 = [Put(Row("a", {"ward": "A", "n": 1}, "chest pain", 0), vec(1, 0)), Put(Row("b", {}, None, 1), vec(0, 1))]
c2 = [Delete("a"), Put(Row("c", {"x": [1, {"y": None}], "f": 0.1}, "lone \\ud800 surrogate", 2), vec(0.6, 0.8))]
await s.commit(c1)
await s.commit(c2)
await s.commit([])  # nothing to do: no record
keep[name] = s  # left open: the reload must release the writer lock by itself

s2 = IndexedDBStore(name + "-snap", chunk_rows=3)
await s2.create({"dims": 2})
await s2.open()
await s2.commit(c1)
rows = [Row(f"r{i}", {"i": i}, f"text {i}" if i % 2 else None, 10 + i) for i in range(7)]
vectors = b"".join(vec(float(i), 1.0) for i in range(7))
await s2.write_snapshot({"dims": 2, "note": "compacted"}, rows, vectors)
after_snapshot = s2.info()
c3 = [Put(Row("late", {"k": True}, "after", 20), vec(3, 4))]
await s2.commit(c3)
keep[name + "-snap"] = s2
result = {"snap0": dump(snap0), "ops": [dump_ops(c1), dump_ops(c2)], "info": s.info(), "exists": await s.exists(),
          "c3": dump_ops(c3), "rows": [[r.id, r.metadata, r.text, r.seq] for r in rows],
          "vectors": base64.b64encode(vectors).decode(), "after_snapshot": after_snapshot}
""",
        name=index_name,
    )
    assert before["exists"] is True
    assert before["snap0"] == {"manifest": {"dims": 2, "note": "é✓"}, "rows": [], "vectors": "", "log": []}
    assert before["info"]["storage"] == "indexeddb" and before["info"]["log_bytes"] > 0
    assert isinstance(before["info"]["persisted"], bool)
    assert before["after_snapshot"]["log_bytes"] == 0 and before["after_snapshot"]["snapshot_bytes"] > 7 * 8

    tab.boot(reload=True)
    after = run(
        tab,
        """
s = IndexedDBStore(name)
plain = dump(await s.open())  # for writing: the reload released the old page's lock
await s.close()
s = IndexedDBStore(name + "-snap")
compacted = dump(await s.open())
await s.close()
result = {"plain": plain, "compacted": compacted}
""",
        name=index_name,
    )
    assert after["plain"]["log"] == before["ops"]  # both commits, op for op, vectors bit for bit
    assert after["plain"]["manifest"] == {"dims": 2, "note": "é✓"}
    assert after["plain"]["rows"] == [] and after["plain"]["vectors"] == ""
    compacted = after["compacted"]
    assert compacted["manifest"] == {"dims": 2, "note": "compacted"}
    assert compacted["rows"] == before["rows"]  # 7 rows across 3 chunks of 3
    assert compacted["vectors"] == before["vectors"]
    assert compacted["log"] == [before["c3"]]  # the pre-snapshot commit is gone, the later one kept


def test_every_tab_writes_and_an_older_page_version_keeps_them_out(
    tabs: tuple[AppPage, AppPage], open_app: Any, index_name: str
) -> None:
    """Two tabs open one index for writing at once and see each other's commits. A page of the older,
    one-writer version (it takes the writer lock exclusively) keeps new tabs read-only while it holds the
    index, and cannot take the index while new tabs have it: the two versions never write at once."""
    tab_a, tab_b = tabs
    writer = """
s = IndexedDBStore(name)
try:
    await s.open()
    keep[name] = s
    result = "opened"
except IndexLocked as exc:
    result = str(exc)
"""
    run(tab_a, "s = IndexedDBStore(name)\nawait s.create({'dims': 2})\nresult = True", name=index_name)
    assert run(tab_a, writer, name=index_name) == "opened"
    assert run(tab_b, writer, name=index_name) == "opened"
    commit = """
s = keep[name]
async with s.commit_lock():
    seen = [dump_ops(c) for c in (await s.catch_up()).commits]
    await s.commit([Put(Row(tag, {}, None, seq), vec(1, seq))])
result = seen
"""
    assert run(tab_a, commit, name=index_name, tag="x", seq=0) == []
    seen_by_b = run(tab_b, commit, name=index_name, tag="y", seq=1)
    assert [op[1] for c in seen_by_b for op in c] == ["x"]
    assert [[op[1] for op in c] for c in run(tab_a, commit, name=index_name, tag="z", seq=2)] == [["y"]]
    # an older page version opening now asks for the writer lock exclusively, as it always did: refused
    older = """async (name) => {
      return await navigator.locks.request("clinvec-writer/" + name, { ifAvailable: true }, (lock) => lock !== null);
    }"""
    assert tab_a.page.evaluate(older, index_name) is False
    for tab in (tab_a, tab_b):
        run(tab, "await keep.pop(name).close()\nresult = True", name=index_name)

    # an older page version that holds the index (its writer lock, exclusively; here held by tab A's page
    # itself, a context of its own): new tabs cannot write and say why; reading needs no lock
    held = tab_a.page.evaluate(
        """(name) => new Promise((granted) => {
          navigator.locks.request("clinvec-writer/" + name, () => {
            granted(true);
            return new Promise((release) => { window.clinvecReleaseOld = release; });
          });
        })""",
        index_name,
    )
    assert held is True
    try:
        message = run(tab_b, writer, name=index_name)
        assert "older version" in message, message
        reader = (
            "s = IndexedDBStore(name)\nsnap = await s.open(read_only=True)\nawait s.close()\nresult = len(snap.log)"
        )
        assert run(tab_b, reader, name=index_name) == 3
    finally:
        tab_a.page.evaluate("() => window.clinvecReleaseOld()")
    assert run(tab_b, writer, name=index_name) == "opened"  # the older page went away: writable again
    run(tab_b, "await keep.pop(name).close()\nresult = True", name=index_name)


def test_commit_interrupted_by_closing_the_page_is_all_or_nothing(
    tabs: tuple[AppPage, AppPage], open_app: Any, index_name: str
) -> None:
    """Close the page while a ~20 MB commit's IndexedDB transaction is in flight: afterwards that commit is
    either wholly there or absent, and the commit acknowledged before it is intact."""
    victim = open_app()
    took = run(
        victim,
        """
import js
from pyapp.stores.codec import encode_commit
from pyapp.browser._bridge import to_u8
s = IndexedDBStore(name)
await s.create({"dims": 768})
await s.open()
t = js.performance.now()
await s.commit(big_commit(1, 2500))
took = js.performance.now() - t
# What IndexedDBStore.commit does, minus the await: the JS call issues the whole transaction
# synchronously, so when this returns the transaction is in flight and nobody waits for it.
keep["pending"] = s._mod.commit(s._db, to_u8(encode_commit(big_commit(2, 6500))))
keep[name] = s
result = took
""",
        name=index_name,
    )
    victim.close()

    tab, _ = tabs
    outcome = run(
        tab,
        """
s = IndexedDBStore(name)
snap = await s.open(read_only=True)
await s.close()
log = [dump_ops(c) for c in snap.log]
result = {"commits": len(log), "first_ok": log[0] == dump_ops(big_commit(1, 2500)),
          "second_ok": len(log) < 2 or log[1] == dump_ops(big_commit(2, 6500))}
""",
        name=index_name,
    )
    print(
        f"commit interrupted by closing the page: {'kept whole' if outcome['commits'] == 2 else 'absent'} "
        f"(an acknowledged 7.7 MB commit took {took:.0f} ms)"
    )
    assert outcome["first_ok"] is True
    assert outcome["commits"] in (1, 2)
    assert outcome["second_ok"] is True  # present means complete, op for op and byte for byte


def test_quota_exceeded_raises_storage_full_and_keeps_the_index(
    browser_context: Any, web_url: str, index_name: str
) -> None:
    """A commit over quota raises StorageFull and leaves the stored index exactly as it was.

    Chromium applies a quota override only to IndexedDB backing stores opened after it, so this test
    uses a second origin of the same server (``localhost`` instead of ``127.0.0.1``), whose storage is
    untouched, and sets a 1 MB quota before the page first opens IndexedDB.
    """
    port = urlsplit(web_url).port
    origin = f"http://localhost:{port}"
    page = browser_context.new_page()
    cdp = browser_context.new_cdp_session(page)
    cdp.send("Storage.overrideQuotaForOrigin", {"origin": origin, "quotaSize": 1_000_000})
    try:
        tab = AppPage(page, origin + "/")
        tab.boot()
        out = run(
            tab,
            """
s = IndexedDBStore(name)
await s.create({"dims": 768})
await s.open()
await s.commit(big_commit(3, 10))  # 31 KB: fits
before = s.log_bytes
try:
    await s.commit(big_commit(4, 1500))  # ~4.6 MB of random (incompressible) vectors: does not
    outcome = "committed"
except StorageFull as exc:
    outcome = str(exc)
kept = s.log_bytes == before
await s.close()
snap = await s.open(read_only=True)
await s.close()
result = [outcome, kept, [dump_ops(c) for c in snap.log] == [dump_ops(big_commit(3, 10))]]
""",
            name=index_name,
        )
    finally:
        cdp.send("Storage.overrideQuotaForOrigin", {"origin": origin})
        page.close()
    assert "quota" in out[0], out[0]
    assert out[1] is True and out[2] is True


def test_errors_drop_and_exists(tabs: tuple[AppPage, AppPage], index_name: str) -> None:
    _, tab = tabs
    out = run(
        tab,
        """
import js
def outcome(exc):
    return type(exc).__name__
got = {}
s = IndexedDBStore(name)
got["exists_before"] = await s.exists()
try:
    await s.open()
except IndexNotFound as exc:
    got["open_missing"] = outcome(exc)
try:
    await s.commit([Delete("x")])
except IndexClosed as exc:
    got["commit_closed"] = outcome(exc)
await s.create({"dims": 2})
try:
    await IndexedDBStore(name).create({"dims": 2})
except IndexExists as exc:
    got["create_twice"] = outcome(exc)
await s.open()
await s.commit([Put(Row("a", {}, None, 0), vec(1, 0))])
await s.drop()
got["exists_after_drop"] = await s.exists()
try:
    await IndexedDBStore(name).open(read_only=True)
except IndexNotFound as exc:
    got["open_dropped"] = outcome(exc)
await IndexedDBStore(name + "-never").drop()  # dropping nothing is fine
result = got
""",
        name=index_name,
    )
    assert out == {
        "exists_before": False,
        "open_missing": "IndexNotFound",
        "commit_closed": "IndexClosed",
        "create_twice": "IndexExists",
        "exists_after_drop": False,
        "open_dropped": "IndexNotFound",
    }
    # exists() never creates a database as a side effect.
    names = tab.page.evaluate("async () => (await indexedDB.databases()).map(d => d.name)")
    assert f"clinvec/{index_name}" not in names
    assert f"clinvec/{index_name}-never" not in names


def test_a_connection_closed_under_the_store_is_index_closed_and_writes_nothing(
    tabs: tuple[AppPage, AppPage], index_name: str
) -> None:
    """The browser closes a connection when another tab deletes or upgrades the database: a snapshot write on it
    fails in the synchronous start of its transaction, which must be ``IndexClosed`` (not a raw JS error), with
    the in-memory load never run and the stored index unchanged."""
    _, tab = tabs
    out = run(
        tab,
        """
s = IndexedDBStore(name)
await s.create({"dims": 2})
await s.open()
await s.commit([Put(Row("a", {}, None, 0), vec(1, 0))])
s._db.close()  # what onversionchange does
got, ran = {}, []
for call in ("write_snapshot", "write_snapshot_while"):
    args = [{"dims": 2}, [Row("b", {}, None, 1)], vec(0, 1)]
    try:
        if call == "write_snapshot":
            await s.write_snapshot(*args)
        else:
            await s.write_snapshot_while(*args, lambda: ran.append(1))
    except IndexClosed as exc:
        got[call] = type(exc).__name__
await s.close()
again = IndexedDBStore(name)
snap = await again.open(read_only=True)
got["kept"] = [[r.id for r in snap.rows], [[o.row.id for o in c] for c in snap.log]]
got["ran"] = ran
await again.close()
await IndexedDBStore(name).drop()
result = got
""",
        name=index_name,
    )
    assert out == {
        "write_snapshot": "IndexClosed",
        "write_snapshot_while": "IndexClosed",
        "kept": [[], [["a"]]],
        "ran": [],
    }


def test_missing_snapshot_chunk_is_corrupt_index(tabs: tuple[AppPage, AppPage], index_name: str) -> None:
    _, tab = tabs
    with pytest.raises(BrowserPythonError) as info:
        run(
            tab,
            """
import asyncio
from pyodide.ffi import create_once_callable
s = IndexedDBStore(name, chunk_rows=2)
await s.create({"dims": 2})
await s.open()
rows = [Row(f"r{i}", {}, None, i) for i in range(5)]
await s.write_snapshot({"dims": 2}, rows, b"".join(vec(1.0, float(i)) for i in range(5)))
db = s._db
tx = db.transaction("chunks", "readwrite")
done = asyncio.get_event_loop().create_future()
tx.oncomplete = create_once_callable(lambda event: done.set_result(True))
tx.objectStore("chunks").delete(1)
await done
await s.close()
await IndexedDBStore(name).open(read_only=True)
""",
            name=index_name,
        )
    assert info.value.name == "CorruptIndex"


@pytest.mark.parametrize("faulty", [False, True], ids=["idb", "faulty-idb"])
@pytest.mark.parametrize("name", store_cases.all_cases())
def test_store_conformance_case(app: AppPage, name: str, faulty: bool, index_name: str) -> None:
    """The store conformance suite (tests/stores/store_cases.py) against IndexedDBStore in the page."""
    left = app.run(CONFORMANCE_DRIVER, source=CASES_SOURCE, sha=CASES_SHA, case=name, prefix=index_name, faulty=faulty)
    assert left == []  # every database the case made was dropped


def test_vector_chunks_are_blobs_and_older_arraybuffer_chunks_still_open(
    tabs: tuple[AppPage, AppPage], index_name: str
) -> None:
    """Snapshots store their vector chunks as Blobs (no structured clone of large ArrayBuffers); a snapshot
    written before that, with ArrayBuffer chunks, must open with the same bytes."""
    _, tab = tabs
    got = run(
        tab,
        """
import asyncio
import js
from pyodide.ffi import create_once_callable
s = IndexedDBStore(name, chunk_rows=2)
await s.create({"dims": 2})
await s.open()
rows = [Row(f"r{i}", {}, None, i) for i in range(5)]
vectors = b"".join(vec(1.0, float(i)) for i in range(5))
await s.write_snapshot({"dims": 2}, rows, bytearray(vectors))
db = s._db
loop = asyncio.get_event_loop()
read, done = loop.create_future(), loop.create_future()
tx = db.transaction("chunks", "readwrite")
store = tx.objectStore("chunks")
req = store.getAll()

def got(event):
    read.set_result([str(js.Object.prototype.toString.call(c)) for c in req.result])

req.onsuccess = create_once_callable(got)
tx.oncomplete = create_once_callable(lambda event: done.set_result(True))
kinds = await read
await done
new = (await IndexedDBStore(name).open(read_only=True)).vectors
# rewrite every chunk as an ArrayBuffer, as older versions stored them
bufs = [array("f", vectors[i * 16:(i + 1) * 16]).tobytes() for i in range(3)]
done2 = loop.create_future()
tx = db.transaction("chunks", "readwrite")
for i, b in enumerate(bufs):
    u8 = js.Uint8Array.new(len(b))
    u8.assign(b)
    tx.objectStore("chunks").put(u8.buffer, i)
tx.oncomplete = create_once_callable(lambda event: done2.set_result(True))
await done2
await s.close()
old = (await IndexedDBStore(name).open(read_only=True)).vectors
result = {"kinds": kinds, "new": new == vectors, "old": old == vectors}
""",
        name=index_name,
    )
    assert got == {"kinds": ["[object Blob]"] * 3, "new": True, "old": True}
