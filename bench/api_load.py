"""Loopback load test of the HTTP API (issue 11): vector queries at 10k x 768 with 8 concurrent clients, then a
mixed 90/10 query/insert run whose inserts are all checked afterwards (no lost insert).

    python bench/api_load.py [--n 10000] [--dims 768] [--clients 8] [--seconds 20] [--out FILE]

It builds the index with ``LocalIndex`` in a temporary folder, starts ``python -m pyapp serve-api`` on
127.0.0.1 (a free port; nothing else is contacted), drives it with asyncio + httpx (one keep-alive connection
per client, request bodies encoded before timing), stops the server and prints one JSON object: throughput,
latency percentiles, errors, the count check, the server's CPU time and the 1-minute load average before and
after. Run it WITHOUT ``nice``: server and clients share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from api_server import free_port, wait_until_up  # noqa: E402

from pyapp import LocalIndex  # noqa: E402
from pyapp.remote import wire  # noqa: E402


async def build(folder: str, n: int, dims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dims), dtype=np.float32)
    idx = await LocalIndex.create(folder, dims=dims, indexed=["ward"])
    wards = ["ICU", "ED", "ward-3", "oncology"]
    await idx.insert_many(
        {"id": f"n{i}", "vector": vectors[i], "metadata": {"ward": wards[i % 4]}, "text": None} for i in range(n)
    )
    await idx.close()
    return vectors


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (``--client raw``): it writes prebuilt requests and
    reads status, Content-Length and body, so that on a 2-core machine the load generator does not take most of
    the CPU the server needs (httpx spends more CPU per request than the server does)."""

    def __init__(self, url: str) -> None:
        host_port = url.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(v) for k, _, v in (x.partition(b":") for x in lines[1:]) if k.lower() == b"content-length")
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def drive(
    url: str,
    bodies: list[bytes],
    clients: int,
    seconds: float,
    insert_share: float,
    dims: int,
    client_kind: str = "httpx",
) -> dict[str, Any]:
    """``clients`` loops for ``seconds``; each request a query (or, with ``insert_share``, an insert)."""
    latencies: list[float] = []
    errors: list[str] = []
    inserted: list[str] = []
    counts = {"query": 0, "insert": 0}
    headers = {"Content-Type": "application/json"}
    stop = time.perf_counter() + seconds

    def next_request(rng: random.Random, number: int, k: int) -> tuple[str, str, bytes, str | None]:
        """Client ``number``'s request ``k``: an insert (a share ``insert_share``) or one of the queries;
        ``(kind, path, body, new id)``. Both client kinds draw their requests here, so they send the same load."""
        if insert_share and rng.random() < insert_share:
            new_id = f"load-{number}-{k}"
            vector = [rng.uniform(-1, 1) for _ in range(dims)]
            body = json.dumps({"vector": vector, "id": new_id, "metadata": {"ward": "ED"}}).encode()
            return "insert", "/indexes/load/items", body, new_id
        return "query", "/indexes/load/query", bodies[k % len(bodies)], None

    def record(kind: str, seconds: float, new_id: str | None, ok: bool, failure: str | None) -> None:
        """One answered (or failed) request: its latency, its kind, the id it inserted or why it failed."""
        latencies.append(seconds)
        counts[kind] += 1
        if ok and kind == "insert":
            inserted.append(str(new_id))
        elif not ok and failure is not None:
            errors.append(failure)

    async def raw_client(number: int) -> None:
        rng = random.Random(number)
        conn = RawConnection(url)
        k = number
        try:
            while time.perf_counter() < stop:
                k += clients
                kind, path, body, new_id = next_request(rng, number, k)
                start = time.perf_counter()
                try:
                    status, data = await conn.post(path, body)
                    ok = status in (200, 201) and (kind != "query" or data.count(b'"score"') == 10)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, data, ok = 0, b"", False
                    errors.append(f"{type(exc).__name__}: {exc}")
                    conn = RawConnection(url)
                seconds = time.perf_counter() - start
                record(kind, seconds, new_id, ok, f"{status}: {data[:200]!r}" if status else None)
        finally:
            await conn.close()

    async def client(number: int) -> None:
        if client_kind == "raw":
            await raw_client(number)
            return
        rng = random.Random(number)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1)) as http:
            k = number
            while time.perf_counter() < stop:
                k += clients
                kind, path, body, new_id = next_request(rng, number, k)
                start = time.perf_counter()
                try:
                    answer = await http.post(path, content=body, headers=headers)
                    ok = answer.status_code in (200, 201)
                    if ok and kind == "query":
                        ok = len(answer.json()["results"]) == 10
                except httpx.HTTPError as exc:
                    ok, answer = False, None
                    errors.append(f"{type(exc).__name__}: {exc}")
                seconds = time.perf_counter() - start
                failure = f"{answer.status_code}: {answer.text[:200]}" if answer is not None else None
                record(kind, seconds, new_id, ok, failure)

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(latencies),
        **counts,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "queries_per_s": round(counts["query"] / elapsed, 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
        "errors": len(errors),
        "first_errors": errors[:3],
        "inserted_ids": inserted,
    }


