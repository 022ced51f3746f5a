"""Sync costs on CPython over a real ``serve-api`` (loopback): a fresh device's full pull of N x DIMS, and a
delta of 10 server commits (figures in docs/BENCHMARKS.md; the page's figures come from
tests/browser/test_sync_page.py, which prints them).

    python bench/sync_bench.py 10000 384

Wall time per step (the server builds the bundle, the device reads, checks and merges it into an empty
memory index), median of ``--repeat`` runs, with the 1-minute load average at the start of each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from api_server import api_server  # noqa: E402
from bundle_bench import notes  # noqa: E402 - the same items as the bundle bench

from pyapp import LocalIndex, RemoteIndex  # noqa: E402
from pyapp.sync import sync  # noqa: E402
from pyapp.sync.http import HttpPeer  # noqa: E402


async def fill(root: Path, n: int, dims: int) -> None:
    index = await LocalIndex.create(str(root / "bench"), dims=dims, indexed=["ward"])
    await index.insert_many(notes(n, dims))
    await index.close()


async def one_run(url: str, dims: int) -> dict[str, float]:
    rnd = random.Random()
    peer = HttpPeer(url, "bench")
    device = await LocalIndex.create(f"memory://device-{uuid.uuid4().hex}", dims=dims)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    report = await sync(device, peer)
    full = time.perf_counter() - started
    remote = await RemoteIndex.open(url, "bench")
    for i in range(10):  # ten commits on the server
        await remote.upsert(f"n{i}", [rnd.gauss(0, 1) for _ in range(dims)], {"ward": "ED"}, f"edited {i}")
    await remote.close()
    started = time.perf_counter()
    delta = await sync(device, peer, report.state)
    delta_s = time.perf_counter() - started
    assert delta.pulled.updated == 10, delta.as_dict()
    await peer.aclose()
    await device.close()
    return {"full_pull_s": full, "full_bytes": report.timings["pull_bytes"], "delta10_s": delta_s, "load": load}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("dims", type=int)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(fill(Path(tmp), args.n, args.dims))
        with api_server(Path(tmp)) as url:
            runs = [asyncio.run(one_run(url, args.dims)) for _ in range(args.repeat)]
    print(json.dumps({"n": args.n, "dims": args.dims, "runs": runs}))
    print(
        f"{args.n} x {args.dims}: full pull median {statistics.median(r['full_pull_s'] for r in runs):.2f} s "
        f"({runs[0]['full_bytes'] / 1e6:.1f} MB), delta of 10 commits median "
        f"{statistics.median(r['delta10_s'] for r in runs):.3f} s; load {[round(r['load'], 1) for r in runs]}"
    )


if __name__ == "__main__":
    main()
