"""FaultyStore: fails exactly the calls it is told to, before they reach the inner store (or after, on request)."""

from __future__ import annotations

import uuid

import pytest

from pyapp.errors import StorageError, StorageFull
from pyapp.stores import FaultyStore, MemoryStore, Store
from pyapp.stores.base import Delete, Put, Row

MANIFEST = {"dims": 1}


def put(i: int) -> Put:
    return Put(Row(f"id{i}", {"i": i}, None, i), bytes(4))


async def fresh(**kwargs: object) -> FaultyStore:
    inner = MemoryStore(f"faulty-{uuid.uuid4().hex}")
    await inner.create(MANIFEST)
    return FaultyStore(inner, **kwargs)  # type: ignore[arg-type]


async def test_the_nth_commit_fails_before_reaching_the_inner_store() -> None:
    store = await fresh(fail={"commit": 2})
    assert isinstance(store, Store)
    await store.open()
    await store.commit([put(1)])
    size = store.log_bytes
    with pytest.raises(StorageError, match="commit call 2"):
        await store.commit([put(2)])
    assert store.log_bytes == size  # the inner store never saw the failed call
    await store.commit([put(3)])
    assert store.calls["commit"] == 3 and store.calls["open"] == 1
    await store.close()
    assert (await store.inner.open(read_only=True)).log == [[put(1)], [put(3)]]
    await store.inner.drop()


async def test_collections_of_calls_and_a_chosen_error_class_or_instance() -> None:
    store = await fresh(fail={"write_snapshot": [1, 3], "close": 1}, error=StorageFull)
    await store.open()
    outcomes = []
    for _ in range(3):
        try:
            await store.write_snapshot(MANIFEST, [], b"")
            outcomes.append("ok")
        except StorageFull:
            outcomes.append("full")
    assert outcomes == ["full", "ok", "full"]
    with pytest.raises(StorageFull):
        await store.close()
    boom = RuntimeError("unplugged")
    store.error, store.fail = boom, {"drop": 1}
    await store.inner.close()
    with pytest.raises(RuntimeError) as info:
        await store.drop()
    assert info.value is boom and await store.exists()
    await store.inner.drop()


async def test_after_true_fails_once_the_inner_call_has_succeeded() -> None:
    store = await fresh(fail={"commit": 1}, after=True)
    await store.open()
    with pytest.raises(StorageError):
        await store.commit([put(1), Delete("id0")])
    await store.close()
    assert (await store.inner.open(read_only=True)).log == [[put(1), Delete("id0")]]  # durable all the same
    await store.inner.drop()


def test_bad_specifications_are_refused() -> None:
    inner = MemoryStore("never-created")
    with pytest.raises(ValueError, match="cannot fail 'comit'"):
        FaultyStore(inner, fail={"comit": 1})
    for bad in (0, -1, True, [1, "2"]):
        with pytest.raises(ValueError, match="counted from 1"):
            FaultyStore(inner, fail={"commit": bad})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        FaultyStore(inner, error="boom")  # type: ignore[arg-type]
