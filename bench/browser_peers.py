"""Browser peers benchmark: clinvec's page against Orama, MeMemo and vectra in one Chromium session.

    python bench/browser_peers.py                  # 10k x 768 and 10k x 384, all peers, table -> docs/BENCHMARKS.md
    python bench/browser_peers.py --sizes 10000x384 --peers clinvec,orama --no-write

Run it WITHOUT nice: the figures are timings. Every peer gets the same vectors, metadata and texts
(``_browser_workload.py``: files under ``bench/peers/data/``), is served from 127.0.0.1 by one server with the
app's headers (COOP/COEP/CSP, so every page has the same timer resolution), and is timed inside the page with
``performance.now()``: 20 warm-up + 100 timed queries (median), one durable insert
(median of up to 5, fewer when one takes seconds), insert_many of every item timed up to ``--insert-repeats``
times per peer, each into a fresh database (median and min; no further run once the runs took
``--repeat-budget`` seconds: the same rule for every peer), and reopen after a reload (from IndexedDB to the first
answer). Approximate peers (MeMemo's HNSW) get recall@10 against the exact top 10 (numpy, float64 cosine).
The peers are npm packages pinned by ``bench/peers/package-lock.json`` and bundled locally with esbuild
(``bench/peers/src/*-entry.mjs`` -> ``bench/peers/dist/``); how each one is driven fairly is in
``bench/peers/peer.mjs`` and /work/shared/peers/browser-peers.md. The load average is recorded per peer run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "bench" / "peers"
DATA_DIR = PEERS_DIR / "data"
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"
START, END = "<!-- browser-peers:start -->", "<!-- browser-peers:end -->"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _browser_workload as workload  # noqa: E402
from browser_bench import CHROMIUM, LAUNCH_ARGS, Page  # noqa: E402

import serve  # noqa: E402

PEERS = ("clinvec", "orama", "mememo", "vectra")
WARMUP, TIMED = 20, 100
ESBUILD_FLAGS = [
    "--bundle",
    "--format=esm",
    "--platform=browser",
    "--target=es2022",
    "--minify",
    "--inject:src/buffer-shim.mjs",
    "--alias:buffer=./src/buffer-shim.mjs",
    "--alias:stream=./src/stream-stub.mjs",
    "--alias:fs=./src/node-stub.mjs",
    "--alias:fs/promises=./src/node-stub.mjs",
    "--alias:path=./src/node-stub.mjs",
    "--alias:node:path=./src/node-stub.mjs",
    "--log-level=error",
]


# ---------------------------------------------------------------- setup: bundles, data, server


def build_bundles() -> None:
    """``npm ci`` under bench/peers when its node_modules is missing, then esbuild each peer's entry module."""
    if not (PEERS_DIR / "node_modules" / ".bin" / "esbuild").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS_DIR, check=True)
    esbuild = str(PEERS_DIR / "node_modules" / ".bin" / "esbuild")
    for peer in PEERS[1:]:
        out = PEERS_DIR / "dist" / f"{peer}.mjs"
        src = PEERS_DIR / "src" / f"{peer}-entry.mjs"
        lock = PEERS_DIR / "package-lock.json"
        if out.is_file() and out.stat().st_mtime > max(src.stat().st_mtime, lock.stat().st_mtime):
            continue
        cmd = [esbuild, f"src/{peer}-entry.mjs", *ESBUILD_FLAGS, f"--outfile=dist/{peer}.mjs"]
        subprocess.run(cmd, cwd=PEERS_DIR, check=True)


class _Handler(serve.Handler):
    """The app's handler (same headers for every page); ``/bench/...`` is served from ``bench/peers/``."""

    quiet = True

    def _serve(self, head: bool) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/bench/"):
            self.root = PEERS_DIR
            self.path = self.path[len("/bench") :]
        else:
            self.root = serve.WEB
        super()._serve(head)


