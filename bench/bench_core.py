"""clinvec's core benchmark, run side by side with the vectra 0.15.0 peer on the same workload.

Why this shape: the machines are shared and noisy, so clinvec and vectra run in one invocation, one
after the other, and are compared by process CPU time (all threads) rather than wall time. The
workload is ``bench.mjs``'s, bit for bit (``_workload.py``): N items inserted in one batch and one
durable commit, then a *fresh* process opens the index and times 100 top-10 queries without and with
``{category: {$eq: 'c3'}}``; a third process times single-upsert durable commits.

    python bench/bench_core.py run N [--indexed] [--vectors array|list] [--queries 100] [--upserts 50]
    python bench/bench_core.py compare N [--vectra-codec json|protobuf] [--out results.jsonl]
    python bench/bench_core.py table results.jsonl
    python bench/bench_core.py summary run1.jsonl run2.jsonl ...

``run`` prints one JSON line (clinvec only). ``compare`` runs vectra's ``bench.mjs`` and the clinvec
variants for the same N, appends every JSON line to ``--out`` and prints a ratio table. ``table``
renders a results file as the Markdown table used in docs/BENCHMARKS.md; ``summary`` puts the key
clinvec(plain)/vectra ratios of several whole-matrix runs side by side, one row per results file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (str(HERE), str(REPO)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import _workload as wl  # noqa: E402

VECTRA_VERSION = "0.15.0"
VARIANTS = ("plain", "indexed", "lists", "float32")
VARIANT_ORDER = {name: i for i, name in enumerate(VARIANTS + ("plain+1thr", "indexed+1thr", "lists+1thr"))}


# ---------------------------------------------------------------- measuring helpers
def cpu_s() -> float:
    """CPU time of this process, every thread included (numpy/BLAS and hashing threads count too)."""
    return time.process_time()


def peak_rss_mb() -> float:
    """Peak resident set of this process so far.

    Linux: ``VmHWM`` from /proc, because ``ru_maxrss`` survives ``execve`` and a child spawned by the big
    build process would report the parent's peak. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """Resident set right now (Linux only; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except OSError:
        return None


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile, the same definition as ``bench.mjs``."""
    ordered = sorted(values)
    k = max(1, -(-p * len(ordered) // 100))
    return ordered[int(k) - 1]


def r3(x: float) -> float:
    return round(x, 3)


def dir_bytes(path: str) -> tuple[int, int]:
    """Total bytes and file count under ``path``."""
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            total += os.path.getsize(os.path.join(root, name))
            files += 1
    return total, files


def host_facts() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "loadavg_1m": r3(os.getloadavg()[0]),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def _timed_series(samples: list[tuple[float, float]], prefix: str) -> dict[str, float]:
    """Median/p95 of wall ms and CPU ms for a list of (wall_s, cpu_s) samples."""
    walls = [w * 1000 for w, _ in samples]
    cpus = [c * 1000 for _, c in samples]
    return {
        f"{prefix}_ms_median": r3(statistics.median(walls)),
        f"{prefix}_ms_p95": r3(pct(walls, 95)),
        f"{prefix}_cpu_ms_median": r3(statistics.median(cpus)),
        f"{prefix}_cpu_ms_p95": r3(pct(cpus, 95)),
    }


# ---------------------------------------------------------------- clinvec phases
async def build_phase(a: argparse.Namespace, folder: str) -> dict[str, Any]:
    """Create the index and insert N items with one ``insert_many`` (one durable commit)."""
    from pyapp import LocalIndex

    matrix = wl.vectors(a.seed, a.n, a.dim)
    items = list(wl.items(matrix, as_lists=a.vectors == "list"))  # pre-generated: PRNG cost is not timed
    indexed = ["category"] if a.indexed else []
    idx = await LocalIndex.create(folder, dims=a.dim, indexed=indexed)
    c0, t0 = cpu_s(), time.perf_counter()
    await idx.insert_many(items)
    t1, c1 = time.perf_counter(), cpu_s()
    await idx.close()
    disk, files = dir_bytes(folder)
    return {
        "insert_s": r3(t1 - t0),
        "insert_cpu_s": r3(c1 - c0),
        "disk_bytes": disk,
        "disk_files": files,
        "peak_rss_build_mb": round(peak_rss_mb()),
    }


async def query_phase(a: argparse.Namespace) -> dict[str, Any]:
    """Fresh process: open, sanity-check, 1 warm-up per mode, then timed plain and filtered queries."""
    out: dict[str, Any] = {"rss_before_open_mb": round(current_rss_mb() or 0)}
    from pyapp import LocalIndex

    queries = wl.query_vectors(a.seed, a.queries, a.dim)
    qs: list[Any] = [q.tolist() for q in queries] if a.vectors == "list" else list(queries)
    out["rss_after_import_mb"] = round(current_rss_mb() or 0)
    c0, t0 = cpu_s(), time.perf_counter()
    idx = await LocalIndex.open(a.dir)
    t1, c1 = time.perf_counter(), cpu_s()
    out["open_s"] = r3(t1 - t0)
    out["open_cpu_s"] = r3(c1 - c0)
    out["items_loaded"] = await idx.count()

    probe = await idx.get(wl.item_id(0))
    top = await idx.query(vector=probe.vector if probe else qs[0], top_k=1)
    out["sanity_top1_ok"] = bool(top) and top[0].id == wl.item_id(0) and abs(top[0].score - 1) < 1e-5

    async def run(flt: dict[str, Any] | None) -> tuple[list[tuple[float, float]], float]:
        samples: list[tuple[float, float]] = []
        results = 0
        for q in qs:
            c, t = cpu_s(), time.perf_counter()
            hits = await idx.query(vector=q, top_k=a.topk, filter=flt)
            samples.append((time.perf_counter() - t, cpu_s() - c))
            results += len(hits)
        return samples, results / len(qs)

    await idx.query(vector=qs[0], top_k=a.topk)  # one untimed warm-up per mode, as bench.mjs does
    await idx.query(vector=qs[0], top_k=a.topk, filter=wl.FILTER)
    plain, _ = await run(None)
    filtered, mean_results = await run(wl.FILTER)
    out.update(_timed_series(plain, "query"))
    out.update(_timed_series(filtered, "filtered_query"))
    out["filtered_mean_results"] = mean_results
    out["filter_matches"] = await idx.count(wl.FILTER)
    out["rss_query_mb"] = round(current_rss_mb() or 0)
    out["peak_rss_query_mb"] = round(peak_rss_mb())
    await idx.close()
    return out


async def upsert_phase(a: argparse.Namespace) -> dict[str, Any]:
    """Fresh writer: ``a.upserts`` single upserts into the N-item index, each its own durable commit."""
    from pyapp import LocalIndex

    idx = await LocalIndex.open(a.dir)
    fresh = wl.vectors(a.seed + 7, a.upserts, a.dim)
    samples: list[tuple[float, float]] = []
    for j in range(a.upserts):
        i = (j * 7919) % a.n  # spread over the index; each upsert replaces an existing item
        vec: Any = fresh[j].tolist() if a.vectors == "list" else fresh[j]
        c, t = cpu_s(), time.perf_counter()
        await idx.upsert(wl.item_id(i), vec, wl.metadata(i))
        samples.append((time.perf_counter() - t, cpu_s() - c))
    count = await idx.count()
    await idx.close()
    return {**_timed_series(samples, "upsert_commit"), "upserts": a.upserts, "count_after_upserts": count}


def _child(a: argparse.Namespace, phase: str, folder: str) -> dict[str, Any]:
    """Run one phase in a fresh interpreter (cold: nothing cached in memory) and parse its JSON line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "phase", phase, "--dir", folder, *_common_args(a)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((s for s in reversed(proc.stdout.splitlines()) if s.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-3:])
        return {f"{phase}_error": tail or f"exit {proc.returncode}"}
    return json.loads(line)


