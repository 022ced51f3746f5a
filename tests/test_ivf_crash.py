"""Kill -9 a process while it commits past the IVF threshold (training and the snapshot that saves the
partitions): the index reopens with whole commits only, and partitions, when saved, fit its rows exactly."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import crash_child as cc
import ivf_crash_child as child

from pyapp import LocalIndex


async def _create(folder: str) -> None:
    idx = await LocalIndex.create(folder, dims=child.DIMS, ivf_threshold=child.THRESHOLD)
    await idx.close()


def test_killed_while_partitioning_reopens_consistent(tmp_path: Path) -> None:
    rnd = random.Random(12)
    partitioned = 0
    for attempt in range(4):
        folder = str(tmp_path / f"idx{attempt}")

        asyncio.run(_create(folder))
        proc, conn = cc.start(child.writer, folder, 12)
        # wait for a commit around the threshold (commit 5 crosses 300 rows), then kill at a random moment
        cc.messages(conn, until=f"ack {rnd.randint(3, 6)}")
        time.sleep(rnd.uniform(0, 0.3))
        proc.kill()
        proc.join()
        acked = cc.acks(cc.messages(conn, timeout=5))

        async def check(folder: str = folder, acked: list[int] = acked) -> int:
            idx = await LocalIndex.open(folder)
            count = await idx.count()
            assert count % child.PER_COMMIT == 0, "a commit is there in part"
            done = count // child.PER_COMMIT
            assert done >= (max(acked) + 1 if acked else 0), "an acknowledged commit is lost"
            parts = idx._state.ivf
            if parts is not None:
                parts.verify(idx._state.kernel)
            elif count >= child.THRESHOLD:  # killed before its partitions were saved: the next commit makes them
                await idx.insert(child.rows(99)[0], id="after")
                idx._state.ivf.verify(idx._state.kernel)  # type: ignore[union-attr]
            await idx.close()
            return parts is not None

        partitioned += asyncio.run(check())
    assert partitioned, "no kill left saved partitions to check"
