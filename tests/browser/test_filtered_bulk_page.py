"""Issue 13 in the page: filters picked by the JS kernel from its copy of the code columns, and a bulk insert whose
vectors never cross the Python/JS bridge as a copy.

Both run the real page (Pyodide, JsKernel, IndexedDB). Filtered answers must equal the metadata table's own
selection (the path the page used before) through inserts, metadata updates and deletes, which make the kernel's
column copies stale; the bulk insert must not copy its vectors into JS through the bridge at all (they are read
where they lie in Python's memory) and still store and reopen them bit for bit.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

FILTERED = """
import random
from array import array
from pyapp import LocalIndex
from pyapp import planner
from pyapp.browser.js_kernel import JsRows
from pyapp.filters import compile_filter

rnd = random.Random(3)
await LocalIndex.drop(name)
idx = await LocalIndex.create(name, dims=8, indexed=["year"])

def meta():
    m = {"category": f"c{rnd.randrange(5)}", "year": rnd.choice([2001, 2004, 2004.0, 2009])}
    if rnd.random() < 0.2:
        del m["category"]
    return m

def vec():
    return [rnd.uniform(-1, 1) for _ in range(8)]

await idx.insert_many([{"id": f"i{i}", "vector": vec(), "metadata": meta()} for i in range(400)])
state = idx._state
answers, kinds = [], set()

async def check(step):
    q = vec()
    for flt in filters:
        compiled = compile_filter(flt)
        picked = planner.select_rows(state, compiled)
        kinds.add(type(picked).__name__)
        want = [int(r) for r in state.table.select(compiled)]
        assert list(picked) == want, (step, flt, list(picked)[:10], want[:10])
        got = [(r.id, r.score) for r in await idx.query(q, top_k=7, filter=flt)]
        # the same query through the table's selection (what the page did before): same ids, same scores
        hits = state.kernel.topk(state.kernel.prepare(state.kernel.pack([q]), 1), 7, want)
        hits.sort(key=lambda h: (-h[1], state.rows[h[0]].seq))
        assert [(state.rows[r].id, s) for r, s in hits[:7]] == [(i, s) for i, s in got], (step, flt)
        answers.append(len(want))

await check("loaded")
await idx.insert(vec(), metadata={"category": "c1", "year": 2004}, id="extra")
await check("inserted")
await idx.update_metadata("i5", {"category": "c4", "year": 2001})
await check("updated")
await idx.delete("i0")
await idx.delete_many([f"i{i}" for i in range(10, 60)])
await check("deleted")
await idx.close()
await LocalIndex.drop(name)
result = {"kinds": sorted(kinds), "matches": answers}
"""

BULK = """
from array import array
import random
from pyapp import LocalIndex
from pyapp.browser import _bridge, idb_store, js_kernel

rnd = random.Random(9)
n, dims = 3000, 64
flat = array("f", [rnd.uniform(-1, 1) for _ in range(n * dims)])
view = memoryview(flat)
items = [{"id": f"b{i}", "vector": view[i * dims:(i + 1) * dims], "metadata": {"c": f"c{i % 10}"}} for i in range(n)]
big = []
real = _bridge.to_u8

def counting(data):
    size = memoryview(data).nbytes
    if size >= n * dims * 4:
        big.append(size)
    return real(data)

for module in (_bridge, idb_store, js_kernel):
    module.to_u8 = counting
try:
    await LocalIndex.drop(name)
    idx = await LocalIndex.create(name, dims=dims)
    await idx.insert_many(items)
    crossings = list(big)
    # any Python buffer the kernel still holds after the call (it must keep its copy in JS only)
    held = sum(memoryview(v).nbytes for v in vars(idx._state.kernel).values()
               if isinstance(v, (bytes, bytearray, memoryview)))
    written = bytes(idx._state.kernel.to_bytes())
    await idx.close()
finally:
    for module in (_bridge, idb_store, js_kernel):
        module.to_u8 = real
idx = await LocalIndex.open(name)
reopened = bytes(idx._state.kernel.to_bytes())
hit = await idx.query(view[7 * dims:8 * dims], top_k=1)
count = await idx.count()
await idx.close()
await LocalIndex.drop(name)
result = {"crossings": crossings, "same": written == reopened, "count": count, "top": hit[0].id,
          "bytes": len(written), "left": held}
"""


def test_filters_are_selected_by_the_kernel_and_answer_as_the_table_does(app: Any, index_name: str) -> None:
    filters = [
        {"category": "c3"},
        {"category": {"$in": ["c1", "c2"]}},
        {"category": {"$ne": "c0"}},
        {"category": {"$exists": False}},
        {"year": 2004},
        {"year": {"$gte": 2004}, "category": "c2"},
        {"$or": [{"category": "c1"}, {"year": 2009}]},  # not a column-table shape: the table answers
    ]
    got = app.run(FILTERED, name=index_name, filters=filters)
    assert got["kinds"] == sorted({"JsRows", "list"})  # the kernel picked rows, and the fallback still works
    assert all(m > 0 for m in got["matches"])


def test_bulk_insert_reads_its_vectors_in_place_and_stores_them_exactly(app: Any, index_name: str) -> None:
    got = app.run(BULK, name=index_name)
    # No copy of the vectors into JS at all: prepare normalises them in Python's memory, the kernel and the
    # snapshot's Blobs read them there (each keeps its own copy, as it must)
    assert got["crossings"] == []
    assert got["same"] and got["bytes"] == 3000 * 64 * 4
    assert got["count"] == 3000 and got["top"] == "b7"
    assert got["left"] <= 64 * 4  # the bulk copy was not kept alive in Python beside the kernel's JS copy