def start_server() -> tuple[serve.Server, str]:
    import web_build

    web_build.build() if web_build.needs_build() else web_build.refresh_app()
    server = serve.Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def exact_top10(folder: Path, n: int, dims: int, queries: int, only: Any = None) -> list[list[int]]:
    """The exact top 10 rows per query by float64 cosine: the truth recall@10 is measured against.
    ``only``: a boolean mask of the rows a filter keeps (the filtered query's truth)."""
    v = np.fromfile(folder / "vectors.f32", dtype="<f4").reshape(n, dims).astype(np.float64)
    q = np.fromfile(folder / "queries.f32", dtype="<f4").reshape(-1, dims)[:queries].astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    s = q @ v.T
    if only is not None:
        s[:, ~only] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :10].tolist()


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return round(statistics.fmean(len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)), 3)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "n": len(ordered),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- clinvec, inside the app's worker

CLINVEC_SETUP = """
import js, json
from pyapp import LocalIndex

async def fetch_bytes(url):
    response = await js.fetch(url)
    return (await response.arrayBuffer()).to_bytes()

base = f"/bench/data/{size}/"
meta = json.loads((await fetch_bytes(base + "meta.json")).decode())
n, dims = meta["n"], meta["dims"]
flat = memoryview(await fetch_bytes(base + "vectors.f32")).cast("f")
qflat = memoryview(await fetch_bytes(base + "queries.f32")).cast("f")
items = [
    {"id": f"n{i}", "vector": flat[i * dims : (i + 1) * dims], "metadata": {"category": meta["categories"][i]},
     "text": meta["texts"][i]}
    for i in range(n)
]
queries = [qflat[i * dims : (i + 1) * dims] for i in range(meta["queries"])]
qtexts = meta["query_texts"]

def ms(t0):
    return js.performance.now() - t0
"""

CLINVEC_RUN = """
# insert_many timed up to `repeats` times, each into a freshly created database (the rule every peer follows,
# peer.mjs): stop repeating once the runs so far took `repeat_budget_ms`; the last index stays for the queries.
insert_many, idx = [], None
while len(insert_many) < repeats and (not insert_many or sum(insert_many) < repeat_budget_ms):
    if idx is not None:
        await idx.close()
    await LocalIndex.drop(name)
    idx = await LocalIndex.create(name, dims=dims)
    t0 = js.performance.now()
    await idx.insert_many(items)
    insert_many.append(ms(t0))

async def timed(call):
    for i in range(warmup):
        await call(i)
    out, found = [], []
    for i in range(warmup, warmup + timed_n):
        t0 = js.performance.now()
        hits = await call(i)
        out.append(ms(t0))
        found.append([int(h.id[1:]) for h in hits])
    return out, found

plain, found = await timed(lambda i: idx.query(queries[i], top_k=10))
filtered, filtered_found = await timed(lambda i: idx.query(queries[i], top_k=10, filter={"category": "c3"}))
hybrid, _ = await timed(lambda i: idx.query(queries[i], text=qtexts[i], top_k=10))
# The kernel alone: a scan of every row against one of the rows the filter picks (10 %), so the filter's share
# of a query is visible without the per-query fixed costs (planning, bridge calls, items).
from pyapp.filters import compile_filter
from pyapp.planner import select_rows
state = idx._state
kq = state.kernel.prepare(state.kernel.pack([queries[0]]), 1)
picked = select_rows(state, compile_filter({"category": "c3"}))
scan_all, scan_sub, select_ms = [], [], []
for _ in range(50):
    t0 = js.performance.now()
    state.kernel.topk(kq, 10)
    scan_all.append(ms(t0))
    t0 = js.performance.now()
    picked = select_rows(state, compile_filter({"category": "c3"}))
    select_ms.append(ms(t0))
    t0 = js.performance.now()
    state.kernel.topk(kq, 10, picked)
    scan_sub.append(ms(t0))
one = []
for i in range(5):
    t0 = js.performance.now()
    await idx.insert(queries[-1 - i], metadata={"category": "c3"}, text=qtexts[-1 - i], id=f"extra{i}")
    one.append(ms(t0))
ivf = (await idx.stats())["ivf"]
await idx.close()
result = {"insert_many_ms": insert_many, "query_ms": plain, "found": found, "filtered_ms": filtered,
          "filtered_found": filtered_found, "ivf": ivf,
          "hybrid_ms": hybrid, "insert_one_ms": one, "kernel_scan_all_ms": scan_all, "kernel_scan_10pct_ms": scan_sub,
          "filter_select_ms": select_ms, "picked": len(picked)}
"""

