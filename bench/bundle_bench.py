"""Bundle costs on CPython: write, verify and restore a full index of N x DIMS (figures in docs/BUNDLE.md).

    python bench/bundle_bench.py 10000 384

Random Gaussian vectors (they compress like real embeddings: barely) and short clinical-style texts.
"""

from __future__ import annotations

import asyncio
import io
import random
import sys
import time
from typing import Any

from pyapp import LocalIndex, bundle


def notes(n: int, dims: int) -> list[dict[str, Any]]:
    """``n`` short notes with Gaussian vectors (seed 1): the items this bench and ``sync_bench.py`` move."""
    rnd = random.Random(1)
    return [
        {
            "id": f"n{i}",
            "vector": [rnd.gauss(0, 1) for _ in range(dims)],
            "metadata": {"ward": "ICU", "year": 2020 + i % 5},
            "text": f"Patient {i}: dyspnoea on exertion, no chest pain, SpO2 94% on air, plan CT angiogram.",
        }
        for i in range(n)
    ]


async def main(n: int, dims: int) -> None:
    index = await LocalIndex.create("memory://bench", dims=dims, indexed=["ward"])
    await index.insert_many(notes(n, dims))
    buf = io.BytesIO()
    started = time.perf_counter()
    await bundle.write(index, buf)
    written = time.perf_counter() - started
    data = buf.getvalue()
    started = time.perf_counter()
    bundle.verify(io.BytesIO(data))
    verified = time.perf_counter() - started
    target = await LocalIndex.create("memory://bench-copy", dims=dims)
    started = time.perf_counter()
    await bundle.restore(target, io.BytesIO(data))
    restored = time.perf_counter() - started
    print(
        f"{n} x {dims}: bundle {len(data) / 1e6:.1f} MB (float32 alone {n * dims * 4 / 1e6:.1f} MB); "
        f"write {written:.2f} s, verify {verified:.2f} s, restore {restored:.2f} s"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 384))
