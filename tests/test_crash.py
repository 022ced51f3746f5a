"""Kill -9 a committing process at random moments (also mid-compaction) and check nothing acknowledged is lost.

After every kill the index must open and hold exactly the state after commits 1..K, where K is the
last acknowledged commit or the one after it (durable but killed before its ack was sent): every
acknowledged commit is there, and no commit is there in part.
"""

from __future__ import annotations

import asyncio
import math
import random
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import crash_child as cc
import pytest

from pyapp.stores.base import Put, Row
from pyapp.stores.file import FileStore

DIMS = 256
BALLAST = 3000  # ~3 MB of vectors: makes a compaction long enough to be killed in the middle
COMPACT_EVERY = 6  # commits between compactions in the children


def _ballast_vector(i: int) -> list[float]:
    return [float((i * 17 + d) % 89 + 1) for d in range(DIMS)]


# ----- building the starting index and reading the state back


def _create_store_index(folder: str) -> None:
    store = FileStore(folder)
    asyncio.run(store.create({"dims": DIMS}))
    store.open_sync()
    ops = [
        Put(Row(f"{cc.BALLAST}{i}", {"ballast": i}, None, i), struct.pack(f"<{DIMS}f", *_ballast_vector(i)))
        for i in range(BALLAST)
    ]
    store.commit_sync(ops)
    store.close_sync()


def _read_store_state(folder: str, writer: bool) -> dict[str, tuple[dict[str, Any], str | None, Any]]:
    store = FileStore(folder)
    snap = store.open_sync(read_only=not writer)
    store.close_sync()
    width = DIMS * 4
    state: dict[str, tuple[dict[str, Any], str | None, Any]] = {}
    for i, row in enumerate(snap.rows):
        state[row.id] = (row.metadata, row.text, bytes(snap.vectors[i * width : (i + 1) * width]))
    for ops in snap.log:
        for op in ops:
            if isinstance(op, Put):
                state[op.row.id] = (op.row.metadata, op.row.text, op.vector)
            else:
                state.pop(op.id, None)
    return state


def _create_local_index(folder: str) -> None:
    from pyapp import LocalIndex

    async def main() -> None:
        idx = await LocalIndex.create(folder, dims=DIMS)
        await idx.insert_many(
            [
                {"id": f"{cc.BALLAST}{i}", "vector": _ballast_vector(i), "metadata": {"ballast": i}}
                for i in range(BALLAST)
            ]
        )
        await idx.close()

    asyncio.run(main())


def _read_index_state(folder: str, writer: bool) -> dict[str, tuple[dict[str, Any], str | None, Any]]:
    from pyapp import LocalIndex

    async def main() -> dict[str, tuple[dict[str, Any], str | None, Any]]:
        idx = await LocalIndex.open(folder, read_only=not writer)
        try:
            ids = await idx.ids()
            assert len(ids) == len(set(ids)) == await idx.count()
            state: dict[str, tuple[dict[str, Any], str | None, Any]] = {i: ({}, None, None) for i in ids}
            for item_id in ids:
                if not item_id.startswith(cc.BALLAST):
                    item = await idx.get(item_id)
                    assert item is not None
                    state[item_id] = (item.metadata, item.text, item.vector)
            return state
        finally:
            await idx.close()

    return asyncio.run(main())


def _same_vector(got: Any, k: int, j: int) -> bool:
    if isinstance(got, bytes):
        return got == cc.vector_bytes(k, j, DIMS)
    want = cc.vector_for(k, j, DIMS)
    norm = math.sqrt(sum(x * x for x in want))
    return all(abs(g - w / norm) < 1e-6 for g, w in zip(got, want, strict=True))