def _workload_args(a: argparse.Namespace) -> list[str]:
    """The workload both engines run (size, dims, queries, top-k, seed): one spelling for both command lines."""
    return [str(a.n), "--dim", str(a.dim), "--queries", str(a.queries), "--topk", str(a.topk), "--seed", str(a.seed)]


def _common_args(a: argparse.Namespace) -> list[str]:
    args = [*_workload_args(a), "--upserts", str(a.upserts), "--vectors", a.vectors]
    return args + (["--indexed"] if a.indexed else [])


def run_clinvec(a: argparse.Namespace) -> dict[str, Any]:
    """Build in this process, query and upsert in fresh ones; one result dict shaped like bench.mjs's."""
    import numpy

    import pyapp
    from pyapp.kernels import default_kernel

    load0 = os.getloadavg()[0]
    wall0 = time.perf_counter()
    root = a.dir or tempfile.mkdtemp(prefix="clinvec-bench-")
    folder = os.path.join(root, "index")
    try:
        build = asyncio.run(build_phase(a, folder))
        query = _child(a, "query", folder)
        upsert = _child(a, "upsert", folder) if a.upserts > 0 else {}
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    host = host_facts()
    host.update(loadavg_1m_at_start=r3(load0), loadavg_1m_at_end=host.pop("loadavg_1m"))
    return {
        "tool": "clinvec",
        "clinvec_version": pyapp.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "n": a.n,
        "dim": a.dim,
        "topk": a.topk,
        "queries": a.queries,
        "seed": a.seed,
        "indexed_metadata": a.indexed,
        "vectors_input": a.vectors,
        "variant": _variant_name(a),
        "kernel": type(default_kernel(a.dim)).__name__,
        **build,
        **query,
        **upsert,
        "filter": wl.FILTER,
        "total_wall_s": r3(time.perf_counter() - wall0),
        "host": host,
        **({"kept_dir": folder} if a.keep else {}),
    }


