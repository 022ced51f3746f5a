"""Browser build benchmark: boot, vector kernel, commit and reopen latency in Chromium (Playwright).

    python bench/browser_bench.py [--rows 10000] [--dims 768] [--out bench/results/browser-DATE.json]
    python bench/browser_bench.py --boot-only --warm 5 [--sw]   # boot phases only
    python bench/browser_bench.py --cold-ab 2                   # cold: build snapshot vs none, alternating

Measures, on this machine, in Debian's Chromium driving the real page served by ``serve.py``:

* boot to ``data-state="ready"``: cold (fresh profile, empty HTTP cache) and warm (reloads);
* top-10 query latency over ``rows x dims`` with the active kernel (JsKernel alone, and LocalIndex.query);
* latency of one ``LocalIndex.insert`` (one IndexedDB commit) into an index of ``rows`` items;
* reopening that index from IndexedDB after a reload (``IndexedDBStore.open`` alone and ``LocalIndex.open``);
* per model-bundle variant (fp32, int8; ``web/models/minilm`` unless ``--model``): loading the bundle
  (download + sha256 + session) and the time to embed one query with ``WebEmbedder`` (``--embed-only``
  runs just this part). The page's own boot includes loading the int8 bundle when one is served.

Why in-page timers: ``performance.now()`` inside the worker excludes the Playwright round trip.
Figures vary a lot on a shared 2-core VM: report medians and run it on an idle machine when possible.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from chromium import CHROMIUM, LAUNCH_ARGS  # noqa: E402 - the browser tests' Chromium and flags
from serve_process import ServePy  # noqa: E402 - serve.py on a free port, as the browser tests start it

SETUP = """
import js, random, statistics
from array import array
from pyapp import LocalIndex
WORDS = ("chest pain dyspnoea fever cough sepsis fracture fall asthma wheeze troponin ecg stroke headache "
         "nausea vomiting diabetes insulin renal failure anaemia transfusion pneumonia copd").split()
rnd = random.Random(11)

def vectors(n):
    return array("f", array("b", rnd.randbytes(n * dims)))

def note(i):
    return " ".join(rnd.choice(WORDS) for _ in range(12)) + f" note {i}"

def ms(t0):
    return js.performance.now() - t0
"""

KERNEL = """
from pyapp.browser.js_kernel import JsKernel
k = JsKernel(dims)
k.load(k.prepare(vectors(rows).tobytes(), rows), rows)
q = k.prepare(vectors(1).tobytes(), 1)
times = []
for _ in range(30):
    t0 = js.performance.now()
    k.topk(q, 10)
    times.append(ms(t0))
subset = list(range(0, rows, 2))
sub_times = []
for _ in range(15):
    t0 = js.performance.now()
    k.topk(q, 10, subset)
    sub_times.append(ms(t0))
result = {"engine": k.engine, "topk_ms": times, "topk_half_rows_ms": sub_times}
"""

BUILD_INDEX = """
await LocalIndex.drop(name)
idx = await LocalIndex.create(name, dims=dims, indexed=["ward"])
allv = vectors(rows)
items = [{"id": f"n{i}", "vector": allv[i * dims:(i + 1) * dims], "metadata": {"ward": "ABC"[i % 3], "i": i},
          "text": note(i)} for i in range(rows)]
t0 = js.performance.now()
await idx.insert_many(items)
bulk = ms(t0)
one = []
for i in range(20):
    v = vectors(1)
    t0 = js.performance.now()
    await idx.insert(v, metadata={"ward": "A"}, text=note(rows + i), id=f"extra{i}")
    one.append(ms(t0))
q = vectors(1)
query_ms = []
for _ in range(20):
    t0 = js.performance.now()
    await idx.query(q, top_k=10)
    query_ms.append(ms(t0))
hybrid_ms = []
for _ in range(10):
    t0 = js.performance.now()
    await idx.query(q, text="chest pain troponin", top_k=10)
    hybrid_ms.append(ms(t0))
stats = await idx.stats()
await idx.close()
result = {"insert_many_ms": bulk, "insert_one_ms": one, "query_ms": query_ms, "hybrid_query_ms": hybrid_ms,
          "kernel": stats["kernel"], "items": stats["items"], "persisted": stats.get("persisted"),
          "snapshot_bytes": stats.get("snapshot_bytes"), "log_bytes": stats.get("log_bytes")}
"""

REOPEN = """
from pyapp.browser.idb_store import IndexedDBStore
s = IndexedDBStore(name)
t0 = js.performance.now()
snap = await s.open(read_only=True)
store_ms = ms(t0)
await s.close()
t0 = js.performance.now()
idx = await LocalIndex.open(name)
index_ms = ms(t0)
count = await idx.count()
await idx.close()
result = {"store_open_ms": store_ms, "index_open_ms": index_ms, "count": count, "log_commits": len(snap.log)}
"""


EMBED = """
from pyapp.browser.web_embedder import WebEmbedder
from pyapp.browser._bridge import js_module
QUERIES = ["chest pain radiating to the left arm", "shortness of breath after a long flight",
           "poorly controlled type 2 diabetes, HbA1c 9.1%", "fever and productive cough", "fall with hip fracture",
           "new onset atrial fibrillation", "acute kidney injury after contrast", "anaphylaxis to peanuts",
           "headache with photophobia and neck stiffness", "sepsis of urinary source with raised lactate"]