CLINVEC_REOPEN = """
t0 = js.performance.now()
idx = await LocalIndex.open(name)
await idx.query(queries[0], top_k=10)
reopen = ms(t0)
count = await idx.count()
await idx.close()
await LocalIndex.drop(name)
result = {"reopen_ms": reopen, "count": count}
"""


def run_clinvec(context: Any, url: str, size: str, repeat_args: dict[str, Any]) -> dict[str, Any]:
    page = Page(context.new_page(), url, "test&index=bench-peers&model=models/none/")
    page.boot()
    params = {"size": size, "name": f"peers-{size}", "warmup": WARMUP, "timed_n": TIMED, **repeat_args}
    r = page.run(CLINVEC_SETUP + CLINVEC_RUN, **params)
    page.boot(reload=True)  # nothing of the index left in memory
    r.update(page.run(CLINVEC_SETUP + CLINVEC_REOPEN, **params))
    page.page.close()
    search = "exact (JS/WASM SIMD kernel)"
    ivf = r.pop("ivf", {})
    if ivf.get("active"):  # past create()'s ivf_threshold: partitioned, so the recall rows say what was found
        depth = (
            "the calibrated probe depth is a third of the rows or more on these vectors, so queries scan every "
            "row exactly"
            if ivf.get("auto_scan") == "exact"
            else "default probe depth: approximate"
        )
        search = (
            f"partitioned (IVF, {ivf.get('lists')} lists, {depth}) past {ivf.get('threshold'):,} rows, "
            "a selective filter scanned exactly"
        )
    r["notes"] = f"{search}; insert_many and every insert durable in IndexedDB before they return"
    return r


# ---------------------------------------------------------------- the JS peers, in bench/peers/page.html


def run_peer(
    context: Any, url: str, peer: str, size: str, budget_s: float, repeat_args: dict[str, Any]
) -> dict[str, Any]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}bench/page.html?peer={peer}&size={size}")
    page.wait_for_selector("html[data-ready]", state="attached", timeout=120_000)
    args = {"warmup": WARMUP, "timed": TIMED, "budget_ms": budget_s * 1000, **repeat_args}
    out = json.loads(page.evaluate("a => window.peerBench.run(a)", json.dumps(args)))
    if "error" in out:
        page.close()
        return out
    page.goto(f"{url}bench/page.html?peer={peer}&size={size}")  # a new page: nothing left in memory
    page.wait_for_selector("html[data-ready]", state="attached", timeout=120_000)
    out.update(json.loads(page.evaluate("a => window.peerBench.reopen(a)", json.dumps(args))))
    page.close()
    if errors:
        out["page_errors"] = errors
    return out


# ---------------------------------------------------------------- report


ROWS = (
    ("top-10 query, ms: median (min)", "query_ms"),
    ("hybrid top-10, ms: median (min)", "hybrid_ms"),
    ("filtered top-10, category == c3, ms: median (min)", "filtered_ms"),
    ("one durable insert, ms: median (min)", "insert_one_ms"),
    ("insert_many of all rows, s: median (min)", "insert_many_ms"),
    ("reopen to first answer (s)", "reopen_ms"),
    ("recall@10 vs exact", "recall"),
    ("filtered recall@10 vs exact", "filtered_recall"),
)


def cell(r: dict[str, Any] | None, key: str) -> str:
    if r is None:
        return "—"
    if "error" in r:
        return "did not finish" if key == "insert_many_ms" else "—"
    v = r.get(key)
    if v is None:
        return r.get(f"{key}_note", "n/a")
    if key in ("recall", "filtered_recall"):
        return f"{v:.2f}"
    if key in ("insert_many_ms", "reopen_ms"):
        runs = v if isinstance(v, list) else [v]
        if len(runs) == 1:
            return f"{runs[0] / 1000:.2f}"
        return f"{statistics.median(runs) / 1000:.2f} ({min(runs) / 1000:.2f}; {len(runs)} runs)"
    if not isinstance(v, list):
        return _ms(v)
    # The median, and the fastest run: on a busy shared machine a run longer than a scheduler slice is often
    # preempted, so the minimum shows the work itself and the median what a user on that machine saw.
    return f"{_ms(statistics.median(v))} ({_ms(min(v))})" if len(v) > 1 else _ms(v[0])


