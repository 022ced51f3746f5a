"""LocalIndex inside the page (IndexedDB store + JS kernel) against LocalIndex on CPython (file store + numpy)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import AppPage

from pyapp import LocalIndex

pytestmark = pytest.mark.browser

NOTES = [
    ("n1", [0.9, 0.1, 0.0, 0.2], {"ward": "A", "age": 71}, "Chest pain radiating to the left arm, troponin raised."),
    ("n2", [0.1, 0.8, 0.3, 0.0], {"ward": "B", "age": 34}, "Asthma exacerbation, wheeze, salbutamol given."),
    ("n3", [0.7, 0.2, 0.1, 0.4], {"ward": "A", "age": 58}, "Atypical chest pain, ECG normal, discharged."),
    ("n4", [0.0, 0.1, 0.9, 0.3], {"ward": "C", "age": 80}, "Fall at home, hip fracture suspected <img src=x>."),
    ("n5", [0.3, 0.3, 0.3, 0.3], {"ward": "B", "age": 45}, "Headache, no red flags, paracetamol."),
]
QUERIES: list[dict[str, Any]] = [
    {"vector": [1.0, 0.0, 0.0, 0.3], "top_k": 3},
    {"vector": [1.0, 0.0, 0.0, 0.3], "top_k": 2, "filter": {"ward": "A"}},
    {"text": "chest pain", "top_k": 3, "mode": "keyword"},
    {"vector": [0.2, 0.9, 0.1, 0.0], "text": "asthma wheeze", "top_k": 3},
]

# The same script runs on CPython and in the page; only `location` differs.
WRITE = """
from pyapp import LocalIndex
idx = await LocalIndex.create(location, dims=4, indexed=["ward"])
for id_, vector, metadata, text in notes[:3]:
    await idx.insert(vector, metadata=metadata, text=text, id=id_)
await idx.insert_many([{"id": i, "vector": v, "metadata": m, "text": t} for i, v, m, t in notes[3:]])
await idx.update_metadata("n2", {"ward": "B", "age": 35})
assert await idx.delete("n5") is True
await idx.upsert("n5", [0.2, 0.2, 0.2, 0.9], {"ward": "C"}, "Headache again.")
"""
READ = """
def dump(results):
    return [[r.id, round(r.score, 5), r.item.metadata, r.item.text] for r in results]
answers = [dump(await idx.query(**q)) for q in queries]
item = await idx.get("n2")
state = {
    "count": await idx.count(),
    "ward_a": await idx.count({"ward": "A"}),
    "ids": await idx.ids(),
    "n2": [item.id, [round(x, 5) for x in item.vector], item.metadata, item.text],
    "answers": answers,
}
"""


async def run_on_cpython(location: str) -> tuple[dict[str, Any], dict[str, Any]]:
    scope: dict[str, Any] = {"location": location, "notes": [list(n) for n in NOTES], "queries": QUERIES}
    exec(compile("async def _write():\n" + _indent(WRITE + READ) + "    return idx, state", "<w>", "exec"), scope)
    idx, written = await scope["_write"]()
    await idx.close()
    scope["idx"] = await LocalIndex.open(location)
    exec(compile("async def _read():\n" + _indent(READ) + "    return state", "<r>", "exec"), scope)
    reopened = await scope["_read"]()
    await scope["idx"].close()
    return written, reopened


def _indent(code: str) -> str:
    return "".join(f"    {line}\n" for line in code.strip("\n").splitlines())


def test_local_index_round_trip_matches_cpython(app: AppPage, index_name: str, tmp_path: Path) -> None:
    params = {"location": index_name, "notes": [list(n) for n in NOTES], "queries": QUERIES}
    written = app.run(WRITE + READ + "stats = await idx.stats()\nresult = {'state': state, 'stats': stats}", **params)
    assert written["stats"]["store"] == "IndexedDBStore"
    assert written["stats"]["kernel"] in ("JsKernel", "NumpyKernel")
    assert written["stats"]["storage"] == "indexeddb" and isinstance(written["stats"]["persisted"], bool)

    app.boot(reload=True)  # the index was never closed: the reload drops the page and its lock
    reopened = app.run(
        "from pyapp import LocalIndex\nidx = await LocalIndex.open(location)\n"
        + READ
        + "await idx.close()\nresult = state",
        **params,
    )
    assert reopened == written["state"]

    # Playwright's sync API keeps an event loop running in this thread: run the CPython twin in another.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        want_written, want_reopened = pool.submit(asyncio.run, run_on_cpython(str(tmp_path / "index"))).result()
    assert want_written == want_reopened
    assert written["state"] == want_written  # same ids, order, scores (5 d.p.), metadata and text
    assert written["state"]["count"] == 5 and written["state"]["ward_a"] == 2
    assert written["state"]["answers"][1][0][0] == "n1"


def test_local_index_errors_cross_the_bridge_as_clinvec_errors(app: AppPage, index_name: str) -> None:
    out = app.run(
        """
from pyapp import LocalIndex, InvalidVector, DimensionMismatch, IndexExists
got = []
idx = await LocalIndex.create(location, dims=3)
for bad in ([0, 0, 0], [1, float("nan"), 0], [1, 2]):
    try:
        await idx.insert(bad)
    except (InvalidVector, DimensionMismatch) as exc:
        got.append(type(exc).__name__)
try:
    await LocalIndex.create(location, dims=3)
except IndexExists:
    got.append("IndexExists")
second = await LocalIndex.open(location)  # every tab (and worker) writes: no IndexLocked
got.append("second writer" if not second.read_only else "read-only")
await second.close()
reader = await LocalIndex.open(location, read_only=True)
got.append(await reader.count())
await reader.close()
await idx.close()
await LocalIndex.drop(location)
got.append(await LocalIndex.exists(location))
result = got
""",
        location=index_name,
    )
    assert out == ["InvalidVector", "InvalidVector", "DimensionMismatch", "IndexExists", "second writer", 0, False]