LONG = " ".join(["Long note: observations stable, mobilising with physio, eating and drinking well."] * 12)
root = str(js_module("clinvec_embed").webRoot())
phases = {}
last = {"phase": None, "t": js.performance.now()}

def on_progress(phase, done, total):
    now = js.performance.now()
    if phase != last["phase"]:
        last["phase"], last["t"] = phase, now
    phases[phase] = now - last["t"]

t0 = js.performance.now()
emb = await WebEmbedder.load(root + model, variant=variant, progress=on_progress)
load_ms = ms(t0)
for q in QUERIES[:2]:
    await emb.embed_raw([q])  # warm-up: first runs allocate
times = []
for _ in range(3):
    for q in QUERIES:
        t0 = js.performance.now()
        await emb.embed_raw([q])
        times.append(ms(t0))
tokens = min(len(emb.tokenizer.encode(LONG).input_ids), emb.max_seq_length)
long_times = []
for _ in range(5):
    t0 = js.performance.now()
    await emb.embed_raw([LONG])
    long_times.append(ms(t0))
batch_t0 = js.performance.now()
await emb.embed_raw(QUERIES * 4)
batch_ms = ms(batch_t0)
result = {"load_ms": load_ms, "phases_ms": phases, "query_ms": times, "long_ms": long_times, "long_tokens": tokens,
          "batch40_ms": batch_ms, "threads": emb.threads, "identity": emb.identity}
await emb.close()
"""


def bench_embedding(page: Page, model: str) -> dict[str, Any]:
    """Query-embedding latency per variant of the bundle at ``web/<model>`` (skipped when it is absent)."""
    bundle = ROOT / "web" / model
    if not (bundle / "manifest.json").is_file():
        return {"skipped": f"no bundle at web/{model}: run `python -m export --model minilm`"}
    out: dict[str, Any] = {"model": model}
    for variant in ("fp32", "int8"):
        r = page.run(EMBED, model=model, variant=variant)
        out[variant] = {
            "load_ms": round(r["load_ms"]),
            "load_phases_ms": {k: round(v) for k, v in r["phases_ms"].items()},
            "query_embed_ms": summary(r["query_ms"]),
            f"embed_{r['long_tokens']}_tokens_ms": summary(r["long_ms"]),
            "embed_40_queries_batched_ms_each": round(r["batch40_ms"] / 40, 1),
            "threads": r["threads"],
            "sha256": r["identity"]["sha256"][:12],
        }
    return out


class Page:
    """The page at ``?test`` and a way to run Python in its worker."""

    def __init__(self, page: Any, url: str, query: str = "test") -> None:
        self.page, self.url, self.query = page, url, query

    def boot(self, reload: bool = False) -> float:
        t0 = time.perf_counter()
        self.page.reload() if reload else self.page.goto(f"{self.url}?{self.query}")
        self.page.wait_for_selector('html:not([data-state="loading"])', state="attached", timeout=300_000)
        if self.page.get_attribute("html", "data-state") != "ready":
            raise RuntimeError(self.page.text_content("#error"))
        return time.perf_counter() - t0

    def marks(self) -> list[Any]:
        return self.page.evaluate("() => window.clinvecBootMarks")

    def phases(self) -> dict[str, Any]:
        """The boot's phase durations in ms, as the page measured them. Then waits (untimed) until the page
        has made its Python snapshot when it had none, as a user's first visit does within seconds."""
        phases = self.page.evaluate("() => window.clinvecBoot.phases")
        settled = 'html[data-snapshot]:not([data-snapshot="pending"]):not([data-snapshot="making"])'
        self.page.wait_for_selector(settled, state="attached", timeout=300_000)
        return phases

    def run(self, code: str, **params: Any) -> Any:
        prelude = "".join(f"{k} = __import__('json').loads({json.dumps(json.dumps(v))})\n" for k, v in params.items())
        out = json.loads(self.page.evaluate("c => window.clinvecTest.run(c)", prelude + SETUP + code))
        if not out["ok"]:
            raise RuntimeError(out["traceback"])
        return out["result"]


PHASES = ("page", "runtime", "pyapp", "model", "index", "app", "total")