def server_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def direct_cpu_ms(location: str, queries: list[np.ndarray], top_k: int) -> float:
    """CPU ms per query of ``LocalIndex.query`` itself in this process: the search, without HTTP or JSON."""
    idx = await LocalIndex.open(location, read_only=True)
    await idx.query(queries[0], top_k=top_k)
    start = time.process_time()
    for q in queries:
        await idx.query(q, top_k=top_k)
    spent = time.process_time() - start
    await idx.close()
    return round(spent * 1000 / len(queries), 3)


async def check_inserts(url: str, n: int, inserted: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        count = (await http.post("/indexes/load/count", json={})).json()["count"]
        ids = set((await http.get("/indexes/load/ids")).json()["ids"])
    missing = [i for i in inserted if i not in ids]
    return {
        "count": count,
        "expected": n + len(inserted),
        "lost_inserts": len(missing),
        "count_ok": count == n + len(inserted),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--encoding", choices=["f32", "json"], default="f32", help="query vector encoding")
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx", help="load generator (RawConnection)")
    parser.add_argument("--out", help="append the JSON line to this file")
    args = parser.parse_args(argv)

    folder = tempfile.mkdtemp(prefix="clinvec-api-load-")
    try:
        vectors = asyncio.run(build(os.path.join(folder, "load"), args.n, args.dims, seed=7))
        rng = np.random.default_rng(11)
        picks = rng.integers(0, args.n, 200)
        noise = rng.standard_normal((200, args.dims), dtype=np.float32) * 0.1
        queries = [vectors[p] + noise[i] for i, p in enumerate(picks)]
        if args.encoding == "f32":  # what RemoteIndex sends for float32 arrays: exact, no float parsing
            bodies = [json.dumps({"vector_f32": wire.f32_field(q), "top_k": args.top_k}).encode() for q in queries]
        else:
            bodies = [json.dumps({"vector": q.tolist(), "top_k": args.top_k}).encode() for q in queries]
        direct = asyncio.run(direct_cpu_ms(os.path.join(folder, "load"), queries[:100], args.top_k))
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pyapp", "serve-api", folder, "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, proc)
            load_before = os.getloadavg()[0]
            asyncio.run(drive(url, bodies[:20], 2, 2.0, 0.0, args.dims))  # warm-up: open the index, first pages
            cpu0, mine0 = server_cpu_s(proc.pid), time.process_time()
            queries = asyncio.run(drive(url, bodies, args.clients, args.seconds, 0.0, args.dims, args.client))
            cpu1, mine1 = server_cpu_s(proc.pid), time.process_time()
            mixed = asyncio.run(drive(url, bodies, args.clients, args.seconds, 0.1, args.dims, args.client))
            check = asyncio.run(check_inserts(url, args.n, mixed.pop("inserted_ids")))
            queries.pop("inserted_ids")
            load_after = os.getloadavg()[0]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {
        "bench": "api_load",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n": args.n,
        "dims": args.dims,
        "clients": args.clients,
        "top_k": args.top_k,
        "encoding": args.encoding,
        "client": args.client,
        "queries": {
            **queries,
            "server_cpu_ms_per_query": round((cpu1 - cpu0) * 1000 / max(1, queries["query"]), 3),
            "client_cpu_ms_per_query": round((mine1 - mine0) * 1000 / max(1, queries["query"]), 3),
            "search_only_cpu_ms_per_query": direct,
        },
        "mixed_90_10": {**mixed, **check},
        "loadavg_1m_before": round(load_before, 2),
        "loadavg_1m_after": round(load_after, 2),
        "cpus": os.cpu_count(),
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "a") as handle:
            handle.write(line + "\n")
    return 0 if queries["errors"] == 0 and mixed["errors"] == 0 and check["count_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
