"""LocalIndex behaviour through the public API, on the memory store and the durable file store."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

from pyapp import (
    DimensionMismatch,
    DuplicateId,
    IndexClosed,
    IndexExists,
    IndexNotFound,
    InvalidFilter,
    InvalidInput,
    InvalidMetadata,
    InvalidVector,
    LocalIndex,
    NoEmbedder,
    NoUpdateInProgress,
    ReadOnlyIndex,
    UpdateInProgress,
)

DIMS = 8


def vec(seed: int, dims: int = DIMS) -> list[float]:
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32).tolist()


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


@pytest.fixture(params=["memory", "file"])
def location(request, tmp_path) -> str:
    if request.param == "memory":
        return f"memory://{uuid.uuid4()}"
    return str(tmp_path / "idx")


async def make(location: str, **kwargs) -> LocalIndex:
    return await LocalIndex.create(location, dims=DIMS, **kwargs)


async def test_create_open_exists_drop(location):
    assert not await LocalIndex.exists(location)
    with pytest.raises(IndexNotFound):
        await LocalIndex.open(location)
    idx = await make(location, indexed=["ward"])
    assert await LocalIndex.exists(location)
    await idx.close()
    with pytest.raises(IndexExists):
        await make(location)
    again = await LocalIndex.create(location, dims=DIMS, exist_ok=True)
    assert again.dims == DIMS and again.indexed == ["ward"]
    await again.close()
    await LocalIndex.drop(location)
    assert not await LocalIndex.exists(location)


async def test_create_rejects_bad_config(location):
    with pytest.raises(InvalidInput):
        await LocalIndex.create(location, dims=0)
    with pytest.raises(InvalidInput):
        await LocalIndex.create(location, dims=DIMS, metric="euclidean")
    with pytest.raises(InvalidInput):
        await LocalIndex.create(location, dims=DIMS, indexed="ward")
    assert not await LocalIndex.exists(location)


async def test_insert_get_normalises_and_assigns_uuid(location):
    idx = await make(location)
    new_id = await idx.insert([3, 4, 0, 0, 0, 0, 0, 0], metadata={"a": 1}, text="hello")
    assert uuid.UUID(new_id).version == 4
    item = await idx.get(new_id)
    assert item.vector[:2] == pytest.approx([0.6, 0.8])
    assert item.metadata == {"a": 1} and item.text == "hello"
    assert await idx.get("missing") is None
    await idx.close()


async def test_bad_vectors_are_rejected_and_change_nothing(location):
    idx = await make(location)
    await idx.insert(vec(1), id="keep")
    bad = [vec(2)[:-1], [math.nan] * DIMS, [math.inf] + [0.0] * (DIMS - 1), [0.0] * DIMS, ["x"] * DIMS, "abc", None]
    errors = [DimensionMismatch, InvalidVector, InvalidVector, InvalidVector, InvalidVector, InvalidVector, NoEmbedder]
    for vector, error in zip(bad, errors):
        with pytest.raises(error):
            await idx.insert(vector, id="new")
    with pytest.raises(InvalidVector):
        await idx.insert_many([{"id": "ok", "vector": vec(3)}, {"id": "nan", "vector": [math.nan] * DIMS}])
    assert await idx.count() == 1 and await idx.get("ok") is None
    await idx.close()


async def test_duplicate_ids(location):
    idx = await make(location)
    await idx.insert(vec(1), id="a")
    with pytest.raises(DuplicateId):
        await idx.insert(vec(2), id="a")
    with pytest.raises(DuplicateId):
        await idx.insert_many([{"id": "b", "vector": vec(3)}, {"id": "b", "vector": vec(4)}])
    with pytest.raises(DuplicateId):
        await idx.insert_many([{"id": "c", "vector": vec(3)}, {"id": "a", "vector": vec(4)}])
    assert await idx.count() == 1
    assert (await idx.get("a")).vector == pytest.approx(unit(vec(1)).tolist(), abs=1e-6)
    await idx.close()


async def test_metadata_and_ids_validated(location):
    idx = await make(location)
    with pytest.raises(InvalidMetadata):
        await idx.insert(vec(1), metadata={"x": {1, 2}})
    with pytest.raises(InvalidMetadata):
        await idx.insert(vec(1), metadata={"x": math.nan})
    with pytest.raises(InvalidInput):
        await idx.insert(vec(1), id="")
    with pytest.raises(InvalidInput):
        await idx.insert(vec(1), id=42)
    with pytest.raises(InvalidInput):
        await idx.insert(vec(1), text=5)
    assert await idx.count() == 0
    await idx.close()


async def test_caller_mutation_does_not_reach_index(location):
    idx = await make(location)
    meta = {"tags": ["a"]}
    await idx.insert(vec(1), metadata=meta, id="x")
    meta["tags"].append("b")
    got = await idx.get("x")
    got.metadata["tags"].append("c")
    assert (await idx.get("x")).metadata == {"tags": ["a"]}
    await idx.close()


async def test_upsert_and_update_metadata(location):
    idx = await make(location)
    await idx.insert(vec(1), metadata={"v": 1}, text="old", id="a")
    await idx.insert(vec(2), id="b")
    await idx.upsert("a", vec(3), metadata={"v": 2}, text="new")
    item = await idx.get("a")
    assert item.metadata == {"v": 2} and item.text == "new"
    assert item.vector == pytest.approx(unit(vec(3)).tolist(), abs=1e-6)
    await idx.upsert("c", vec(4))
    await idx.update_metadata("a", {"v": 3})
    item = await idx.get("a")
    assert item.metadata == {"v": 3} and item.text == "new"
    assert item.vector == pytest.approx(unit(vec(3)).tolist(), abs=1e-6)
    with pytest.raises(InvalidInput):
        await idx.update_metadata("zzz", {})
    assert [i.id for i in await idx.list()] == ["a", "b", "c"]  # upsert keeps insertion order
    await idx.close()


async def test_delete_variants(location):
    idx = await make(location, indexed=["g"])
    await idx.insert_many([{"id": f"i{n}", "vector": vec(n), "metadata": {"g": n % 3}} for n in range(12)])
    assert await idx.delete("i0") is True
    assert await idx.delete("i0") is False  # unknown id: no-op
    assert await idx.delete_many(["i1", "i2", "nope", "i1"]) == 2
    assert await idx.delete_where({"g": 0}) == 3  # i3, i6, i9
    assert await idx.count() == 6
    assert [i.id for i in await idx.list()] == ["i4", "i5", "i7", "i8", "i10", "i11"]
    with pytest.raises(InvalidFilter):
        await idx.delete_where({"g": {"$regex": "x"}})
    await idx.close()


async def test_query_exact_topk_ties_and_min_score(location):
    idx = await make(location)
    items = [{"id": f"i{n}", "vector": vec(n)} for n in range(50)]
    items.append({"id": "twin", "vector": vec(7)})  # exact tie with i7, inserted later
    await idx.insert_many(items)
    q = vec(7)
    results = await idx.query(q, top_k=5)
    assert [r.id for r in results[:2]] == ["i7", "twin"]
    matrix = np.stack([unit(it["vector"]) for it in items])
    expected = np.argsort(-(matrix @ unit(q)), kind="stable")[:5]
    assert [r.id for r in results] == [items[i]["id"] for i in expected]
    assert all(r.vector_score == pytest.approx(r.score) for r in results)
    assert len(await idx.query(q, top_k=500)) == 51
    high = await idx.query(q, top_k=10, min_score=0.99)
    assert [r.id for r in high] == ["i7", "twin"]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInput):
            await idx.query(q, top_k=bad)
    with pytest.raises(DimensionMismatch):
        await idx.query(q[:-1])
    with pytest.raises(InvalidVector):
        await idx.query([0.0] * DIMS)
    await idx.close()


async def test_filtered_query_returns_exactly_top_k(location):
    idx = await make(location, indexed=["ward"])
    items = [
        {"id": f"i{n}", "vector": vec(n), "metadata": {"ward": "ICU" if n % 10 == 0 else "ED", "n": n}}
        for n in range(200)
    ]
    await idx.insert_many(items)
    results = await idx.query(vec(5), top_k=7, filter={"ward": "ICU"})
    assert len(results) == 7 and all(r.item.metadata["ward"] == "ICU" for r in results)
    results = await idx.query(vec(5), top_k=7, filter={"n": {"$gte": 195}})  # non-indexed field
    assert sorted(r.item.metadata["n"] for r in results) == [195, 196, 197, 198, 199]
    assert await idx.query(vec(5), filter={"ward": "nowhere"}) == []
    with pytest.raises(InvalidFilter):
        await idx.query(vec(5), filter={"ward": {"$like": "I%"}})
    assert await idx.count({"ward": "ICU"}) == 20
    await idx.close()


async def test_keyword_and_hybrid(location):
    idx = await make(location)
    texts = {
        "a": "acute shortness of breath and chest pain",
        "b": "diabetes mellitus type 2 with hyperglycemia",
        "c": "fracture of the left femoral neck after a fall",
        "d": "chronic obstructive pulmonary disease exacerbation with dyspnea",
    }
    for n, (key, text) in enumerate(texts.items()):
        await idx.insert(vec(n), text=text, id=key)
    await idx.insert(vec(99), id="no-text")
    hits = await idx.query(text="femoral fracture", mode="keyword")
    assert [h.id for h in hits] == ["c"] and hits[0].keyword_score > 0 and hits[0].vector_score is None
    hybrid = await idx.query(vec(1), text="breath", top_k=10)  # auto -> hybrid
    ids = [h.id for h in hybrid]
    assert ids[0] in ("a", "b") and set(ids) <= {"a", "b", "c", "d", "no-text"}
    assert {h.id for h in hybrid if h.keyword_score} == {"a"}
    with pytest.raises(NoEmbedder):
        await idx.query(text="breath", mode="vector")
    with pytest.raises(InvalidInput):
        await idx.query(vec(1), mode="keyword")
    with pytest.raises(InvalidInput):
        await idx.query(vec(1), mode="fuzzy")
    await idx.delete("c")
    assert await idx.query(text="femoral fracture", mode="keyword") == []
    await idx.upsert("b", vec(1), text="femoral neck fracture")
    assert [h.id for h in await idx.query(text="femoral", mode="keyword")] == ["b"]
    weighted = await idx.query(vec(1), text="fracture", mode="hybrid", fusion="weighted", weights=(0.2, 0.8))
    assert weighted[0].id == "b"
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InvalidInput, match="rrf k"):
            await idx.query(vec(1), rrf_k=bad)  # checked up front, even when no fusion runs
    await idx.close()


async def test_hybrid_never_ranks_what_both_legs_miss(location):
    idx = await make(location)
    await idx.insert_many([{"id": f"i{n}", "vector": vec(n), "text": f"note {n}"} for n in range(300)])
    results = await idx.query(vec(3), text="note 250", top_k=300, mode="hybrid")
    vector_leg = {r.id for r in await idx.query(vec(3), top_k=50)}
    keyword_leg = {r.id for r in await idx.query(text="note 250", top_k=300, mode="keyword")}
    assert {r.id for r in results} <= vector_leg | keyword_leg
    await idx.close()


async def test_batch_commit_and_rollback(location):
    idx = await make(location)
    await idx.insert(vec(0), id="base")
    async with idx.batch():
        await idx.insert(vec(1), id="x")
        await idx.upsert("base", vec(2), metadata={"changed": True})
        assert await idx.get("x") is None  # invisible until commit
        assert await idx.count() == 1
        with pytest.raises(DuplicateId):
            await idx.insert(vec(3), id="x")  # staged ids count as taken
    assert await idx.count() == 2 and (await idx.get("base")).metadata == {"changed": True}

    with pytest.raises(RuntimeError):
        async with idx.batch():
            await idx.insert(vec(4), id="y")
            await idx.delete("x")
            raise RuntimeError("boom")
    assert await idx.get("y") is None and await idx.get("x") is not None

    idx.begin_update()
    with pytest.raises(UpdateInProgress):
        idx.begin_update()
    await idx.insert(vec(5), id="z")
    idx.cancel_update()
    assert await idx.get("z") is None
    with pytest.raises(NoUpdateInProgress):
        await idx.end_update()
    with pytest.raises(NoUpdateInProgress):
        idx.cancel_update()
    idx.begin_update()
    await idx.insert(vec(6), id="w")
    await idx.delete("w")
    await idx.insert(vec(7), id="w")
    await idx.end_update()
    assert (await idx.get("w")).vector == pytest.approx(unit(vec(7)).tolist(), abs=1e-6)
    await idx.close()


async def test_reopen_sees_everything(location):
    idx = await make(location, indexed=["k"])
    await idx.insert_many(
        [{"id": f"i{n}", "vector": vec(n), "metadata": {"k": n % 2}, "text": f"word{n}"} for n in range(30)]
    )
    await idx.delete("i3")
    await idx.upsert("i4", vec(100), metadata={"k": 9}, text="replaced")
    await idx.update_metadata("i5", {"k": 7})
    before = [(i.id, i.metadata, i.text, i.vector) for i in await idx.list()]
    await idx.compact()
    await idx.insert(vec(200), id="after-compact", text="late")
    await idx.close()
    idx = await LocalIndex.open(location)
    after = [(i.id, i.metadata, i.text, i.vector) for i in await idx.list()]
    assert after[:-1] == before and after[-1][0] == "after-compact"
    assert [h.id for h in await idx.query(text="replaced", mode="keyword")] == ["i4"]
    assert await idx.count({"k": 9}) == 1
    assert (await idx.query(vec(200), top_k=1))[0].id == "after-compact"
    await idx.close()


async def test_list_paging_and_filters(location):
    idx = await make(location)
    await idx.insert_many([{"id": f"i{n:02d}", "vector": vec(n), "metadata": {"n": n}} for n in range(20)])
    assert [i.id for i in await idx.list(limit=3, offset=2)] == ["i02", "i03", "i04"]
    assert [i.id for i in await idx.list(filter={"n": {"$in": [1, 5, 30]}})] == ["i01", "i05"]
    assert await idx.list(offset=50) == []
    with pytest.raises(InvalidInput):
        await idx.list(limit=-1)
    await idx.close()


async def test_read_only_and_closed(location):
    idx = await make(location)
    await idx.insert(vec(1), id="a")
    await idx.close()
    with pytest.raises(IndexClosed):
        await idx.get("a")
    ro = await LocalIndex.open(location, read_only=True)
    assert (await ro.get("a")) is not None
    with pytest.raises(ReadOnlyIndex):
        await ro.insert(vec(2))
    with pytest.raises(ReadOnlyIndex):
        ro.begin_update()
    await ro.close()


async def test_stats(location):
    idx = await make(location, indexed=["ward"])
    await idx.insert(vec(1), text="alpha beta")
    stats = await idx.stats()
    assert stats["items"] == 1 and stats["dims"] == DIMS and stats["indexed"] == ["ward"]
    assert stats["kernel"] in ("NumpyKernel", "Int8Kernel") and stats["keyword"]["texts"] == 1
    await idx.close()


async def test_many_operations_match_reference(location):
    """A random mix of writes keeps rows, vectors, metadata and text aligned after swap-deletes."""
    rng = np.random.default_rng(7)
    idx = await make(location, indexed=["g"])
    reference: dict[str, tuple[list[float], dict, str]] = {}
    for step in range(300):
        action = rng.integers(0, 4)
        key = f"k{rng.integers(0, 40)}"
        v = vec(int(rng.integers(0, 10_000)))
        if action == 0 and key not in reference:
            await idx.insert(v, metadata={"g": step % 5}, text=f"t{step}", id=key)
            reference[key] = (v, {"g": step % 5}, f"t{step}")
        elif action == 1:
            await idx.upsert(key, v, metadata={"g": step % 5}, text=f"u{step}")
            reference[key] = (v, {"g": step % 5}, f"u{step}")
        elif action == 2:
            assert await idx.delete(key) == (key in reference)
            reference.pop(key, None)
        elif key in reference:
            await idx.update_metadata(key, {"g": 9})
            reference[key] = (reference[key][0], {"g": 9}, reference[key][2])
    for reopen in (False, True):
        if reopen:
            await idx.close()
            idx = await LocalIndex.open(location)
        assert await idx.count() == len(reference)
        for key, (v, meta, text) in reference.items():
            item = await idx.get(key)
            assert item.metadata == meta and item.text == text
            assert item.vector == pytest.approx(unit(v).tolist(), abs=1e-6)
            top = await idx.query(v, top_k=1)
            assert top[0].score == pytest.approx(1.0, abs=1e-5)
        assert await idx.count({"g": 9}) == sum(1 for _, m, _ in reference.values() if m["g"] == 9)
    await idx.close()


async def test_bulk_first_load_goes_to_snapshot_and_fails_cleanly(location, monkeypatch):
    from pyapp import StorageFull

    idx = await make(location)
    items = [{"id": f"b{n}", "vector": vec(n), "metadata": {"n": n}} for n in range(1200)]
    real = idx._store.write_snapshot

    async def full(*args, **kwargs):
        raise StorageFull("disk full (simulated)")

    monkeypatch.setattr(idx._store, "write_snapshot", full)
    with pytest.raises(StorageFull):
        await idx.insert_many(items)
    assert await idx.count() == 0 and await idx.get("b1") is None
    monkeypatch.setattr(idx._store, "write_snapshot", real)
    await idx.insert_many(items)
    await idx.close()
    idx = await LocalIndex.open(location)
    assert await idx.count() == 1200 and (await idx.get("b7")).metadata == {"n": 7}
    assert (await idx.query(vec(7), top_k=1))[0].id == "b7"
    await idx.close()


async def test_iter_items_and_distinct(tmp_path) -> None:
    """Public iteration (export/sync build on it) and distinct values (the page's ward list)."""
    for indexed in (["ward"], []):
        idx = await LocalIndex.create(str(tmp_path / f"it{len(indexed)}"), dims=2, indexed=indexed)
        await idx.insert([1, 0], metadata={"ward": "ICU"}, id="a")
        await idx.insert([1, 1], metadata={"ward": "ED"}, id="b")
        await idx.insert([0, 1], metadata={"ward": "ICU"}, id="c")
        await idx.insert([0, 1], metadata={"ward": ["x"]}, id="d")
        await idx.upsert("a", [1, 0], metadata={"ward": "CCU"})
        await idx.delete("b")
        assert await idx.distinct("ward") == ["CCU", "ICU"]
        batches = [[item.id for item in batch] async for batch in idx.iter_items(batch_size=2)]
        assert batches == [["a", "c"], ["d"]]
        await idx.close()


async def test_stats_never_builds_the_keyword_index(tmp_path) -> None:
    """stats() stays cheap on a reopened index: it reports text counts without building BM25 (the page calls it
    after every add; building took seconds in Pyodide at 50k texts)."""
    loc = str(tmp_path / "s")
    idx = await LocalIndex.create(loc, dims=DIMS)
    await idx.insert_many(
        [{"id": f"t{i}", "vector": vec(i), "text": f"note {i}" if i % 3 else None} for i in range(30)]
    )
    await idx.close()
    idx = await LocalIndex.open(loc)
    stats = await idx.stats()
    assert stats["keyword"] == {"built": False, "texts": 20}
    assert not idx._state.keyword_built
    await idx.upsert("t0", vec(0), text="now with text")
    await idx.delete("t1")
    assert (await idx.stats())["keyword"] == {"built": False, "texts": 20}
    await idx.query(text="note", mode="keyword")
    keyword = (await idx.stats())["keyword"]
    assert keyword["built"] is True and keyword["texts"] == 20 and keyword["docs"] == 20
    await idx.close()