def bench_boot(pw: Any, url: str, warm: int, query: str) -> dict[str, Any]:
    """Boot to "ready" in a fresh profile (cold: empty HTTP and compiled-wasm caches), then ``warm`` reloads.

    Per boot: the wall time Playwright saw and the page's own phase figures (``window.clinvecBoot.phases``,
    ms): page (navigation -> main.mjs), runtime (worker start to worker.py loaded: Pyodide, from its memory
    snapshot when one is stored), pyapp (import), model (what is left of the bundle load once Python asks:
    the worker prefetches it in parallel), index (IndexedDB open), app (model + index + first render),
    total; ``worker`` has the worker's own marks (snapshot restored/missing, ms since the worker started).
    """
    out: dict[str, Any] = {"query": query}
    with tempfile.TemporaryDirectory() as profile:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
        )
        try:
            page = Page(context.new_page(), url, query)
            runs = [{"wall_s": round(page.boot(), 2), **page.phases()}]
            for _ in range(warm):
                runs.append({"wall_s": round(page.boot(reload=True), 2), **page.phases()})
        finally:
            context.close()
    out["cold"] = runs[0]
    out["warm"] = runs[1:]
    if len(runs) > 1:
        out["warm_median"] = {k: statistics.median(r[k] for r in runs[1:]) for k in ("wall_s", *PHASES)}
    return out


def bench_cold_ab(pw: Any, url: str, rounds: int) -> dict[str, Any]:
    """Cold boots with the build's Python snapshot (``?test``) and without any (``?test&nosnapshot``, what a
    first visit was before the build shipped one), alternating, each in a fresh profile (no HTTP or
    compiled-code cache), then one reload of that profile; the page's phase figures per boot."""
    out: dict[str, Any] = {"with_build_snapshot": [], "no_snapshot": []}
    for _ in range(rounds):
        for key, query in (("with_build_snapshot", "test"), ("no_snapshot", "test&nosnapshot")):
            with tempfile.TemporaryDirectory() as profile:
                context = pw.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
                )
                try:
                    page = Page(context.new_page(), url, query)
                    cold = {"wall_s": round(page.boot(), 2), **page.phases()}
                    warm = {"wall_s": round(page.boot(reload=True), 2), **page.phases()}
                finally:
                    context.close()
            out[key].append({"cold": cold, "reload": warm})
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "min": round(ordered[0], 2),
        "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "n": len(ordered),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--warm", type=int, default=3, help="warm reloads to time")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    parser.add_argument("--model", default="models/minilm/", help="bundle folder under web/ for the embedding part")
    parser.add_argument("--embed-only", action="store_true", help="only the query-embedding benchmark")
    parser.add_argument("--boot-only", action="store_true", help="only boot phases: cold, then --warm reloads")
    parser.add_argument(
        "--cold-ab", type=int, metavar="N", help="only N rounds of cold boots, build snapshot vs none, alternating"
    )
    parser.add_argument(
        "--sw", action="store_true", help="with --boot-only: boot through the service worker (?test=sw), as users do"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    import web_build

    web_build.build() if web_build.needs_build() else web_build.refresh_app()
    server = ServePy()
    url = server.url
    params = {"rows": args.rows, "dims": args.dims, "name": f"bench-{args.rows}x{args.dims}"}
    report: dict[str, Any] = {"rows": args.rows, "dims": args.dims, "chromium": None}
    try:
        if args.cold_ab:
            with sync_playwright() as pw:
                report["cold_ab"] = bench_cold_ab(pw, url, args.cold_ab)
            return _emit(report, args.out)
        if args.boot_only:
            with sync_playwright() as pw:
                report["boot"] = bench_boot(pw, url, args.warm, "test=sw" if args.sw else "test")
            return _emit(report, args.out)
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True
            )
            report["chromium"] = context.browser.version if context.browser else None
            page = Page(context.new_page(), url)
            if args.embed_only:
                page.boot()
                report["embedding"] = bench_embedding(page, args.model)
                context.close()
                return _emit(report, args.out)
            report["boot_cold_s"] = round(page.boot(), 2)
            report["boot_cold_marks_ms"] = page.marks()
            warm = [page.boot(reload=True) for _ in range(args.warm)]
            report["boot_warm_s"] = summary(warm)
            report["boot_warm_marks_ms"] = page.marks()
            report["runtime"] = page.run("import sys, pyodide\nresult = [sys.version.split()[0], pyodide.__version__]")
            kernel = page.run(KERNEL, **params)
            report["kernel"] = {
                "engine": kernel["engine"],
                "topk10_ms": summary(kernel["topk_ms"]),
                "topk10_half_rows_ms": summary(kernel["topk_half_rows_ms"]),
            }
            built = page.run(BUILD_INDEX, **params)
            report["index"] = {
                "kernel": built["kernel"],
                "items": built["items"],
                "persisted": built["persisted"],
                "insert_many_s": round(built["insert_many_ms"] / 1000, 2),
                "insert_one_commit_ms": summary(built["insert_one_ms"]),
                "query_top10_ms": summary(built["query_ms"]),
                "hybrid_query_top10_ms": summary(built["hybrid_query_ms"]),
                "snapshot_bytes": built["snapshot_bytes"],
                "log_bytes": built["log_bytes"],
            }
            page.boot(reload=True)  # a new session: nothing of the index left in memory
            report["reopen"] = page.run(REOPEN, **params)
            page.run("await LocalIndex.drop(name)\nresult = True", **params)
            report["embedding"] = bench_embedding(page, args.model)
            context.close()
    finally:
        server.stop()
    return _emit(report, args.out)


def _emit(report: dict[str, Any], out: Path | None) -> int:
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
