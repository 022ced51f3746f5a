"""The .clinvec bundle (pyapp.bundle): exact round trips, and every defect refused with nothing changed.

Real parts: memory and file stores, the hashing embedder's recorded identity, real gzip bytes altered the
way a disk, a download or a person would alter them.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
from typing import Any

import pytest

from pyapp import ClinvecError, DuplicateId, LocalIndex
from pyapp import bundle as bundles
from pyapp.bundle.format import FRAME_HEAD, MAGIC, build_manifest
from pyapp.bundle.writer import FrameWriter
from pyapp.embed.hashing import HashingEmbedder

DIMS = 12


def _vector(rnd: random.Random) -> list[float]:
    return [rnd.uniform(-3, 3) for _ in range(DIMS)]  # not unit length: the index normalises them


async def _filled(location: str, n: int = 40, embedder: Any = None, seed: int = 7) -> LocalIndex:
    """An index with history: deletes leave seq gaps, an upsert keeps its place, odd metadata and texts."""
    rnd = random.Random(seed)
    index = await LocalIndex.create(
        location, dims=DIMS, indexed=["ward", "a.b"], embedder=embedder, bm25_k1=1.3, bm25_b=0.6
    )
    items = []
    for i in range(n):
        metadata = {"ward": ["ICU", "ED", "Onk"][i % 3], "a": {"b": i, "c": [1.5, -0.0, None, True]}}
        if i % 5 == 0:
            metadata["big"] = 10**30 + i  # beyond 64 bits: must come back exact
        text = None if i % 7 == 0 else f'Note {i}: Patient mit Dyspnoe \u00fc\u00df \U0001f489 line\nbreak "q"'
        items.append({"id": f"note-{i}", "vector": _vector(rnd), "metadata": metadata, "text": text})
    items[3]["text"] = ""
    await index.insert_many(items)
    await index.delete_many(["note-4", "note-9"])
    await index.upsert("note-2", _vector(rnd), {"ward": "ICU", "edited": True}, "edited text")
    await index.insert(_vector(rnd), {"ward": "ED"}, "late note", id="late")
    return index


async def _items(index: LocalIndex) -> list[tuple[str, dict, str | None, list[float]]]:
    out = []
    async for batch in index.iter_items():
        out.extend((it.id, it.metadata, it.text, it.vector) for it in batch)
    return out


async def _bundle(index: LocalIndex, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    await bundles.write(index, buf, **kwargs)
    return buf.getvalue()


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    raw = gzip.decompress(data)
    assert raw.startswith(MAGIC)
    pos, out = len(MAGIC), []
    while pos < len(raw):
        kind, length = FRAME_HEAD.unpack_from(raw, pos)
        pos += FRAME_HEAD.size
        out.append((kind, raw[pos : pos + length]))
        pos += length
    return out


async def test_round_trip_is_exact_into_a_file_store(tmp_path):
    source = await _filled("memory://rt-src", embedder=HashingEmbedder(dims=DIMS))
    data = await _bundle(source, batch_size=6)  # many frames
    target = await LocalIndex.create(str(tmp_path / "copy"), dims=DIMS)
    outcome = await bundles.restore(target, io.BytesIO(data))
    assert outcome == {"restored": await source.count(), "deleted": 0, "removed": 0}
    await target.close()
    reopened = await LocalIndex.open(str(tmp_path / "copy"))
    want, got = await _items(source), await _items(reopened)
    assert [w[0] for w in want] == [g[0] for g in got]  # order, with the upserted item in its old place
    assert got == want  # metadata (big ints, -0.0, nesting), texts ("" and None), vectors
    for (_, meta_w, _, vec_w), (_, meta_g, _, vec_g) in zip(want, got):
        assert struct.pack(f"<{DIMS}f", *vec_w) == struct.pack(f"<{DIMS}f", *vec_g)  # bit-exact
        assert json.dumps(meta_w) == json.dumps(meta_g)  # key order and -0.0 too
    await reopened.close()


async def test_create_from_bundle_keeps_configuration_and_model_identity():
    embedder = HashingEmbedder(dims=DIMS, seed=3)
    source = await _filled("memory://cfg-src", embedder=embedder)
    data = await _bundle(source)
    copy = await bundles.create_from_bundle("memory://cfg-copy", io.BytesIO(data))
    for key in ("dims", "metric", "indexed", "bm25", "embedder"):
        assert copy.manifest[key] == source.manifest[key], key
    assert copy.embedder is None  # the identity is recorded, the model is not loaded
    assert await _items(copy) == await _items(source)
    copy.use_embedder(embedder)  # the same model is accepted for queries...
    with pytest.raises(ClinvecError):
        copy.use_embedder(HashingEmbedder(dims=DIMS, seed=4))  # ...another is not
    manifest, batches = bundles.read(io.BytesIO(data))
    assert manifest["index"]["embedder"] == embedder.identity and manifest["items"] == await source.count()
    assert sum(len(b.rows) for b in batches) == await source.count()


async def test_frames_are_bounded_by_batch_size():
    source = await _filled("memory://frames", n=95)
    data = await _bundle(source, batch_size=10)
    frames = _frames(data)
    assert [chr(k) for k, _ in frames[:1]] == ["M"] and chr(frames[-1][0]) == "T"
    rows = [struct.unpack_from("<BII", p)[1] for k, p in frames if chr(k) == "R"]
    assert rows == [10] * 9 + [await source.count() - 90]
    seqs = [b.rows for b in bundles.read(io.BytesIO(data))[1]]
    flat = [r["seq"] for batch in seqs for r in batch]
    assert flat == list(range(len(flat)))


async def _assert_refused(data: bytes, match: str, index: LocalIndex | None = None, intact: bool = False) -> None:
    """Restoring ``data`` raises ``BundleError`` matching ``match`` and leaves the index as it was; unless the
    bundle is ``intact`` (it only does not fit the index), ``verify`` refuses it too."""
    target = index or await LocalIndex.create("memory://refuse-" + str(random.random()), dims=DIMS)
    before = await _items(target)
    with pytest.raises(bundles.BundleError, match=match):
        await bundles.restore(target, io.BytesIO(data), mode="upsert")
    assert await _items(target) == before  # nothing changed
    if not intact:
        with pytest.raises(bundles.BundleError, match=match):
            bundles.verify(io.BytesIO(data))


async def test_tampered_bundle_is_refused_by_its_sha256():
    source = await _filled("memory://tamper")
    raw = bytearray(gzip.decompress(await _bundle(source)))
    spot = raw.index(b"late note")
    raw[spot] = ord("L")  # one character of one note, re-gzipped: gzip's own CRC is valid again
    target = await _filled("memory://tamper-target", n=5, seed=1)
    await _assert_refused(gzip.compress(bytes(raw)), "sha256", target)


async def test_truncated_bundles_are_refused_and_change_nothing():
    source = await _filled("memory://trunc")
    data = await _bundle(source, batch_size=8)
    target = await _filled("memory://trunc-target", n=5, seed=2)
    for cut in (5, 20, len(data) // 3, len(data) // 2, len(data) - 60, len(data) - 9, len(data) - 1):
        await _assert_refused(data[:cut], "truncated|damaged", target)
    raw = gzip.decompress(data)
    # cut cleanly before the trailer frame and re-gzipped: gzip is valid, the bundle ends early
    await _assert_refused(gzip.compress(raw[: -(FRAME_HEAD.size + 48)]), "truncated", target)


async def test_damaged_compressed_bytes_are_refused():
    data = bytearray(await _bundle(await _filled("memory://damaged")))
    data[len(data) // 2] ^= 0xFF
    await _assert_refused(bytes(data), "damaged|truncated|sha256|malformed")


async def test_wrong_dims_and_other_models_are_refused():
    hashed = await _filled("memory://model-a", embedder=HashingEmbedder(dims=DIMS, seed=1))
    data = await _bundle(hashed)
    wider = await LocalIndex.create("memory://wider", dims=DIMS + 1)
    await _assert_refused(data, f"{DIMS}-d vectors; this index holds {DIMS + 1}-d", wider, intact=True)
    other = await _filled("memory://model-b", n=5, embedder=HashingEmbedder(dims=DIMS, seed=2))
    await _assert_refused(data, "would not compare", other, intact=True)
    plain = await _filled("memory://no-model", n=5)  # records no model
    await _assert_refused(await _bundle(plain), "does not record which model", other, intact=True)
    # an index that records no model takes any bundle of its dims
    assert (await bundles.restore(plain, io.BytesIO(data), mode="upsert"))["restored"] == await hashed.count()


def _crafted(manifest: dict[str, Any], rows: list[dict[str, Any]], vectors: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    out = FrameWriter(buf)
    out.manifest(manifest)
    if rows:
        encoded = [json.dumps(r).encode() for r in rows]
        out.rows_frame(encoded, vectors if vectors is not None else struct.pack(f"<{DIMS}f", *[1.0] * DIMS) * len(rows))
    out.finish()
    return buf.getvalue()


def _manifest(**changes: Any) -> dict[str, Any]:
    manifest = build_manifest({"dims": DIMS, "indexed": [], "embedder": None}, 1, "test")
    manifest.update(changes)
    return manifest


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"id,text\n1,hello\n", "not gzip"),
        (gzip.compress(b"PK\x03\x04 something else"), "wrong magic"),
        (_crafted(_manifest(format_version=2), []), "format version 2"),
        (_crafted(_manifest(format="other"), []), "clinvec-bundle"),
        (_crafted(_manifest(kind="weird"), []), "kind"),
        (  # an int8 manifest with a float32 rows frame
            _crafted(_manifest(vectors={"encoding": "int8"}), [{"id": "a", "metadata": {}, "text": None, "seq": 0}]),
            "encoding 0 is not the manifest's",
        ),
        (_crafted(_manifest(), [{"id": "a", "metadata": {}, "text": None, "seq": 0}] * 2, b"\0" * DIMS * 8), "twice"),
        (_crafted(_manifest(), [{"id": "a", "metadata": [], "text": None, "seq": 0}]), "metadata"),
        (_crafted(_manifest(), [{"id": "", "metadata": {}, "text": None, "seq": 0}]), "id"),
        (_crafted(_manifest(), [{"id": "a", "metadata": {}, "text": None, "seq": 0}], b"\0" * 7), "should be"),
        (_crafted(_manifest(), []) + gzip.compress(b"more"), "after its trailer|follows the trailer"),
    ],
)
async def test_malformed_bundles_are_refused(data, match):
    await _assert_refused(data, match)


async def test_an_int8_rows_frame_of_the_wrong_size_is_refused():
    buf = io.BytesIO()
    out = FrameWriter(buf)
    out.manifest(_manifest(vectors={"encoding": "int8"}))
    out.rows_frame([b'{"id":"a","metadata":{},"text":null,"seq":0}'], b"\0" * (4 + DIMS - 1), encoding=1)
    out.finish()
    await _assert_refused(buf.getvalue(), "should be")


async def test_restore_modes_insert_upsert_replace_and_plan():
    source = await _filled("memory://modes-src", n=10)
    data = await _bundle(source)
    target = await LocalIndex.create("memory://modes", dims=DIMS)
    await target.insert([1.0] * DIMS, {"mine": True}, "only here", id="mine")
    await target.insert([1.0] * DIMS, {"old": True}, "old version", id="note-1")
    before = await _items(target)
    with pytest.raises(DuplicateId):
        await bundles.restore(target, io.BytesIO(data))  # insert: an id the index holds is refused...
    assert await _items(target) == before  # ...and nothing of the bundle was applied
    plan = await bundles.plan(target, io.BytesIO(data))
    n = await source.count()
    assert plan["items"] == n and plan["overwrite"] == 1 and plan["new"] == n - 1 and plan["kept"] == 1
    await bundles.restore(target, io.BytesIO(data), mode="upsert")
    got = {i[0]: i for i in await _items(target)}
    assert len(got) == n + 1 and got["mine"][2] == "only here"
    assert got["note-1"] == next(i for i in await _items(source) if i[0] == "note-1")  # the bundle's version won
    outcome = await bundles.restore(target, io.BytesIO(data), mode="replace")
    assert outcome["removed"] == n + 1 and await _items(target) == await _items(source)
    with pytest.raises(bundles.BundleError, match="mode"):
        await bundles.restore(target, io.BytesIO(data), mode="merge-ish")


async def test_reserved_deletes_frame_is_applied():
    """Delta bundles (server sync) carry tombstones; version 1 parses and applies them."""
    target = await _filled("memory://deltas", n=6)
    buf = io.BytesIO()
    out = FrameWriter(buf)
    out.manifest(_manifest(kind="delta", since=3))
    out.deletes_frame([{"id": "note-1", "seq": 9}, {"id": "absent", "seq": 10}])
    out.finish()
    outcome = await bundles.restore(target, io.BytesIO(buf.getvalue()), mode="upsert")
    assert outcome["deleted"] == 1 and await target.get("note-1") is None and await target.count() == 5


async def test_progress_is_reported_on_write_and_restore():
    source = await _filled("memory://progress", n=30)
    n = await source.count()
    seen: list[tuple[int, int]] = []
    data = await _bundle(source, batch_size=8, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, n) and seen[-1] == (n, n) and len(seen) >= 4
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    restored: list[tuple[int, int]] = []
    target = await LocalIndex.create("memory://progress-copy", dims=DIMS)
    await bundles.restore(target, io.BytesIO(data), progress=lambda done, total: restored.append((done, total)))
    assert restored[0] == (0, n) and restored[-1] == (n, n)