def _variant_name(a: argparse.Namespace) -> str:
    """plain / indexed / lists, or float32 (plain on the float32-only kernel, ``CLINVEC_KERNEL=numpy``), with
    ``+1thr`` when OpenBLAS is pinned to one thread by the environment."""
    name = "indexed" if a.indexed else ("lists" if a.vectors == "list" else "plain")
    if name == "plain" and os.environ.get("CLINVEC_KERNEL", "").lower() == "numpy":
        name = "float32"
    return name + ("+1thr" if os.environ.get("OPENBLAS_NUM_THREADS") == "1" else "")


# ---------------------------------------------------------------- vectra
def shared_dir() -> Path:
    """``shared/`` lives beside the checkout (``../shared``); CLINVEC_SHARED overrides."""
    return Path(os.environ.get("CLINVEC_SHARED", REPO.parent / "shared")).resolve()


def vectra_dir() -> Path:
    """Where vectra 0.15.0 is installed; installs it with the peer's ``setup.sh`` when missing."""
    target = Path(os.environ.get("VECTRA_DIR", Path.home() / ".cache" / "clinvec-peers" / "vectra"))
    if not (target / "node_modules" / "vectra" / "package.json").is_file():
        setup = shared_dir() / "peers" / "vectra" / "setup.sh"
        subprocess.run(["bash", str(setup), str(target)], check=True, stdout=subprocess.DEVNULL)
    return target


def run_vectra(a: argparse.Namespace, codec: str, timeout: float) -> dict[str, Any]:
    """``node bench.mjs N --codec C`` with the same workload parameters; its one JSON line."""
    bench = shared_dir() / "peers" / "vectra" / "bench.mjs"
    cmd = ["node", str(bench), *_workload_args(a), "--codec", codec]
    env = {**os.environ, "VECTRA_DIR": str(vectra_dir())}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"tool": "vectra", "n": a.n, "codec": codec, "error": f"timed out after {timeout:.0f} s"}
    line = next((s for s in reversed(proc.stdout.splitlines()) if s.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        tail = " | ".join((proc.stderr + proc.stdout).strip().splitlines()[-3:])
        return {"tool": "vectra", "n": a.n, "codec": codec, "error": tail or f"exit {proc.returncode}"}
    return json.loads(line)


# ---------------------------------------------------------------- reporting
def _ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or not theirs:
        return "—"
    return f"{ours / theirs:.3g}"


def _speedup(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or not ours:
        return "—"
    return f"{theirs / ours:.3g}x"


def _fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.3g}{unit}"
    return f"{x}{unit}"


ROWS: list[tuple[str, Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], Any]]] = [
    (
        "insert + durable commit, CPU s",
        lambda c: c.get("insert_cpu_s"),
        lambda v: None if v.get("insert_cpu_s") is None else v["insert_cpu_s"] + (v.get("save_cpu_s") or 0),
    ),
    ("open/load, CPU s", lambda c: c.get("open_cpu_s"), lambda v: v.get("load_cpu_s")),
    ("open/load, wall s", lambda c: c.get("open_s"), lambda v: v.get("load_s")),
    ("query, CPU ms median", lambda c: c.get("query_cpu_ms_median"), lambda v: v.get("query_cpu_ms_median")),
    ("query, wall ms median", lambda c: c.get("query_ms_median"), lambda v: v.get("query_ms_median")),
    ("query, wall ms p95", lambda c: c.get("query_ms_p95"), lambda v: v.get("query_ms_p95")),
    (
        "filtered query, CPU ms median",
        lambda c: c.get("filtered_query_cpu_ms_median"),
        lambda v: v.get("filtered_query_cpu_ms_median"),
    ),
    (
        "filtered query, wall ms median",
        lambda c: c.get("filtered_query_ms_median"),
        lambda v: v.get("filtered_query_ms_median"),
    ),
    ("filtered query, wall ms p95", lambda c: c.get("filtered_query_ms_p95"), lambda v: v.get("filtered_query_ms_p95")),
    ("disk, MB", lambda c: _mb(c.get("disk_bytes")), lambda v: _mb(v.get("disk_bytes"))),
    ("peak RSS of the query process, MB", lambda c: c.get("peak_rss_query_mb"), lambda v: v.get("peak_rss_query_mb")),
]


