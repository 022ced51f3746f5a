"""IVF partitions (pyapp.kernels.ivf) in LocalIndex: upkeep on every write, persistence, drift, probing, faults.

Real stores (file with fsync, memory), real numpy k-means; every partitioned index is checked against its rows
with ``Partitions.verify`` (each row in its nearest centroid's list). Recall is measured against ``exact=True``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pyapp import CorruptIndex, InvalidInput, LocalIndex
from pyapp.kernels import default_kernel, ivf
from pyapp.rows import IndexRows
from pyapp.stores import FaultyStore, MemoryStore
from pyapp.stores.base import Row
from pyapp.stores.codec import decode_rows, decode_snapshot_rows, encode_rows

DIMS = 32


def clustered(n: int, seed: int = 3, centres: int = 24, offset: float = 0.0) -> np.ndarray:
    """A Gaussian mixture: ``centres`` random centres, noise 0.35 (unit rows)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIMS)).astype(np.float32) + np.float32(offset)
    x = c[rng.integers(0, centres, n)] + np.float32(0.35) * rng.standard_normal((n, DIMS)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def items(x: np.ndarray, start: int = 0, **metadata: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"r{start + i}", "vector": v, "metadata": {"c": (start + i) % 10, **metadata}} for i, v in enumerate(x)
    ]


def verify(idx: LocalIndex) -> ivf.Partitions:
    parts = idx._state.ivf
    assert parts is not None, "the index is not partitioned"
    parts.verify(idx._state.kernel)
    return parts


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_partitions_follow_writes_reopen_and_compaction(tmp_path: Path) -> None:
    async def go() -> None:
        where = str(tmp_path / "idx")
        idx = await LocalIndex.create(where, dims=DIMS, ivf_threshold=300)
        await idx.insert_many(items(clustered(200)))  # below the threshold: exact
        assert idx._state.ivf is None and (await idx.stats())["ivf"] == {"threshold": 300, "active": False}
        await idx.insert_many(items(clustered(200, seed=4), start=200))  # crosses it: trained in the commit
        before = verify(idx)
        assert before.nlist >= 4 and (await idx.stats())["ivf"]["rows"] == 400
        rng = np.random.default_rng(1)
        for step in range(60):  # upserts (a new vector moves lists), deletes (the last row moves), inserts
            which = int(rng.integers(0, 3))
            if which == 0:
                await idx.upsert(f"r{int(rng.integers(0, 400))}", vector=clustered(1, seed=100 + step)[0])
            elif which == 1:
                await idx.delete(f"r{int(rng.integers(0, 400))}")
            else:
                await idx.insert(clustered(1, seed=200 + step)[0], id=f"n{step}")
        verify(idx)
        centroids = before.centroids.to_bytes()
        answer = [r.id for r in await idx.query(clustered(1, seed=9)[0], top_k=5, nprobe=2)]
        await idx.close()

        idx = await LocalIndex.open(where)  # snapshot partitions + log replayed onto them: no retraining
        parts = verify(idx)
        assert parts.centroids.to_bytes() == centroids
        assert [r.id for r in await idx.query(clustered(1, seed=9)[0], top_k=5, nprobe=2)] == answer
        await idx.compact()
        await idx.close()
        idx = await LocalIndex.open(where, read_only=True)
        assert verify(idx).centroids.to_bytes() == centroids
        assert [r.id for r in await idx.query(clustered(1, seed=9)[0], top_k=5, nprobe=2)] == answer
        await idx.close()

    run(go())


def test_probing_prunes_and_recall_stays_high_exact_is_brute_force() -> None:
    async def go() -> None:
        x = clustered(4000)
        idx = await LocalIndex.create("memory://ivf-recall", dims=DIMS, ivf_threshold=1000)
        await idx.insert_many(items(x))
        parts = verify(idx)
        queries = clustered(60, seed=77)
        found = differs = 0
        for q in queries:
            exact = await idx.query(q, top_k=10, mode="vector", exact=True)
            truth = np.argsort(-(x @ q), kind="stable")[:10]
            assert [r.id for r in exact] == [f"r{i}" for i in truth]  # exact=True is the brute-force answer
            one = await idx.query(q, top_k=10, mode="vector", nprobe=1)
            differs += [r.id for r in one] != [r.id for r in exact]
            auto = await idx.query(q, top_k=10, mode="vector")
            found += len({r.id for r in auto} & {r.id for r in exact})
            for r in auto:  # probed hits carry their true cosine
                assert abs(r.score - float(x[int(r.id[1:])] @ q)) < 1e-5
        assert differs > 0, "one list of many never changed an answer: probing is not happening"
        assert len(parts.candidates(queries[0].tobytes(), 10, nprobe=1)) < len(x) / 2
        assert found / (10 * len(queries)) >= 0.95
        await idx.close()

    run(go())


