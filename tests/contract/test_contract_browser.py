"""The LocalIndex contract (``cases.py``) inside the page: Pyodide, IndexedDB store, JS (or numpy) kernel.

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