def _mb(x: Any) -> float | None:
    return None if x is None else round(x / 1e6, 1)


def table(records: list[dict[str, Any]]) -> str:
    """Markdown: one block per N, one column per clinvec variant, vectra, and clinvec(plain)/vectra."""
    out: list[str] = []
    for n in sorted({r["n"] for r in records}):
        at_n = [r for r in records if r["n"] == n]
        ours = [r for r in at_n if r.get("tool") == "clinvec"]
        theirs = next((r for r in at_n if r.get("tool") == "vectra"), None)
        if not ours:
            continue
        ours.sort(key=lambda r: VARIANT_ORDER.get(r.get("variant", ""), 99))
        plain = next((r for r in ours if r.get("variant") == "plain"), ours[0])
        heads = [f"clinvec ({r.get('variant')})" for r in ours]
        vname = f"vectra {theirs.get('codec', '')}" if theirs else "vectra"
        out.append(f"**N = {n:,}**" + (f" (vectra codec: {theirs.get('codec')})" if theirs else " (clinvec only)"))
        out.append("")
        cols = ["metric", *heads] + ([vname, "clinvec/vectra", "vectra/clinvec"] if theirs else [])
        out.append("| " + " | ".join(cols) + " |")
        out.append("|" + "---|" * len(cols))
        for label, get_c, get_v in ROWS:
            cells = [label, *(_fmt(get_c(r)) for r in ours)]
            if theirs:
                if theirs.get("error") or theirs.get("save_error"):
                    cells += ["fails", "—", "—"]
                else:
                    ours_v, theirs_v = get_c(plain), get_v(theirs)
                    cells += [_fmt(theirs_v), _ratio(ours_v, theirs_v), _speedup(ours_v, theirs_v)]
            out.append("| " + " | ".join(cells) + " |")
        extra = [
            (
                "one-upsert durable commit, wall ms median / p95",
                lambda c: f"{_fmt(c.get('upsert_commit_ms_median'))} / {_fmt(c.get('upsert_commit_ms_p95'))}",
            ),
            ("one-upsert commit, CPU ms median", lambda c: _fmt(c.get("upsert_commit_cpu_ms_median"))),
            ("sanity (top-1 = itself; items loaded)", lambda c: f"{c.get('sanity_top1_ok')}; {c.get('items_loaded')}"),
        ]
        for label, get in extra:
            cells = [label, *(get(r) for r in ours)] + (["—", "—", "—"] if theirs else [])
            out.append("| " + " | ".join(cells) + " |")
        loads = [f"{r.get('tool')}: {r.get('host', {}).get('loadavg_1m_at_start')}" for r in at_n]
        out.append("")
        out.append(f"Load average (1 min) at the start of each run: {', '.join(loads)}.")
        out.append("")
    return "\n".join(out)


def load_records(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


# ---------------------------------------------------------------- CLI
def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("n", type=int)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--topk", type=int, default=10)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--upserts", type=int, default=50, help="single-upsert commits to time (0: skip)")
    p.add_argument(
        "--vectors",
        choices=("array", "list"),
        default="array",
        help="pass vectors as float32 numpy rows (an embedder's output) or Python lists (JSON input)",
    )
    p.add_argument("--indexed", action="store_true", help="create the index with indexed=['category']")


