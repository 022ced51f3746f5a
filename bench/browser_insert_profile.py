"""Where the page's durable ``insert_many`` spends its time: phases, repeated in one page and across fresh pages.

    python bench/browser_insert_profile.py                      # 10000x768, 6 runs per page, 3 pages
    python bench/browser_insert_profile.py --size 10000x384 --runs 4 --pages 2 --out bench/results/x.json

Run it WITHOUT nice (the figures are timings) and read them with the load average it prints. Same workload and
server as ``bench/browser_peers.py`` (its clinvec row), so a phase here is a share of that row. Each run drops
and creates the index, then times ``insert_many`` of every item with ``performance.now()`` in the worker; the
phases are measured by wrapping the functions that do them (the wrappers cost microseconds per call, and the
per-item functions are not wrapped), so they add up to a little less than the total: the rest is glue.
Phases: ``stage`` (Stager.puts: ids, metadata, texts, vectors), inside it ``pack`` (joining the float32
buffers) and ``prepare`` (the copy into JS, normalising there, the copy back); ``lock`` (the Web Lock and
catch-up); ``rows_load`` (kernel, metadata table, id map); ``encode_rows`` (the snapshot's row records);
``idb`` (waiting for the snapshot transaction's ``complete`` after ``rows_load``, which runs while the browser
writes: ``Store.write_snapshot_while``), beside the store's own marks ``idb_queue`` (issuing the requests,
cloning the values) and ``idb_total`` (from the transaction's start to ``complete``, ``rows_load`` included);
``vector_blobs`` (cutting the vectors into the snapshot's Blobs, before the transaction); past the IVF threshold,
``repartition`` split into ``ivf_kmeans``, ``ivf_assign`` (every row to its list) and ``ivf_calibrate`` (the
probe depth), and ``kernel_to_bytes`` (the matrix copied back from JS); ``storage_info`` (the
quota/usage estimate after the snapshot); ``gc`` (a full collection right after, which
the run's garbage would cost the page later).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _browser_workload as workload  # noqa: E402
from browser_bench import CHROMIUM, LAUNCH_ARGS, Page  # noqa: E402
from browser_peers import CLINVEC_SETUP, DATA_DIR, load_average, start_server  # noqa: E402

PROFILE = """
import gc
from contextlib import contextmanager
from pyapp import commits, index as index_mod, rows as rows_mod, staging
from pyapp.browser import idb_store, js_kernel

spent = {}

@contextmanager
def timed(label):
    t0 = js.performance.now()
    try:
        yield
    finally:
        spent[label] = spent.get(label, 0.0) + ms(t0)

def wrap(owner, attr, label):
    real = getattr(owner, attr)
    if getattr(real, "_profiled", False):
        return
    if hasattr(real, "__code__") and real.__code__.co_flags & 0x80:  # a coroutine function
        async def fn(*a, **k):
            with timed(label):
                return await real(*a, **k)
    else:
        def fn(*a, **k):
            with timed(label):
                return real(*a, **k)
    fn._profiled = True
    setattr(owner, attr, fn)

from pyapp.kernels import ivf as ivf_mod
from pyapp.browser import ivf_js
for owner, attr, label in (
    (staging.Stager, "puts", "stage"), (js_kernel.JsKernel, "pack", "pack"),
    (js_kernel.JsKernel, "prepare", "prepare"), (index_mod, "item_dicts", "item_dicts"),
    (rows_mod.IndexRows, "load", "rows_load"), (idb_store, "encode_rows", "encode_rows"),
    (idb_store.IndexedDBStore, "_refresh_storage", "storage_info"), (idb_store.IndexedDBStore, "catch_up", "catch_up"),
    (commits.Committer, "_bulk_load", "bulk_load"), (commits.Committer, "_repartition", "repartition"),
    (ivf_js.JsIvfMath, "train", "ivf_kmeans"), (ivf_mod.Partitions, "add", "ivf_assign"),
    (ivf_mod.Partitions, "calibrate", "ivf_calibrate"), (js_kernel.JsKernel, "to_bytes", "kernel_to_bytes"),
    (commits.Committer, "_commit", "commit"), (commits.Committer, "write", "write"),
    (rows_mod.IndexRows, "snapshot_parts", "snapshot_parts"),
    (idb_store.IndexedDBStore, "write_snapshot", "write_snapshot"),
    (idb_store.IndexedDBStore, "write_snapshot_while", "write_snapshot"),
):
    wrap(owner, attr, label)
