"""The per-index automatic probe depth (``Partitions.calibrate``): chosen from the index's own rows when the
partitions are (re)trained, saved with them, shallower than the old global rule on clustered data while fresh
queries keep recall@10 >= 0.95 against ``exact=True``; version-1 partition state still opens (old rule); a store
failing during a retrain leaves the saved index as it was.

Real numpy k-means, real memory and file stores, ``FaultyStore`` for the faults.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyapp import CorruptIndex, LocalIndex
from pyapp.kernels import default_kernel, ivf
from pyapp.kernels.ivf_numpy import NumpyIvfMath
from pyapp.rows import IndexRows
from pyapp.stores import FaultyStore, MemoryStore

DIMS = 32


def mixture(n: int, seed: int, centres: int = 150, noise: float = 0.5) -> np.ndarray:
    """Gaussian mixture, unit rows; the centres are fixed (seed 0), ``seed`` draws the points."""
    c = np.random.default_rng(0).standard_normal((centres, DIMS)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, centres, n)] + np.float32(noise) * rng.standard_normal((n, DIMS)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def items(x: np.ndarray, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"r{start + i}", "vector": v} for i, v in enumerate(x)]


def old_rule(parts: ivf.Partitions, k: int) -> int:
    return max(ivf.MIN_CANDIDATES, ivf.PER_K * k, math.ceil(len(parts) * ivf.PROBE_SCALE / math.sqrt(parts.nlist)))


def test_probe_budget_is_the_smallest_that_reaches_the_target() -> None:
    costs = [[0, 0, 0, 5], [10, 40, 40, 90], [0, 5, 5, 5], [0, 0, 0, 0]]

    def recall(budget: int) -> float:
        return sum(c < budget for q in costs for c in q) / 16

    for target in (0.5, 0.7, 0.75, 0.9, 1.0):
        budget = ivf.probe_budget(costs, target, 0.0)
        assert recall(budget) >= target > recall(budget - 1)  # reaches it, and one row less would not
    # the lower confidence bound (mean - 2 standard errors over queries) can ask for more than the mean does
    assert ivf.probe_budget(costs, 0.7, 0.6) > ivf.probe_budget(costs, 0.7, 0.0)
    assert ivf.probe_budget([], 0.97, 0.95) == 1 and ivf.probe_budget([[0, 0]], 0.97, 0.95) == 1


def test_calibrated_depth_is_shallower_than_the_old_rule_and_fresh_queries_keep_recall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ivf, "MIN_CANDIDATES", 1)  # no floors: the calibrated depth alone decides what is probed
    monkeypatch.setattr(ivf, "PER_K", 1)

    async def go() -> None:
        x = mixture(30_000, seed=1, noise=0.7)  # overlapping clusters: neighbours spill into other lists
        idx = await LocalIndex.create("memory://ivf-cal", dims=DIMS, ivf_threshold=10_000)
        await idx.insert_many(items(x))
        parts = idx._state.ivf
        assert parts is not None and parts.probe is not None
        stats = (await idx.stats())["ivf"]
        assert stats["probe"] == "calibrated" and stats["probe_rows_top10"] == parts.target(10)
        assert stats["calibration_recall"] >= ivf.CALIBRATION_RECALL
        depth = parts.target(10)
        assert depth == math.ceil(parts.probe.share * len(parts)) < 0.5 * old_rule(parts, 10)
        found = 0
        queries = mixture(200, seed=99, noise=0.75)  # fresh draws, not rows of the index
        for q in queries:
            exact = {r.id for r in await idx.query(q, top_k=10, mode="vector", exact=True)}
            auto = {r.id for r in await idx.query(q, top_k=10, mode="vector")}
            found += len(exact & auto)
        assert found / (10 * len(queries)) >= 0.95
        # deterministic for a seed: the same rows calibrate to the same depth, another seed samples other rows
        first = parts.probe
        assert parts.calibrate(idx._state.kernel, NumpyIvfMath(), 0) == first
        assert parts.calibrate(idx._state.kernel, NumpyIvfMath(), 1) != first
        await idx.close()

    asyncio.run(go())


def test_calibration_follows_harder_data_deeper() -> None:
    """Overlapping clusters (more noise) put neighbours in other lists: the calibrated depth grows with them, and
    so does the sample (another round while the recall estimate is not precise enough)."""

    async def probe(noise: float) -> ivf.Probe:
        idx = await LocalIndex.create(f"memory://ivf-noise-{noise}", dims=DIMS, ivf_threshold=5_000)
        await idx.insert_many(items(mixture(12_000, seed=2, noise=noise)))
        assert idx._state.ivf is not None and idx._state.ivf.probe is not None
        out = idx._state.ivf.probe
        await idx.close()
        return out

    async def go() -> None:
        easy, hard = await probe(0.3), await probe(1.2)
        assert hard.share > 3 * easy.share
        assert easy.sample == ivf.CALIBRATION_QUERIES < hard.sample <= ivf.CALIBRATION_QUERIES * ivf.CALIBRATION_ROUNDS

    asyncio.run(go())


def test_data_without_clusters_is_scanned_exactly_instead_of_probed() -> None:
    """Uniform noise has no cluster structure: calibration asks for most of the rows, and gathering that many
    scattered rows costs more than the contiguous full scan, so the automatic probe gives way to the exact scan
    (answers equal ``exact=True``'s); an explicit ``nprobe`` still probes."""

    async def go() -> None:
        idx = await LocalIndex.create("memory://ivf-uniform", dims=DIMS, ivf_threshold=5_000)
        rng = np.random.default_rng(5)
        await idx.insert_many(items(rng.uniform(-1, 1, (12_000, DIMS)).astype(np.float32)))
        stats = (await idx.stats())["ivf"]
        assert stats["active"] and stats["probe"] == "calibrated"
        assert stats["probe_share"] * ivf.GATHER_COST >= 1 and stats["auto_scan"] == "exact"
        for q in rng.uniform(-1, 1, (20, DIMS)).astype(np.float32):
            auto = await idx.query(q, top_k=10, mode="vector")
            exact = await idx.query(q, top_k=10, mode="vector", exact=True)
            assert [(r.id, r.score) for r in auto] == [(r.id, r.score) for r in exact]
        overlap = 0
        for q in rng.uniform(-1, 1, (20, DIMS)).astype(np.float32):
            one = await idx.query(q, top_k=10, mode="vector", nprobe=1)
            exact = await idx.query(q, top_k=10, mode="vector", exact=True)
            overlap += len({r.id for r in one} & {r.id for r in exact})
        assert overlap < 0.9 * 200  # one list of ~55 holds few of a uniform query's neighbours: it did probe
        await idx.close()

    asyncio.run(go())


def test_version_1_partition_state_opens_with_the_old_rule(tmp_path: Path) -> None:
    async def go() -> None:
        idx = await LocalIndex.create(str(tmp_path / "v"), dims=DIMS, ivf_threshold=2_000)
        await idx.insert_many(items(mixture(4_000, seed=3)))
        rows, vectors, state = idx._state.snapshot_parts()
        vectors = bytes(vectors)
        await idx.close()
        assert state is not None and state["version"] == ivf.STATE_VERSION == 2 and state["probe"] is not None

        def load(s: dict[str, Any]) -> IndexRows:
            out = IndexRows(default_kernel(DIMS), [], (0.9, 0.4))
            out.load(rows, vectors, ivf=s)
            return out

        old = {key: value for key, value in state.items() if key != "probe"} | {"version": 1}
        parts = load(old).ivf
        assert parts is not None and parts.probe is None and parts.target(10) == old_rule(parts, 10)
        assert parts.stats()["probe"] == "default rule"
        new = load(state).ivf
        assert new is not None and new.probe == ivf.Probe(*state["probe"])
        for damage in ([0.0, 1.0, 10], [1.5, 1.0, 10], ["x", 1.0, 10], [0.1], {"share": 0.1}):
            with pytest.raises(CorruptIndex):
                load(dict(state, probe=damage))

    asyncio.run(go())


def test_a_store_failing_during_a_retrain_leaves_the_saved_index_as_it_was() -> None:
    async def go() -> None:
        store = FaultyStore(MemoryStore("ivf-cal-fault"))
        idx = await LocalIndex.create(store, dims=DIMS, ivf_threshold=2_000)
        await idx.insert_many(items(mixture(3_000, seed=4)))
        parts = idx._state.ivf
        assert parts is not None and parts.probe is not None
        saved = (parts.centroids.to_bytes(), parts.probe)

        # 1. the commit itself fails: nothing changes, in memory or in the store
        store.fail = {"commit": store.calls["commit"] + 1}
        with pytest.raises(Exception, match="injected"):
            await idx.insert_many(items(mixture(4_000, seed=5), start=3_000))  # would double the rows: retrain
        assert await idx.count() == 3_000 and idx._state.ivf is parts
        assert (parts.centroids.to_bytes(), parts.probe) == saved

        # 2. the commit is durable, the retrain runs, the snapshot after it fails: the writer is not told, the
        # saved partitions stay the old ones (reopened: old centroids and depth, the new rows from the log)
        store.fail = {"write_snapshot": store.calls["write_snapshot"] + 1}
        await idx.insert_many(items(mixture(4_000, seed=5), start=3_000))
        retrained = idx._state.ivf
        assert retrained is not parts and retrained is not None and retrained.trained is not None
        assert retrained.trained.rows == 7_000 and "injected" in (await idx.stats())["compaction_error"]
        retrained.verify(idx._state.kernel)
        await idx.close()
        idx = await LocalIndex.open(MemoryStore("ivf-cal-fault"))
        reopened = idx._state.ivf
        assert reopened is not None and await idx.count() == 7_000
        assert (reopened.centroids.to_bytes(), reopened.probe) == saved
        reopened.verify(idx._state.kernel)
        await idx.close()
        await LocalIndex.drop(MemoryStore("ivf-cal-fault"))

    asyncio.run(go())