def summary(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown: one row per whole-matrix run (1k, 10k, 50k with vectra), the target rows side by side."""
    lines = [
        "| results file | 10k query: clinvec / vectra ms | 10k ratio | 50k query ms | "
        "50k insert: clinvec / vectra s CPU | 50k insert ratio | open 50k CPU / wall s | 1k filtered query ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path, records in runs.items():
        vectra = {r["n"]: r for r in records if r.get("tool") == "vectra"}
        ours = {r["n"]: r for r in records if r.get("tool") == "clinvec" and r.get("variant") == "plain"}
        if not all(n in vectra and n in ours for n in (1_000, 10_000, 50_000)):
            continue
        v10, c10, v50, c50 = vectra[10_000], ours[10_000], vectra[50_000], ours[50_000]
        v_insert = v50["insert_cpu_s"] + v50["save_cpu_s"]
        fq = vectra[1_000]["filtered_query_cpu_ms_median"] / ours[1_000]["filtered_query_cpu_ms_median"]
        lines.append(
            f"| {Path(path).name} | {c10['query_cpu_ms_median']:.2f} / {v10['query_cpu_ms_median']:.1f} "
            f"| **{v10['query_cpu_ms_median'] / c10['query_cpu_ms_median']:.1f}x** | {c50['query_cpu_ms_median']:.2f} "
            f"| {c50['insert_cpu_s']:.3f} / {v_insert:.1f} | **{v_insert / c50['insert_cpu_s']:.0f}x** "
            f"| {c50['open_cpu_s']:.3f} / {c50['open_s']:.3f} | {fq:.1f}x |"
        )
    return "\n".join(lines)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="clinvec only: one JSON line")
    _add_workload_args(run)
    run.add_argument("--dir", help="build the index under this folder instead of a temp folder")
    run.add_argument("--keep", action="store_true", help="keep the index folder")
    cmp_ = sub.add_parser("compare", help="vectra and clinvec on the same N, one run; appends JSON lines")
    _add_workload_args(cmp_)
    cmp_.add_argument(
        "--vectra-codec",
        choices=("json", "protobuf"),
        default=None,
        help="default: json below 50k, protobuf from 50k (vectra's JSON cannot save 50k)",
    )
    cmp_.add_argument("--no-vectra", action="store_true", help="clinvec only (e.g. 200k, which vectra cannot hold)")
    cmp_.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {VARIANTS}")
    cmp_.add_argument("--vectra-timeout", type=float, default=1800)
    cmp_.add_argument("--out", help="append every JSON line to this file")
    tab = sub.add_parser("table", help="Markdown tables from a results file")
    tab.add_argument("results")
    summ = sub.add_parser("summary", help="key ratios of several whole-matrix runs, one row per results file")
    summ.add_argument("results", nargs="+")
    ph = sub.add_parser("phase", help=argparse.SUPPRESS)
    ph.add_argument("phase", choices=("query", "upsert"))
    ph.add_argument("--dir", required=True)
    _add_workload_args(ph)
    a = ap.parse_args(argv)
    if getattr(a, "n", 1) < 1:
        ap.error("N must be positive")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    if a.cmd == "phase":
        fn = query_phase if a.phase == "query" else upsert_phase
        print(json.dumps(asyncio.run(fn(a))), flush=True)
        return 0
    if a.cmd == "run":
        print(json.dumps(run_clinvec(a)), flush=True)
        return 0
    if a.cmd == "table":
        print(table(load_records(a.results)))
        return 0
    if a.cmd == "summary":
        print(summary({path: load_records(path) for path in a.results}))
        return 0
    records: list[dict[str, Any]] = []

    def emit(record: dict[str, Any]) -> None:
        records.append(record)
        line = json.dumps(record)
        print(line, flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")

    if not a.no_vectra:
        codec = a.vectra_codec or ("protobuf" if a.n >= 50_000 else "json")
        emit(run_vectra(a, codec, a.vectra_timeout))
    for variant in [v.strip() for v in a.variants.split(",") if v.strip()]:
        if variant not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; choose from {VARIANTS}")
        va = argparse.Namespace(**vars(a))
        va.indexed, va.dir, va.keep = variant == "indexed", None, False
        va.vectors = "list" if variant == "lists" else "array"
        saved = os.environ.get("CLINVEC_KERNEL")
        if variant == "float32":  # the same run on the float32-only kernel: what the int8 shadow buys
            os.environ["CLINVEC_KERNEL"] = "numpy"
        try:
            emit(run_clinvec(va))
        finally:
            if saved is None:
                os.environ.pop("CLINVEC_KERNEL", None)
            else:
                os.environ["CLINVEC_KERNEL"] = saved
    print(table(records), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
