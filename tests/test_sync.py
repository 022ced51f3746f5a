"""Sync stamps, delta bundles and the sync engine between two real LocalIndexes (file and memory stores).

The server side is an ordinary index reached through ``LocalPeer``; the HTTP route does the same merge
(tests/test_sync_http.py). Times are set by patching ``pyapp.staging.now_ms`` so "who wrote last" is decided
by the test, not by the clock's resolution.
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import uuid
from typing import Any

import pytest

from pyapp import LocalIndex, staging
from pyapp import bundle as bundles
from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import StorageError
from pyapp.stores import FaultyStore, MemoryStore
from pyapp.sync import (
    LocalPeer,
    ModelMismatch,
    Peer,
    ServerUnreachable,
    SyncState,
    bundle_bytes,
    merge,
    sync,
)

DIMS = 8


def vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIMS)]


def items(prefix: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "vector": vec(hash((prefix, i)) % 10**6), "metadata": {"n": i}, "text": f"{prefix} {i}"}
        for i in range(start, start + n)
    ]


@pytest.fixture(params=["memory", "file"])
def location(request, tmp_path):
    def make(name: str) -> str:
        if request.param == "memory":
            return f"memory://sync-{name}-{uuid.uuid4().hex}"
        return str(tmp_path / name)

    return make


@pytest.fixture
def clock(monkeypatch):
    """``clock.now`` is the millisecond every following write is stamped with."""

    class Clock:
        now = 1_700_000_000_000

        def tick(self, ms: int = 1) -> int:
            self.now += ms
            return self.now

    c = Clock()
    monkeypatch.setattr(staging, "now_ms", lambda: c.now)
    return c


async def content(index: LocalIndex) -> list[tuple[str, Any, Any, bytes]]:
    """Every item, by id: id, metadata, text and the exact float32 vector bytes."""
    out = []
    async for batch in index.iter_items():
        out.extend((i.id, i.metadata, i.text, struct.pack(f"<{DIMS}f", *i.vector)) for i in batch)
    return sorted(out)


# ---------------------------------------------------------------------------------------------- stamps
async def test_every_commit_is_stamped_and_changes_after_a_commit_are_named(location, clock):
    where = location("stamps")
    index = await LocalIndex.create(where, dims=DIMS)
    assert index.position == 0
    await index.insert_many(items("a", 3))
    first = index.position
    assert first == 1
    clock.tick()
    await index.upsert("a1", vec(9), {"n": 99}, "edited")
    await index.delete("a2")
    await index.insert_many(items("b", 2))
    assert index.position == first + 3
    changed = [row for batch in [b async for b in index.changes(first)] for row, _ in batch]
    assert [row.id for row in changed] == ["a1", "b0", "b1"]  # insertion order, not commit order
    assert changed[0].commit == first + 1 and changed[0].time == clock.now
    assert [(t.id, t.commit) for t in index.tombstones(first)] == [("a2", first + 2)]
    assert index.tombstones(first + 2) == []
    # an id written again after its delete is no longer a tombstone
    await index.insert(vec(5), id="a2")
    assert index.tombstones(first) == []
    await index.delete("a0")
    # compaction and reopening keep stamps and tombstones
    await index.compact()
    position = index.position
    await index.close()
    index = await LocalIndex.open(where)
    assert index.position == position
    assert [t.id for t in index.tombstones(0)] == ["a0"]
    assert "tombstones" not in index.manifest
    versions = index.versions(["a1", "a0", "zz"])
    assert versions["a1"][0].time == clock.now and versions["a0"].commit == position and "zz" not in versions
    await index.close()


async def test_a_bulk_first_load_after_deletes_keeps_the_tombstones(location):
    index = await LocalIndex.create(location("bulk"), dims=DIMS)
    await index.insert_many(items("a", 2))
    await index.delete_many(["a0", "a1"])
    await index.compact()
    await index.insert_many(items("b", 1200))  # into an empty index: written as a snapshot
    assert [t.id for t in index.tombstones(0)] == ["a0", "a1"]
    await index.close()


# ---------------------------------------------------------------------------------------------- bundles
async def test_a_delta_bundle_holds_only_the_commits_after_since(location, clock):
    source = await LocalIndex.create(location("src"), dims=DIMS)
    await source.insert_many(items("a", 50))
    copy = await LocalIndex.create(location("copy"), dims=DIMS)
    await bundles.restore(copy, io.BytesIO(await bundle_bytes(source, None)))
    since = source.position
    clock.tick()
    await source.upsert("a3", vec(1), {"n": -3}, "changed")
    await source.delete_many(["a7", "a8"])
    await source.insert_many(items("c", 4))
    data = await bundle_bytes(source, since)
    summary = bundles.verify(io.BytesIO(data))
    assert summary.manifest["kind"] == "delta" and summary.manifest["since"] == since
    assert summary.manifest["position"] == source.position
    assert summary.ids == ["a3", "c0", "c1", "c2", "c3"] and summary.deletes == 2
    await bundles.restore(copy, io.BytesIO(data), mode="upsert")
    assert await content(copy) == await content(source)
    # a full bundle carries every row's stamps
    _, batches = bundles.read(io.BytesIO(await bundle_bytes(source, None)))
    rows = [row for batch in batches for row in batch.rows]
    assert {row["id"]: row["time"] for row in rows}["a3"] == clock.now
    await source.close()
    await copy.close()


async def test_int8_bundles_are_a_quarter_of_the_vectors_and_restore_close(location):
    rng = random.Random(3)
    dims = 64
    source = await LocalIndex.create(location("int8"), dims=dims)
    await source.insert_many([{"id": f"x{i}", "vector": [rng.gauss(0, 1) for _ in range(dims)]} for i in range(300)])
    full = await bundles_of(source, int8=False)
    small = await bundles_of(source, int8=True)
    assert len(small) < 0.4 * len(full)
    assert bundles.verify(io.BytesIO(small)).manifest["vectors"]["encoding"] == "int8"
    copy = await LocalIndex.create(location("int8-copy"), dims=dims)
    await bundles.restore(copy, io.BytesIO(small))
    for item in await copy.list(limit=300):
        original = (await source.get(item.id)).vector
        cosine = sum(a * b for a, b in zip(item.vector, original))
        assert cosine > 0.999, item.id
    assert math.isclose(sum(v * v for v in item.vector), 1.0, rel_tol=1e-5)  # re-normalised when staged
    await source.close()
    await copy.close()


async def bundles_of(index: LocalIndex, int8: bool) -> bytes:
    buf = io.BytesIO()
    await bundles.write(index, buf, int8=int8)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- sync
async def test_pull_then_both_sides_add_offline_and_sync_to_the_same_items(location, clock):
    server = await LocalIndex.create(location("server"), dims=DIMS)
    await server.insert_many(items("s", 200))
    device = await LocalIndex.create(location("device"), dims=DIMS)
    report = await sync(device, LocalPeer(server))
    assert report.pushed is None and report.pulled.added == 200
    assert await content(device) == await content(server)
    state = report.state
    clock.tick()
    await device.insert_many(items("d", 5))
    await server.insert_many(items("n", 5))
    report = await sync(device, LocalPeer(server), state)
    assert report.pushed["added"] == 5 and report.pulled.added == 5 and report.pulled.unchanged == 5  # echo
    assert await server.count() == await device.count() == 210
    assert await content(device) == await content(server)
    # nothing moved since: the next sync pushes nothing and pulls nothing new
    again = await sync(device, LocalPeer(server), report.state)
    assert again.pushed is None and again.pulled.moved == 0 and again.as_dict()["log"] == []
    await server.close()
    await device.close()


async def test_a_conflicting_edit_resolves_by_last_writer_and_is_logged(location, clock):
    server = await LocalIndex.create(location("server"), dims=DIMS)
    await server.insert_many(items("s", 10))
    device = await LocalIndex.create(location("device"), dims=DIMS)
    state = (await sync(device, LocalPeer(server))).state
    clock.tick()
    await device.upsert("s1", vec(100), {"n": "device"}, "device edit")  # older
    clock.tick()
    await server.upsert("s1", vec(200), {"n": "server"}, "server edit")  # newer: wins
    await server.upsert("s2", vec(201), {"n": "server"}, "server edit 2")  # older than the device's s2
    clock.tick()
    await device.upsert("s2", vec(101), {"n": "device"}, "device edit 2")
    report = await sync(device, LocalPeer(server), state)
    assert (await device.get("s1")).text == (await server.get("s1")).text == "server edit"
    assert (await device.get("s2")).text == (await server.get("s2")).text == "device edit 2"
    assert await content(device) == await content(server)
    log = report.as_dict()["log"]
    lost = {(e["id"], e["overwritten"]["text"]) for e in log}
    assert ("s1", "device edit") in lost and ("s2", "server edit 2") in lost
    assert all(e["conflict"] for e in log) and report.as_dict()["conflicts"] == len(log) >= 2
    await server.close()
    await device.close()


async def test_deletes_win_over_older_edits_and_lose_to_newer_ones(location, clock):
    server = await LocalIndex.create(location("server"), dims=DIMS)
    await server.insert_many(items("s", 10))
    device = await LocalIndex.create(location("device"), dims=DIMS)
    state = (await sync(device, LocalPeer(server))).state
    clock.tick()
    await device.upsert("s1", vec(1), {}, "edited before the delete")
    await device.upsert("s2", vec(2), {}, "edited, same ms as the delete")
    await server.upsert("s3", vec(3), {}, "server edited")
    clock.tick()
    await server.delete_many(["s1"])
    await device.delete("s3")  # a newer delete on the device
    clock.now -= 1
    await server.delete("s2")  # same millisecond as the device's edit: the delete wins the tie
    clock.tick(5)
    await server.upsert("s4", vec(4), {}, "server edit after device delete")
    await device.delete("s4")  # the same millisecond as the server's edit: the delete wins the tie
    report = await sync(device, LocalPeer(server), state)
    for item_id in ("s1", "s2", "s3", "s4"):
        assert await device.get(item_id) is None and await server.get(item_id) is None, item_id
    assert await content(device) == await content(server)
    rules = {(e["id"], e["rule"]) for e in report.as_dict()["log"]}
    assert ("s1", "delete wins over an older edit") in rules and ("s3", "delete wins over an older edit") in rules
    # an edit newer than a delete brings the item back on both sides
    clock.tick()
    await device.upsert("s1", vec(7), {}, "re-created later")
    report = await sync(device, LocalPeer(server), report.state)
    assert (await server.get("s1")).text == "re-created later"
    assert await content(device) == await content(server)
    await server.close()
    await device.close()


async def test_a_bundle_of_another_model_is_refused_and_changes_nothing(location):
    server = await LocalIndex.create(location("m-server"), dims=DIMS, embedder=HashingEmbedder(dims=DIMS, seed=1))
    await server.insert_many(items("s", 3))
    device = await LocalIndex.create(location("m-device"), dims=DIMS, embedder=HashingEmbedder(dims=DIMS, seed=2))
    await device.insert_many(items("d", 2))
    before = await content(device)
    with pytest.raises(ModelMismatch, match="would not compare"):
        await sync(device, LocalPeer(server))
    plain = await LocalIndex.create(location("m-plain"), dims=DIMS)  # records no model at all
    with pytest.raises(ModelMismatch):
        await merge(plain, io.BytesIO(await bundle_bytes(server, None)), None)
    assert await content(device) == before and await plain.count() == 0 and await server.count() == 3
    for index in (server, device, plain):
        await index.close()


class FlakyPeer(Peer):
    """``LocalPeer`` whose pulls fail (unreachable, or a transfer cut short) while ``broken`` is set."""

    def __init__(self, index: LocalIndex) -> None:
        self.inner = LocalPeer(index)
        self.broken: str | None = "unreachable"

    async def pull(self, since, progress=None):
        data = await self.inner.pull(since, progress)
        if self.broken == "unreachable":
            raise ServerUnreachable("the server did not answer")
        if self.broken == "cut":
            return data[: len(data) // 2]
        return data

    async def push(self, data, since):
        return await self.inner.push(data, since)


async def test_an_unreachable_server_or_a_cut_transfer_changes_nothing_and_the_next_sync_completes(location, clock):
    server = await LocalIndex.create(location("f-server"), dims=DIMS)
    await server.insert_many(items("s", 300))
    device = await LocalIndex.create(location("f-device"), dims=DIMS)
    await device.insert_many(items("d", 5))
    peer = FlakyPeer(server)
    state = SyncState()
    with pytest.raises(ServerUnreachable):
        await sync(device, peer, state)
    assert await device.count() == 5  # the push reached the server, nothing was applied here
    assert await server.count() == 305
    peer.broken = "cut"
    with pytest.raises(bundles.BundleError, match="truncated|damaged"):
        await sync(device, peer, state)
    assert await device.count() == 5 and state == SyncState()
    peer.broken = None
    report = await sync(device, peer, state)  # the push is merged again: unchanged
    assert report.pushed["unchanged"] == 5 and report.pulled.added == 300
    assert await content(device) == await content(server)
    await server.close()
    await device.close()


async def test_a_failed_commit_during_the_merge_changes_nothing():
    server = await LocalIndex.create(f"memory://fault-server-{uuid.uuid4().hex}", dims=DIMS)
    await server.insert_many(items("s", 20))
    inner = MemoryStore(f"fault-device-{uuid.uuid4().hex}")
    store = FaultyStore(inner)
    device = await LocalIndex.create(store, dims=DIMS)
    await device.insert_many(items("d", 3))
    store.fail = {"commit": store.calls["commit"] + 1}
    with pytest.raises(StorageError, match="injected"):
        await sync(device, LocalPeer(server))
    assert await device.count() == 3 and device.position == 1
    report = await sync(device, LocalPeer(server))
    assert report.pulled.added == 20 and await content(device) == await content(server)
    await server.close()
    await device.close()


def test_sync_state_round_trips_and_refuses_nonsense():
    state = SyncState(4, 7, "2026-01-01T00:00:00Z")
    assert SyncState.from_dict(state.as_dict()) == state
    assert SyncState.from_dict(None) == SyncState()
    with pytest.raises(Exception, match="server_position"):
        SyncState.from_dict({"server_position": -1})


async def test_the_page_rules_say_what_moved_and_list_every_overwritten_version(clock):
    from pyapp.sync.page import page_sync

    server = await LocalIndex.create(f"memory://page-server-{uuid.uuid4().hex}", dims=DIMS)
    await server.insert_many(items("s", 10))
    device = await LocalIndex.create(f"memory://page-device-{uuid.uuid4().hex}", dims=DIMS)
    first = await page_sync(device, LocalPeer(server), "")
    assert first["message"] == "Synced: nothing to send; received 10 new, 0 updated, 0 deleted." and first["log"] == []
    clock.tick()
    await device.upsert("s4", vec(1), {"_doc": "note-4"}, "mine")
    clock.tick()
    await server.upsert("s4", vec(2), {"_doc": "note-4"}, "theirs")
    out = await page_sync(device, LocalPeer(server), json.dumps(first["state"]))
    assert out["conflicts"] == 1 and out["items"] == 10
    (entry,) = out["log"]
    assert entry["note"] == "note-4" and entry["overwritten_text"] == "mine" and entry["conflict"]
    assert entry["message"] == "edit on the server kept; edit on this device overwritten (last writer wins)"
    assert "1 version(s) overwritten (1 conflict(s))" in out["message"]
    await server.close()
    await device.close()


async def test_float32_arrays_are_taken_as_they_are_and_still_checked():
    """Bundle rows reach upsert_many as array('f') slices: copied at C speed, refused like lists when bad."""
    from array import array

    from pyapp.errors import DimensionMismatch, InvalidVector

    index = await LocalIndex.create(f"memory://f32-{uuid.uuid4().hex}", dims=3)
    await index.insert(array("f", [3.0, 0.0, 4.0]), id="ok")
    assert (await index.get("ok")).vector == pytest.approx([0.6, 0.0, 0.8])
    with pytest.raises(DimensionMismatch, match="vector 0 has 2 dimensions"):
        await index.insert(array("f", [1.0, 2.0]))
    with pytest.raises(InvalidVector, match="NaN"):
        await index.insert(array("f", [1.0, float("nan"), 2.0]))
    with pytest.raises(InvalidVector, match="zeros"):
        await index.insert(array("f", [0.0, 0.0, 0.0]))
    assert await index.count() == 1
    await index.close()
