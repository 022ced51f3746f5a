"""The LocalIndex contract (``cases.py``) inside the page: Pyodide, IndexedDB store, JS (or numpy) kernel; and
``RemoteIndex`` in the page (fetch transport) against the same-origin API of ``serve.py --api``.

The cases' source is shipped into the page's Python worker through the ``?test`` hook and run there as a
module, one pytest test per case; each observation must match the same case run on CPython (file store).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import uuid
from pathlib import Path
from typing import Any

import cases
import pytest

pytestmark = pytest.mark.browser

SOURCE = Path(cases.__file__).read_text()
SHA = hashlib.sha256(SOURCE.encode()).hexdigest()

# Runs in the page: (re)load the cases module only when its source changed, then run one case.
DRIVER = """
import sys, types
mod = sys.modules.get("clinvec_contract_cases")
if mod is None or getattr(mod, "SOURCE_SHA", None) != sha:
    mod = types.ModuleType("clinvec_contract_cases")
    sys.modules["clinvec_contract_cases"] = mod
    exec(compile(source, "tests/contract/cases.py", "exec"), mod.__dict__)
    mod.SOURCE_SHA = sha
counter = iter(range(1_000_000))
result = await mod.run_case(case, lambda: f"{prefix}-{next(counter)}")
"""


def on_cpython(name: str, folder: Path) -> Any:
    """The case on CPython with the file store (in a thread: Playwright's sync API owns this one's loop)."""
    coro = cases.run_case(name, lambda: str(folder / uuid.uuid4().hex))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.mark.parametrize("name", cases.all_cases())
def test_contract_case_in_the_page(contract_page: Any, name: str, tmp_path: Path) -> None:
    if name in cases.SERVER_ONLY:
        pytest.skip("export/import reads and writes files: server build only")
    in_page = contract_page.run(DRIVER, source=SOURCE, sha=SHA, case=name, prefix=f"contract-{uuid.uuid4().hex[:8]}")
    expected = on_cpython(name, tmp_path)
    assert cases.difference(in_page, expected) is None, cases.difference(in_page, expected)


def test_cases_ran_on_the_browser_stores(contract_page: Any) -> None:
    """Guard against a silently server-side run: the page's LocalIndex uses IndexedDB and leaves nothing behind."""
    out = contract_page.run(
        DRIVER
        + """
import js
from pyapp import LocalIndex
idx = await LocalIndex.create(prefix + "-probe", dims=2)
stats = await idx.stats()
await idx.close()
await LocalIndex.drop(prefix + "-probe")
names = [db.name for db in await js.indexedDB.databases()]
result = {"store": stats["store"], "kernel": stats["kernel"], "left": [n for n in names if prefix in n]}
""",
        source=SOURCE,
        sha=SHA,
        case="list_paging",
        prefix=f"contract-{uuid.uuid4().hex[:8]}",
    )
    assert out["store"] == "IndexedDBStore" and out["kernel"] in ("JsKernel", "NumpyKernel")
    assert out["left"] == []


# --------------------------------------------------------------------------- RemoteIndex in the page (issue 11)

# Runs in the page: a copy of the cases module whose LocalIndex is a stand-in over RemoteIndex on the page's own
# origin (the API under /api), as tests/contract/remote_cases.py does on CPython.
REMOTE_DRIVER = """
import sys, types
from pyapp import RemoteIndex

class RemoteAsLocal:
    async def create(self, location, **config):
        return await RemoteIndex.create("/api", location, **config)
    async def open(self, location, read_only=False):
        return await RemoteIndex.open("/api", location, read_only=read_only)
    async def exists(self, location):
        return await RemoteIndex.exists("/api", location)
    async def drop(self, location):
        await RemoteIndex.drop("/api", location)

mod = sys.modules.get("clinvec_remote_contract_cases")
if mod is None or getattr(mod, "SOURCE_SHA", None) != sha:
    mod = types.ModuleType("clinvec_remote_contract_cases")
    sys.modules["clinvec_remote_contract_cases"] = mod
    exec(compile(source, "tests/contract/cases.py", "exec"), mod.__dict__)
    mod.SOURCE_SHA = sha
    mod.LocalIndex = RemoteAsLocal()
counter = iter(range(1_000_000))
result = await mod.run_case(case, lambda: f"{prefix}-{next(counter)}")
"""
# The default suite runs these in the page (writes, batches across tasks, queries); -m slow runs every case.
REMOTE_QUICK = ("duplicate_ids", "batch_belongs_to_its_task", "hybrid_queries")


def _remote_params() -> list[Any]:
    import remote_cases

    params = []
    for name in cases.all_cases():
        marks = [] if name in REMOTE_QUICK else [pytest.mark.slow]
        if name in remote_cases.REMOTE_SKIPS or name in cases.SERVER_ONLY:
            marks = []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _remote_params())
def test_contract_case_on_remote_index_in_the_page(api_contract_page: Any, name: str, tmp_path: Path) -> None:
    import remote_cases

    if name in remote_cases.REMOTE_SKIPS:
        pytest.skip(remote_cases.REMOTE_SKIPS[name])
    if name in cases.SERVER_ONLY:
        pytest.skip("export/import reads and writes files: server build only")
    prefix = f"page-{uuid.uuid4().hex[:8]}"
    in_page = api_contract_page.run(REMOTE_DRIVER, source=SOURCE, sha=SHA, case=name, prefix=prefix)
    expected = on_cpython(name, tmp_path)
    assert cases.difference(in_page, expected) is None, cases.difference(in_page, expected)


def test_the_page_remote_index_uses_fetch_and_the_server_store(api_contract_page: Any) -> None:
    """Guard against a silently local run: the page's RemoteIndex goes through fetch to the server's file store."""
    out = api_contract_page.run(
        """
from pyapp import RemoteIndex
from pyapp.remote.transport import default_transport
idx = await RemoteIndex.create("/api", "page-probe", dims=2)
await idx.insert([1, 0], id="a")
stats = await idx.stats()
await idx.close()
names = await RemoteIndex.list_indexes("/api")
await RemoteIndex.drop("/api", "page-probe")
result = {"store": stats["store"], "transport": type(default_transport()).__name__, "listed": "page-probe" in names}
"""
    )
    assert out == {"store": "FileStore", "transport": "FetchTransport", "listed": True}