def _check(state: dict[str, tuple[dict[str, Any], str | None, Any]], acked: int, floor: int) -> int:
    """The state must be exactly commits 1..K for K = acked or acked + 1 (never below ``floor``)."""
    ids = set(state)
    for k in (acked, acked + 1):
        if k >= floor and ids == cc.expected_ids(k, BALLAST):
            break
    else:
        present = sorted({int(i[1:].split("-")[0]) for i in ids if not i.startswith(cc.BALLAST)})
        counts = {k: sum(1 for i in ids if i.startswith(f"c{k}-")) for k in present}
        raise AssertionError(f"not a commit prefix: last ack {acked}, floor {floor}, items per commit {counts}")
    for item_id, (metadata, text, vector) in state.items():
        if item_id.startswith(cc.BALLAST):
            continue
        kk, jj = (int(x) for x in item_id[1:].split("-"))
        assert metadata == cc.metadata_for(kk, jj), item_id
        assert text == cc.text_for(kk, jj), item_id
        assert _same_vector(vector, kk, jj), item_id
    return k


def _kill_rounds(
    folder: str,
    worker: Callable[..., None],
    read_state: Callable[[str, bool], dict[str, tuple[dict[str, Any], str | None, Any]]],
    plan: list[str],
    seed: int,
) -> dict[str, int]:
    """Run one child per entry of ``plan`` ("early", "random" or "compact"), kill it, check the index."""
    rng = random.Random(seed)
    floor = 0  # the highest commit seen stored so far: it must never disappear
    seen = {"kills": 0, "mid_compaction": 0, "commits": 0}
    for n, kind in enumerate(plan):
        proc, conn = cc.start(worker, folder, DIMS, COMPACT_EVERY)
        msgs: list[str] = []
        if kind == "early":  # may land while the child opens (truncating a torn tail, removing stale files)
            time.sleep(rng.uniform(0.0, 0.05))
        elif kind == "random":
            msgs += cc.messages(conn, "ready")
            time.sleep(rng.uniform(0.0, 0.15))
        else:
            msgs += cc.messages(conn, "compact-begin")
            time.sleep(rng.uniform(0.0, 0.02))
        assert proc.pid is not None
        proc.kill()
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL, f"round {n}: child ended by itself ({proc.exitcode}): {msgs[-3:]}"
        msgs += cc.messages(conn)
        conn.close()
        seen["kills"] += 1
        tail = [m for m in msgs if m.startswith("compact")]
        if tail and tail[-1].startswith("compact-begin"):
            seen["mid_compaction"] += 1
        acked = max(cc.acks(msgs), default=floor)
        seen["commits"] += len(cc.acks(msgs))
        floor = _check(read_state(folder, n % 2 == 1), max(acked, floor), floor)
    print(f"\n{worker.__name__}: {seen}")
    return seen


def _plan(random_kills: int, compaction_kills: int, early_kills: int, seed: int) -> list[str]:
    plan = ["random"] * random_kills + ["compact"] * compaction_kills + ["early"] * early_kills
    random.Random(seed).shuffle(plan)
    return plan


def test_store_survives_sigkill(tmp_path: Path) -> None:
    """FileStore alone: 20 kills, 8 of them aimed at compactions."""
    folder = str(tmp_path / "idx")
    _create_store_index(folder)
    seen = _kill_rounds(folder, cc.store_worker, _read_store_state, _plan(8, 8, 4, seed=1), seed=1)
    assert seen["kills"] == 20
    assert seen["commits"] >= 10
    assert seen["mid_compaction"] >= 2


def test_local_index_survives_sigkill(tmp_path: Path) -> None:
    """The whole stack, LocalIndex batches over FileStore: 35 kills (12 aimed at compactions)."""
    folder = str(tmp_path / "idx")
    _create_local_index(folder)
    seen = _kill_rounds(folder, cc.index_worker, _read_index_state, _plan(18, 12, 5, seed=2), seed=2)
    assert seen["kills"] == 35
    assert seen["commits"] >= 20
    assert seen["mid_compaction"] >= 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_local_index_survives_many_sigkills(tmp_path: Path, seed: int) -> None:
    """Soak: 100 more kills per seed through the whole stack."""
    folder = str(tmp_path / "idx")
    _create_local_index(folder)
    seen = _kill_rounds(folder, cc.index_worker, _read_index_state, _plan(55, 35, 10, seed=seed), seed=seed)
    assert seen["kills"] == 100
    assert seen["mid_compaction"] >= 10
