"""IVF in the browser build: 100k x 384 query latency and recall@10 in Chromium (Pyodide without numpy).

    python bench/ivf_browser_bench.py [--rows 100000] [--dims 384] [--queries 100] [--out FILE.json]

The rows and queries are a Gaussian mixture (bench/ivf_bench.py's ``gmm``) made with numpy here, written as raw
float32 under web/vendor/ivf-bench/ (git-ignored, served by serve.py) and fetched by the page, which then does
everything itself: ``insert_many`` of all rows into an IndexedDB index in one commit (a bulk load past the
threshold: the page trains k-means in JS, assigns every row, saves the snapshot with the partitions), top-10
vector queries with the automatic probe and with ``exact=True`` (recall@10 of the former against the latter,
and the exact answers checked against numpy's here), then a reload and ``LocalIndex.open`` (partitions from
the snapshot, no training) and the same queries again. Times are the worker's ``performance.now()``.
Uses browser_bench.py's page driver. Run it WITHOUT nice; the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser_bench import CHROMIUM, LAUNCH_ARGS, ROOT, Page, summary  # noqa: E402
from ivf_bench import gmm  # noqa: E402

DATA = ROOT / "web" / "vendor" / "ivf-bench"

BUILD = """
from pyodide.http import pyfetch
from pyapp.browser._bridge import js_module
root = str(js_module("clinvec_embed").webRoot()) + "vendor/ivf-bench/"
data = await (await pyfetch(root + "data.f32")).bytes()
qs = await (await pyfetch(root + "queries.f32")).bytes()
qv = [list(memoryview(qs).cast("f")[i * dims:(i + 1) * dims]) for i in range(nq)]
await LocalIndex.drop(name)
idx = await LocalIndex.create(name, dims=dims, ivf_threshold=threshold)
view = memoryview(data).cast("f")
items = [{"id": f"r{i}", "vector": view[i * dims:(i + 1) * dims]} for i in range(rows)]
t0 = js.performance.now()
await idx.insert_many(items)
insert_ms = ms(t0)
del items
"""

QUERIES = """
auto_ms, exact_ms, found, exact_ids = [], [], 0, []
for q in qv[:3]:
    await idx.query(q, top_k=10, mode="vector")
for q in qv:
    t0 = js.performance.now()
    exact = await idx.query(q, top_k=10, mode="vector", exact=True)
    exact_ms.append(ms(t0))
    t0 = js.performance.now()
    auto = await idx.query(q, top_k=10, mode="vector")
    auto_ms.append(ms(t0))
    found += len({r.id for r in auto} & {r.id for r in exact})
    exact_ids.append([r.id for r in exact])
stats = await idx.stats()
# where a probed query's time goes: choosing the lists and gathering their rows, then the kernel's scan
parts, kernel, probe_ms, scan_ms = idx._state.ivf, idx._state.kernel, [], []
for q in qv:
    prepared = kernel.prepare(kernel.pack([q]), 1)
    t0 = js.performance.now()
    rows = parts.candidates(prepared, 10)
    probe_ms.append(ms(t0))
    t0 = js.performance.now()
    kernel.topk(prepared, 10, rows)
    scan_ms.append(ms(t0))
"""

REOPEN = """
from pyodide.http import pyfetch
from pyapp.browser._bridge import js_module
root = str(js_module("clinvec_embed").webRoot()) + "vendor/ivf-bench/"
qs = await (await pyfetch(root + "queries.f32")).bytes()
qv = [list(memoryview(qs).cast("f")[i * dims:(i + 1) * dims]) for i in range(nq)]
t0 = js.performance.now()
idx = await LocalIndex.open(name)
open_ms = ms(t0)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--threshold", type=int, default=None, help="ivf_threshold of the index (default: the library's)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    import web_build

    web_build.build() if web_build.needs_build() else web_build.refresh_app()
    data, queries = gmm(args.rows, args.dims, args.queries)
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "data.f32").write_bytes(data.astype("<f4").tobytes())
    (DATA / "queries.f32").write_bytes(queries.astype("<f4").tobytes())
    truth = [[f"r{i}" for i in np.argsort(-(data @ q), kind="stable")[:10]] for q in queries]
    report: dict[str, Any] = {
        "bench": "ivf-browser",
        "rows": args.rows,
        "dims": args.dims,
        "queries": args.queries,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "serve.py"), "--no-build", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip().rsplit(" at ", 1)[1]
    params = {"rows": args.rows, "dims": args.dims, "nq": args.queries, "name": f"ivf-bench-{args.rows}"}
    params["threshold"] = args.threshold
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
            )
            report["chromium"] = context.browser.version if context.browser else None
            page = Page(context.new_page(), url)
            page.boot()
            first = page.run(
                BUILD
                + QUERIES
                + "await idx.close()\n"
                + "result = {'insert_ms': insert_ms, 'auto_ms': auto_ms, 'exact_ms': exact_ms, 'found': found,"
                + " 'exact_ids': exact_ids, 'ivf': stats['ivf'], 'kernel': stats['kernel'],"
                + " 'probe_ms': probe_ms, 'scan_ms': scan_ms}",
                **params,
            )
            page.boot(reload=True)
            again = page.run(
                REOPEN
                + QUERIES
                + "await idx.close()\nawait LocalIndex.drop(name)\n"
                + "result = {'open_ms': open_ms, 'auto_ms': auto_ms, 'exact_ms': exact_ms, 'found': found}",
                **params,
            )
            context.close()
    finally:
        server.terminate()
        server.wait()
        for name in ("data.f32", "queries.f32"):  # never left in web/vendor for a later build to precache
            (DATA / name).unlink(missing_ok=True)
    total = 10 * args.queries
    report["kernel"] = first["kernel"]
    report["ivf"] = first["ivf"]
    report["insert_many_s"] = round(first["insert_ms"] / 1000, 2)
    report["exact_matches_numpy"] = sum(a == b for a, b in zip(first["exact_ids"], truth)) / args.queries
    report["fresh"] = {
        "auto_query_ms": summary(first["auto_ms"]),
        "exact_query_ms": summary(first["exact_ms"]),
        "recall_at_10": round(first["found"] / total, 4),
        "choose_and_gather_ms": summary(first["probe_ms"]),
        "candidate_scan_ms": summary(first["scan_ms"]),
    }
    report["reopened"] = {
        "open_ms": round(again["open_ms"]),
        "auto_query_ms": summary(again["auto_ms"]),
        "exact_query_ms": summary(again["exact_ms"]),
        "recall_at_10": round(again["found"] / total, 4),
    }
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    line = json.dumps(report)
    print(line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as fh:
            fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