def test_filters_apply_before_probing_and_selective_ones_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ivf, "MIN_CANDIDATES", 1)  # small probes, so the filtered paths really differ
    monkeypatch.setattr(ivf, "PER_K", 1)
    monkeypatch.setattr(ivf, "PROBE_SCALE", 0.0)
    probed: list[int] = []
    candidates = ivf.Partitions.candidates

    def counting(self: ivf.Partitions, *args: Any, **kwargs: Any) -> Any:
        out = candidates(self, *args, **kwargs)
        probed.append(len(out))
        return out

    monkeypatch.setattr(ivf.Partitions, "candidates", counting)

    async def go() -> None:
        x = clustered(3000)
        idx = await LocalIndex.create("memory://ivf-filter", dims=DIMS, ivf_threshold=500, indexed=["c"])
        await idx.insert_many(items(x[:2990]) + items(x[2990:], start=2990, rare=True))
        q = clustered(1, seed=5)[0]
        rare = await idx.query(q, top_k=5, filter={"rare": True})  # 10 matches: exact over them
        assert [r.id for r in rare] == [r.id for r in await idx.query(q, top_k=5, filter={"rare": True}, exact=True)]
        assert not probed  # answered by an exact scan of the 10 matches
        wide = await idx.query(q, top_k=20, filter={"c": {"$in": [1, 2, 3, 4, 5]}})  # half the rows: probed
        assert len(wide) == 20 and all(r.item.metadata["c"] in (1, 2, 3, 4, 5) for r in wide)
        assert probed and 20 <= probed[-1] < 1500  # probed: matching rows of the nearest lists only
        await idx.close()

    run(go())


def test_drift_retrains_and_shrinking_drops_back_to_exact() -> None:
    async def go() -> None:
        idx = await LocalIndex.create("memory://ivf-drift", dims=DIMS, ivf_threshold=400)
        await idx.insert_many(items(clustered(600)))
        first = verify(idx).centroids.to_bytes()
        # rows from far-away clusters: farther from every centroid (mean distance grows) -> retrained
        await idx.insert_many(items(clustered(300, seed=8, offset=3.0), start=600))
        stats = (await idx.stats())["ivf"]
        assert verify(idx).centroids.to_bytes() != first and stats["trained_rows"] == 900
        assert idx._state.ivf is not None and idx._state.ivf.drift() is None
        await idx.delete_many([f"r{i}" for i in range(720)])  # 180 rows: under half the threshold
        assert idx._state.ivf is None and (await idx.stats())["ivf"]["active"] is False
        assert len(await idx.query(clustered(1)[0], top_k=3)) == 3
        await idx.close()

    run(go())


def test_drift_criterion_is_measured() -> None:
    class Fixed:
        """Every row to list 0 at cosine ``score`` (a stand-in for the arithmetic: the policy is pure Python)."""

        nlist = 2

        def __init__(self, score: float) -> None:
            self.score = score

        def nearest(self, data: Any, n: int) -> tuple[list[int], list[float]]:
            return [0] * n, [self.score] * n

    near = Fixed(0.9)
    parts = ivf.Partitions(near)  # type: ignore[arg-type]
    parts.add(0, b"", 10)  # the first rows set the baseline: no drift yet
    assert parts.drift() is None and parts.trained == ivf.Trained(10, 2.0, pytest.approx(0.1))
    parts.centroids = Fixed(0.5)  # type: ignore[assignment]
    parts.add(10, b"", 2)  # farther from their centroid: mean 1 - cosine 0.1 -> 0.167
    assert "distance" in str(parts.drift())
    parts = ivf.Partitions(near, ivf.Trained(rows=10, imbalance=1.0, residual=0.1))  # type: ignore[arg-type]
    parts.add(0, b"", 10)  # all in one of two lists, trained balanced
    assert "imbalance" in str(parts.drift())
    parts = ivf.Partitions(near, ivf.Trained(rows=10, imbalance=2.0, residual=0.1))  # type: ignore[arg-type]
    parts.add(0, b"", 21)
    assert "rows" in str(parts.drift())


def test_bad_arguments_are_refused_and_change_nothing() -> None:
    async def go() -> None:
        with pytest.raises(InvalidInput, match="ivf_threshold"):
            await LocalIndex.create("memory://ivf-bad", dims=DIMS, ivf_threshold=0)
        with pytest.raises(InvalidInput, match="ivf_threshold"):
            await LocalIndex.create("memory://ivf-bad", dims=DIMS, ivf_threshold="10")  # type: ignore[arg-type]
        assert not await LocalIndex.exists("memory://ivf-bad")
        idx = await LocalIndex.create("memory://ivf-bad", dims=DIMS, ivf_threshold=10)
        await idx.insert_many(items(clustered(50)))
        for kwargs in ({"exact": "yes"}, {"exact": 1}, {"nprobe": 0}, {"nprobe": True}, {"nprobe": 1.5}):
            with pytest.raises(InvalidInput):
                await idx.query(clustered(1)[0], **kwargs)
        assert await idx.count() == 50 and idx.manifest["ivf"] == {"threshold": 10}
        await idx.close()

    run(go())


