"""Child process for the IVF crash test: commits clustered rows past the IVF threshold (training, then the
snapshot that saves the partitions), acknowledging each commit, until the parent kills it."""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection

import numpy as np

DIMS = 32
PER_COMMIT = 60
THRESHOLD = 300


def rows(k: int) -> np.ndarray:
    """Commit ``k``'s vectors (deterministic, clustered)."""
    rng = np.random.default_rng(k)
    centres = np.random.default_rng(0).standard_normal((12, DIMS)).astype(np.float32)
    x = centres[rng.integers(0, 12, PER_COMMIT)] + np.float32(0.3) * rng.standard_normal((PER_COMMIT, DIMS))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def writer(folder: str, conn: Connection, commits: int) -> None:
    from pyapp import LocalIndex

    async def main() -> None:
        idx = await LocalIndex.open(folder)
        for k in range(commits):
            x = rows(k)
            await idx.insert_many([{"id": f"c{k}-{j}", "vector": x[j]} for j in range(PER_COMMIT)])
            conn.send_bytes(f"ack {k}".encode())
        await idx.close()
        conn.send_bytes(b"done")

    asyncio.run(main())