_idb_mod = idb_store.js_module(idb_store.MODULE)
if hasattr(_idb_mod, "vectorBlobs") and not hasattr(idb_store, "_profiled_blobs"):
    class _TimedModule:
        def __init__(self, mod):
            self._mod = mod
        def __getattr__(self, attr):
            value = getattr(self._mod, attr)
            if attr != "vectorBlobs":
                return value
            def blobs(*a):
                with timed("vector_blobs"):
                    return value(*a)
            return blobs
    real_js_module = idb_store.js_module
    idb_store.js_module = lambda name: _TimedModule(real_js_module(name))
    idb_store._profiled_blobs = True

real_call = idb_store.IndexedDBStore._call
if not getattr(real_call, "_profiled", False):
    async def call(self, what, promise):
        with timed({"writing the snapshot": "idb", "waiting for the commit lock": "lock"}.get(what, "other_calls")):
            return await real_call(self, what, promise)
    call._profiled = True
    idb_store.IndexedDBStore._call = call

runs = []
for r in range(repeat):
    await LocalIndex.drop(name)
    idx = await LocalIndex.create(name, dims=dims)
    spent.clear()
    t0 = js.performance.now()
    await idx.insert_many(items)
    total = ms(t0)
    marks = json.loads(str(js_module_marks())) if js_module_marks else {}
    t1 = js.performance.now()
    gc.collect()
    gc_ms = ms(t1)
    await idx.close()
    runs.append({"total": total, **spent, **marks, "gc": gc_ms})
await LocalIndex.drop(name)
result = {"runs": runs}
"""

MARKS = """
from pyapp.browser._bridge import js_module
_idb = js_module("clinvec_idb")
js_module_marks = (lambda: _idb.lastMarks()) if hasattr(_idb, "lastMarks") else None
"""


def summarise(runs: list[dict[str, float]]) -> dict[str, str]:
    keys = sorted({k for r in runs for k in r}, key=lambda k: -statistics.median(r.get(k, 0.0) for r in runs))
    out = {}
    for k in keys:
        values = [r.get(k, 0.0) for r in runs]
        out[k] = f"median {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", default="10000x768", help="NxDIMS")
    parser.add_argument("--runs", type=int, default=6, help="insert_many runs per page")
    parser.add_argument("--pages", type=int, default=3, help="fresh page loads")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    n, dims = (int(x) for x in args.size.split("x"))
    workload.write(DATA_DIR / args.size, n, dims, 120)
    from playwright.sync_api import sync_playwright

    server, url = start_server()
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/browser_insert_profile.py " + " ".join(sys.argv[1:]),
        "size": args.size,
        "pages": [],
    }
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
            )
            page = Page(context.new_page(), url, "test&index=bench-profile&model=models/none/")
            for p in range(args.pages):
                page.boot(reload=p > 0)
                before = load_average()
                params = {"size": args.size, "name": "profile-insert", "repeat": args.runs}
                r = page.run(CLINVEC_SETUP + MARKS + PROFILE, **params)
                entry = {"load_before": before, "load_after": load_average(), "runs": r["runs"]}
                report["pages"].append(entry)
                totals = ", ".join(f"{x['total']:.0f}" for x in r["runs"])
                print(f"page {p}: load {before} -> {entry['load_after']}; totals ms: {totals}", file=sys.stderr)
            context.close()
    finally:
        server.shutdown()
    all_runs = [r for p in report["pages"] for r in p["runs"]]
    report["summary"] = summarise(all_runs)
    report["summary_first_per_page"] = summarise([p["runs"][0] for p in report["pages"]])
    print(json.dumps({k: report[k] for k in ("date", "command", "summary", "summary_first_per_page")}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