def test_a_failed_partition_snapshot_is_not_the_writers_error() -> None:
    async def go() -> None:
        store = FaultyStore(MemoryStore("ivf-fault"))
        idx = await LocalIndex.create(store, dims=DIMS, ivf_threshold=150)
        await idx.insert_many(items(clustered(100)))  # a log commit, below the threshold
        store.fail = {"write_snapshot": store.calls["write_snapshot"] + 1}
        await idx.insert_many(items(clustered(100, seed=6), start=100))  # trains, then its snapshot fails
        stats = await idx.stats()
        assert stats["items"] == 200 and "injected" in stats["compaction_error"]
        verify(idx)
        assert len(await idx.query(clustered(1)[0], top_k=5)) == 5
        await idx.close()
        idx = await LocalIndex.open(MemoryStore("ivf-fault"))  # the old snapshot (none saved) + the log
        assert idx._state.ivf is None and await idx.count() == 200
        await idx.insert(clustered(1, seed=99)[0], id="next")  # the next commit partitions and saves
        verify(idx)
        await idx.close()
        idx = await LocalIndex.open(MemoryStore("ivf-fault"))
        verify(idx)
        await idx.close()
        await LocalIndex.drop(MemoryStore("ivf-fault"))

    run(go())


def test_snapshot_codec_versions_and_damage() -> None:
    rows = [Row("a", {}, None, 0), Row("b", {"x": 1}, "t", 1)]
    plain = encode_rows(rows)
    assert "ivf" not in json.loads(plain) and decode_snapshot_rows(plain) == (rows, None)
    version_1 = json.dumps({"version": 1, "id": ["a"], "metadata": [{}], "text": [None], "seq": [0], "ivf": {}})
    assert decode_snapshot_rows(version_1.encode()) == ([Row("a", {}, None, 0)], None)  # v1 never had partitions
    state = {"version": 1, "nlist": 1}
    both = encode_rows(rows, state)
    assert (
        json.loads(both)["version"] == 2 and decode_snapshot_rows(both) == (rows, state) and decode_rows(both) == rows
    )
    with pytest.raises(CorruptIndex):
        decode_snapshot_rows(json.dumps({"version": 3, "id": [], "metadata": [], "text": [], "seq": []}).encode())

    async def go() -> None:
        idx = await LocalIndex.create("memory://ivf-codec", dims=DIMS, ivf_threshold=20)
        await idx.insert_many(items(clustered(40)))
        rows_, vectors, state = idx._state.snapshot_parts()
        vectors = bytes(vectors)
        await idx.close()

        def load(ivf_state: dict[str, Any]) -> None:
            IndexRows(default_kernel(DIMS), [], (0.9, 0.4)).load(rows_, vectors, ivf=ivf_state)

        assert state is not None
        load(state)  # the undamaged state loads
        for damage in (
            {"assign": base64.b64encode(b"\0" * 12).decode()},  # 3 rows for 40
            {"nlist": 10_000},
            {"centroids": "not base64!"},
            {"version": 9},
            {"trained": "x"},
        ):
            with pytest.raises(CorruptIndex):
                load(dict(state, **damage))

    run(go())


def test_an_index_from_before_partitions_opens_and_partitions_on_compaction() -> None:
    async def go() -> None:
        store = MemoryStore("ivf-old")
        manifest = {"format": "clinvec-index", "version": 1, "dims": DIMS, "metric": "cosine", "indexed": []}
        await store.create(manifest)  # a manifest without "ivf": the library default applies
        await store.open()
        x = clustered(120)
        from pyapp.stores.base import Put

        await store.commit([Put(Row(f"r{i}", {}, None, i), x[i].tobytes()) for i in range(120)])
        await store.close()
        ivf_default = ivf.DEFAULT_THRESHOLD
        try:
            ivf.DEFAULT_THRESHOLD = 100
            idx = await LocalIndex.open(MemoryStore("ivf-old"))
            assert idx._state.ivf is None and await idx.count() == 120  # opening never trains
            await idx.compact()
            verify(idx)
            await idx.close()
        finally:
            ivf.DEFAULT_THRESHOLD = ivf_default
        await LocalIndex.drop(MemoryStore("ivf-old"))

    run(go())
