"""What a probed IVF query pays per row, and what calibration asks for on data without clusters.

Why: two rules of ``pyapp/kernels/ivf.py`` and ``int8_kernel.py`` rest on these figures. ``GATHER_COST`` (the
automatic probe gives way to the exact scan from a third of the rows on) rests on the cost of scanning probed rows
gathered from scattered places against the contiguous full scan; ``Int8Kernel`` keeping each probed list's codes
contiguous rests on the gather dominating a probed query. And uniform vectors (no cluster structure) are where
calibration asks for most of the rows.

    python bench/ivf_probe_costs.py [--rows 1000000] [--dims 384] [--lists 433] [--probe 21]

Prints one JSON object (load average included): top-k over the probed rows passed as a plain index (gathered per
query), as ``ProbedRows`` (kept per-list blocks, after one warm-up pass), and over every row; then the calibrated
probe share and ``auto_scan`` of a 100k x 384 uniform ``LocalIndex`` (memory store) and its recall against exact.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pyapp import LocalIndex
from pyapp.kernels.int8_kernel import Int8Kernel
from pyapp.kernels.ivf_numpy import NumpyListCopies


def _median_ms(run: Callable[[int], Any], count: int) -> float:
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 3)


def probe_costs(rows: int, dims: int, lists: int, probe: int, queries: int = 40) -> dict[str, Any]:
    """Random unit rows spread over ``lists`` lists; each query probes ``probe`` random lists."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, dims)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    kernel = Int8Kernel(dims)
    kernel.load(x.tobytes(), rows)
    assign = rng.integers(0, lists, rows)
    copies = NumpyListCopies()
    for lst in range(lists):
        copies.put(lst, np.flatnonzero(assign == lst).tolist())
    qs = [kernel.prepare(x[i].tobytes(), 1) for i in range(queries)]
    chosen = [rng.choice(lists, probe, replace=False).tolist() for _ in range(queries)]

    def gathered(i: int) -> Any:  # a plain index: the codes are gathered on every query
        return kernel.topk(qs[i], 10, np.asarray(copies.gather(chosen[i])))

    def blocks(i: int) -> Any:  # ProbedRows: each list's codes kept contiguous after its first probe
        return kernel.topk(qs[i], 10, copies.gather(chosen[i]))

    for i in range(queries):
        assert blocks(i) == gathered(i)  # warms the blocks; the answers are the same
    return {
        "rows": rows,
        "dims": dims,
        "probed_rows_per_query": int(np.mean([len(copies.gather(c)) for c in chosen])),
        "probe_gathered_ms": _median_ms(gathered, queries),
        "probe_kept_blocks_ms": _median_ms(blocks, queries),
        "full_scan_ms": _median_ms(lambda i: kernel.topk(qs[i], 10), 10),
    }


async def uniform_calibration(rows: int = 100_000, dims: int = 384, queries: int = 50) -> dict[str, Any]:
    """Calibration on uniform vectors: the share it asks for, whether the automatic probe scans exactly."""
    rng = np.random.default_rng(42)
    x = rng.uniform(-1, 1, (rows, dims)).astype(np.float32)
    idx = await LocalIndex.create("memory://uniform", dims=dims)
    for start in range(0, rows, 10_000):
        await idx.insert_many([{"id": f"r{i}", "vector": x[i]} for i in range(start, min(rows, start + 10_000))])
    ivf = (await idx.stats())["ivf"]
    overlap = 0
    for q in rng.uniform(-1, 1, (queries, dims)).astype(np.float32):
        auto = await idx.query(q, top_k=10, mode="vector")
        exact = await idx.query(q, top_k=10, mode="vector", exact=True)
        overlap += len({r.id for r in auto} & {r.id for r in exact})
    await idx.close()
    return {
        "rows": rows,
        "dims": dims,
        "probe_share": ivf["probe_share"],
        "auto_scan": ivf["auto_scan"],
        "recall_at_10": overlap / (10 * queries),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--lists", type=int, default=433)
    ap.add_argument("--probe", type=int, default=21, help="lists per query (21 of 433 ~ 4.8 %% of the rows)")
    args = ap.parse_args()
    out: dict[str, Any] = {"loadavg_start": os.getloadavg()}
    out["probe"] = probe_costs(args.rows, args.dims, args.lists, args.probe)
    out["uniform"] = asyncio.run(uniform_calibration())
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