def _ms(v: float) -> str:
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def table(report: dict[str, Any]) -> str:
    lines = []
    for size, runs in report["sizes"].items():
        peers = [p for p in PEERS if p in runs]
        lines.append(
            f"**{size}** (load average before/after each peer: "
            + "; ".join(f"{p} {runs[p]['load_before']} -> {runs[p]['load_after']}" for p in peers)
            + ")"
        )
        lines.append("")
        lines.append("| | " + " | ".join(peers) + " |")
        lines.append("|---|" + "---|" * len(peers))
        for label, key in ROWS:
            lines.append(f"| {label} | " + " | ".join(cell(runs.get(p), key) for p in peers) + " |")
        notes = [f"{p}: {runs[p]['notes']}" for p in peers if runs[p].get("notes")]
        notes += [f"{p} failed: {runs[p]['error']}" for p in peers if runs[p].get("error")]
        c = runs.get("clinvec") or {}
        if c.get("kernel_scan_all_ms"):
            notes.append(
                "clinvec's kernel alone, ms, median (min) of 50: top-10 scan of every row "
                f"{cell(c, 'kernel_scan_all_ms')}; picking the filter's {c['picked']} rows in JS "
                f"{cell(c, 'filter_select_ms')} and scanning only those {cell(c, 'kernel_scan_10pct_ms')}"
            )
        if notes:
            lines.append("")
            lines.extend(f"- {n}" for n in notes)
        lines.append("")
    return "\n".join(lines)


def write_table(report: dict[str, Any]) -> None:
    text = BENCHMARKS.read_text()
    block = (
        f"{START}\n**Run**: {report['date']}, Chromium {report['chromium']}, command `{report['command']}` "
        f"(not niced).\n\n{table(report)}{END}"
    )
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000x768,10000x384", help="comma-separated NxDIMS")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--no-write", action="store_true", help="do not write the table to docs/BENCHMARKS.md")
    parser.add_argument(
        "--build-budget", type=float, default=300, help="seconds a peer's insert_many may take before it is stopped"
    )
    parser.add_argument(
        "--insert-repeats",
        type=int,
        default=5,
        help="time insert_many up to this many times per peer, a fresh database each time (median and min)",
    )
    parser.add_argument(
        "--repeat-budget", type=float, default=20, help="no further insert_many run once the runs took this long (s)"
    )
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    repeat_args = {"repeats": max(1, args.insert_repeats), "repeat_budget_ms": args.repeat_budget * 1000}
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; choose from {PEERS}")
    build_bundles()
    from playwright.sync_api import sync_playwright

    server, url = start_server()
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python bench/browser_peers.py " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(),
        "sizes": {},
    }
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
            )
            report["chromium"] = context.browser.version if context.browser else None
            for size in args.sizes.split(","):
                n, dims = (int(x) for x in size.split("x"))
                folder = workload.write(DATA_DIR / size, n, dims, WARMUP + TIMED)
                truth = exact_top10(folder, n, dims, WARMUP + TIMED)[WARMUP:]
                c3 = np.arange(n) % 10 == 3  # category == "c3" (_browser_workload: c{i % 10})
                truth_c3 = exact_top10(folder, n, dims, WARMUP + TIMED, only=c3)[WARMUP:]
                runs: dict[str, Any] = {}
                for peer in peers:
                    before = load_average()
                    print(f"# {size} {peer} (load {before})", file=sys.stderr, flush=True)
                    try:
                        r = (
                            run_clinvec(context, url, size, repeat_args)
                            if peer == "clinvec"
                            else run_peer(context, url, peer, size, args.build_budget, repeat_args)
                        )
                    except Exception as exc:  # one peer failing must not lose the others' figures
                        r = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                    r["load_before"], r["load_after"] = before, load_average()
                    if "found" in r:
                        r["recall"] = recall(r.pop("found"), truth)
                    if "filtered_found" in r:
                        r["filtered_recall"] = recall(r.pop("filtered_found"), truth_c3)
                    runs[peer] = r
                    print(json.dumps({k: v for k, v in r.items() if not k.endswith("_ms")}), file=sys.stderr)
                report["sizes"][size] = runs
            context.close()
    finally:
        server.shutdown()
    print(table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if not args.no_write:
        write_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
