"""FileStore and its codec: durability, damage detection, locking and read-only semantics at the Store level."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import crash_child as cc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp.errors import (
    CorruptIndex,
    IndexClosed,
    IndexExists,
    IndexLocked,
    IndexNotFound,
    ReadOnlyIndex,
    StorageError,
    StorageFull,
)
from pyapp.stores import file as file_mod
from pyapp.stores import store_for
from pyapp.stores.base import Delete, Op, Put, Row, Snapshot
from pyapp.stores.codec import commit_size, decode_commit, decode_rows, encode_commit, encode_rows
from pyapp.stores.file import LOCK, POINTER, FileStore, frame, generation_files, parse_log

DIMS = 4
MANIFEST = {"dims": DIMS, "metric": "cosine", "indexed": ["ward"], "nested": {"a": [1, 2.5, None, "é"]}}


def vec(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def put(i: int, text: str | None = "note", **metadata: Any) -> Put:
    return Put(Row(f"id{i}", {"i": i, **metadata}, text, i), vec(float(i), 1.0, 2.0, 3.0))


def fold(snap: Snapshot) -> dict[str, tuple[Row, bytes]]:
    """The live state a store hands back: snapshot rows, then every logged op in order."""
    width = DIMS * 4
    state = {row.id: (row, bytes(snap.vectors[i * width : (i + 1) * width])) for i, row in enumerate(snap.rows)}
    for ops in snap.log:
        for op in ops:
            if isinstance(op, Put):
                state[op.row.id] = (op.row, op.vector)
            else:
                state.pop(op.id, None)
    return state


@pytest.fixture
def folder(tmp_path: Path) -> str:
    return str(tmp_path / "index")


@pytest.fixture
def writer(folder: str) -> Iterator[FileStore]:
    store = FileStore(folder)
    store.create_sync(MANIFEST)
    store.open_sync()
    yield store
    store.close_sync()


def log_path(store: FileStore) -> str:
    """The current log file of an open store."""
    return os.path.join(store.location, generation_files(store.info()["generation"])[2])


# ----- codec

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(st.characters(codec=None)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
texts = st.none() | st.text(st.characters(exclude_categories=()))  # lone surrogates too
vectors = st.integers(0, 6).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
rows = st.builds(
    Row,
    st.text(min_size=1, max_size=20),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    texts,
    st.integers(0, 2**62),
)
ops_lists = st.lists(st.builds(Put, rows, vectors) | st.builds(Delete, st.text(min_size=1)), max_size=6)


@settings(max_examples=50, deadline=None)
@given(ops_lists)
def test_commit_codec_round_trips_exactly(ops: list[Op]) -> None:
    assert decode_commit(encode_commit(ops)) == ops


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, max_size=8))
def test_rows_written_with_and_without_orjson_read_back_identically(rs: list[Row]) -> None:
    """orjson (when installed) writes the JSON fast; the stdlib writes what it refuses or would alter
    (inf/NaN become null in orjson, lone surrogates and > 64-bit integers raise). Both read back exactly."""
    from pyapp.stores import codec

    fast = encode_rows(rs)
    saved, codec._orjson = codec._orjson, None
    try:
        plain = encode_rows(rs)
        assert decode_rows(fast) == rs  # read without orjson, as in Pyodide
    finally:
        codec._orjson = saved
    assert decode_rows(plain) == rs


def test_non_finite_and_huge_values_survive_the_fast_encoder() -> None:
    pytest.importorskip("orjson")
    tricky = [
        Row("a", {"x": float("inf")}, None, 1),
        Row("b", {"nested": [{"y": float("-inf")}]}, "t", 2),
        Row("c", {}, "\ud800 lone", 3),
        Row("d", {"big": 2**70, "neg": -(2**65)}, None, 4),
        Row("e", {"é": "ü"}, "日本", 5),
    ]
    for some in ([row] for row in tricky):  # one at a time: one refused value must not hide another
        assert decode_rows(encode_rows(some)) == some
        assert decode_commit(encode_commit([Put(r, b"") for r in some])) == [Put(r, b"") for r in some]
    assert decode_rows(encode_rows(tricky)) == tricky


@settings(max_examples=50, deadline=None)
@given(st.lists(rows, max_size=8))
def test_rows_codec_round_trips_exactly(rs: list[Row]) -> None:
    assert decode_rows(encode_rows(rs)) == rs


def test_codec_keeps_float_edge_cases_and_big_ints() -> None:
    metadata = {"z": -0.0, "tiny": 5e-324, "big": 2**70, "inf": float("inf"), "u": "\ud800 ✓ \U0001f600"}
    [got] = decode_commit(encode_commit([Put(Row("x", metadata, "\udfff", 0), vec(1.5))]))
    assert isinstance(got, Put)
    assert got.row.metadata == metadata and str(got.row.metadata["z"]) == "-0.0"
    assert got.row.text == "\udfff" and got.vector == vec(1.5)


@settings(max_examples=50, deadline=None)
@given(ops_lists.filter(bool), st.data())
def test_commit_codec_rejects_any_truncation(ops: list[Op], data: st.DataObject) -> None:
    blob = encode_commit(ops)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(CorruptIndex):
        decode_commit(blob[:cut])


@settings(max_examples=50, deadline=None)
@given(ops_lists, st.data())
def test_commit_size_reads_the_whole_length_from_a_prefix_with_the_header(ops: list[Op], data: st.DataObject) -> None:
    blob = encode_commit(ops)
    cut = data.draw(st.integers(0, len(blob)))
    size = commit_size(blob[:cut])
    assert size is None or size == len(blob)
    assert commit_size(blob + b"more") == len(blob)


def test_codec_rejects_garbage() -> None:
    for blob in (b"", b"\x01", b"\x02" + bytes(8), b"\x01" + struct.pack("<Q", 3) + b"{x}", encode_commit([]) + b"!"):
        with pytest.raises(CorruptIndex):
            decode_commit(blob)
    for blob in (
        b"",
        b"[]",
        b'{"version": 1}',
        b'{"version": 9, "id": [], "metadata": [], "text": [], "seq": []}',
        b'{"version": 1, "id": ["a"], "metadata": [], "text": [], "seq": []}',
    ):
        with pytest.raises(CorruptIndex):
            decode_rows(blob)


# ----- create / open / exists


async def test_create_then_open_gives_an_empty_index(folder: str) -> None:
    store = store_for(folder)
    assert isinstance(store, FileStore)
    assert not await store.exists()
    await store.create(MANIFEST)
    assert await store.exists()
    snap = await store.open()
    assert snap.manifest == MANIFEST and snap.rows == [] and len(snap.vectors) == 0 and snap.log == []
    assert store.log_bytes == 0 and store.snapshot_bytes > 0
    await store.close()


async def test_create_makes_missing_folders_and_accepts_an_empty_or_foreign_one(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    await FileStore(str(deep)).create(MANIFEST)
    assert (deep / POINTER).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    await FileStore(str(empty)).create(MANIFEST)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    await FileStore(str(foreign)).create(MANIFEST)
    assert (await FileStore(str(foreign)).open(read_only=True)).manifest == MANIFEST


async def test_create_on_an_existing_index_raises(folder: str) -> None:
    await FileStore(folder).create(MANIFEST)
    with pytest.raises(IndexExists):
        await FileStore(folder).create({"dims": 9})
    assert (await FileStore(folder).open(read_only=True)).manifest == MANIFEST


@pytest.mark.parametrize("read_only", [False, True])
async def test_open_without_an_index_raises_not_found(tmp_path: Path, read_only: bool) -> None:
    with pytest.raises(IndexNotFound):
        await FileStore(str(tmp_path / "missing")).open(read_only=read_only)
    (tmp_path / "plain").mkdir()
    with pytest.raises(IndexNotFound):
        await FileStore(str(tmp_path / "plain")).open(read_only=read_only)
    assert os.listdir(tmp_path / "plain") == []  # a failed open leaves nothing behind
    (tmp_path / "file").write_text("x")
    with pytest.raises(IndexNotFound):
        await FileStore(str(tmp_path / "file")).open(read_only=read_only)


# ----- commit, reopen, compaction


async def test_commits_come_back_in_order_after_reopen(writer: FileStore) -> None:
    commits: list[list[Op]] = [[put(1), put(2, text=None, ward="icu")], [Delete("id1"), put(3, text="é 病")], [put(2)]]
    sizes = []
    for ops in commits:
        await writer.commit(ops)
        sizes.append(writer.log_bytes)
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    await writer.commit([])  # nothing to write, nothing written
    assert writer.log_bytes == sizes[-1] == os.path.getsize(log_path(writer))
    await writer.close()
    again = FileStore(writer.location)
    snap = await again.open()
    assert snap.log == commits
    assert again.log_bytes == sizes[-1]
    assert set(fold(snap)) == {"id2", "id3"}
    await again.close()


async def test_write_snapshot_replaces_snapshot_and_log(writer: FileStore) -> None:
    await writer.commit([put(1), put(2)])
    old = set(os.listdir(writer.location))
    new_rows = [put(2).row, put(5).row]
    vectors = put(2).vector + put(5).vector
    manifest = dict(MANIFEST, compacted=True)
    await writer.write_snapshot(manifest, new_rows, vectors)
    assert writer.log_bytes == 0
    assert writer.snapshot_bytes == len(vectors) + os.path.getsize(
        os.path.join(writer.location, generation_files(2)[1])
    )
    now = set(os.listdir(writer.location))
    assert now == {POINTER, LOCK, *generation_files(2)}
    assert not (old - {POINTER, LOCK}) & now  # the old generation is gone
    await writer.commit([Delete("id5"), put(7)])
    await writer.close()
    snap = await FileStore(writer.location).open(read_only=True)
    assert snap.manifest == manifest and snap.rows == new_rows and bytes(snap.vectors) == vectors
    assert snap.log == [[Delete("id5"), put(7)]]
    assert set(fold(snap)) == {"id2", "id7"}


async def test_vectors_come_back_as_a_buffer_numpy_can_use(writer: FileStore) -> None:
    np = pytest.importorskip("numpy")
    await writer.write_snapshot(MANIFEST, [put(1).row, put(2).row], put(1).vector + put(2).vector)
    await writer.close()
    snap = await FileStore(writer.location).open()
    arr = np.frombuffer(snap.vectors, dtype="<f4").reshape(2, DIMS)
    assert arr[1].tolist() == [2.0, 1.0, 2.0, 3.0]
    arr[0, 0] = 9.0  # a private mapping: writable, and the file is not touched
    again = await FileStore(writer.location).open(read_only=True)
    assert bytes(again.vectors) == put(1).vector + put(2).vector


async def test_info_reports_path_generation_and_bytes_on_disk(writer: FileStore) -> None:
    await writer.commit([put(1)])
    info = writer.info()
    files = [os.path.join(writer.location, n) for n in os.listdir(writer.location)]
    assert info["bytes_on_disk"] == sum(os.path.getsize(f) for f in files)
    assert info["path"] == os.path.abspath(writer.location)
    assert info["generation"] == 1 and info["log_bytes"] == writer.log_bytes > 0
    assert info["read_only"] is False


# ----- torn tails and damage


def _two_commits(store: FileStore) -> tuple[str, int, int]:
    store.commit_sync([put(1)])
    first = store.log_bytes
    store.commit_sync([put(2), Delete("id1")])
    path = log_path(store)
    store.close_sync()
    return path, first, os.path.getsize(path)


@pytest.mark.parametrize("cut", [1, 5, 15, 16, 17, -1])
def test_a_torn_last_record_is_dropped_and_cut_only_by_a_writer(writer: FileStore, cut: int) -> None:
    path, first, full = _two_commits(writer)
    keep = first + cut if cut > 0 else full + cut
    os.truncate(path, keep)
    reader = FileStore(writer.location).open_sync(read_only=True)
    assert reader.log == [[put(1)]]
    assert os.path.getsize(path) == keep  # readers never modify
    store = FileStore(writer.location)
    assert store.open_sync().log == [[put(1)]]
    assert os.path.getsize(path) == first == store.log_bytes
    store.commit_sync([put(3)])  # appends cleanly after the cut
    store.close_sync()
    assert FileStore(writer.location).open_sync().log == [[put(1)], [put(3)]]


def test_zeros_after_the_last_record_count_as_a_torn_tail(writer: FileStore) -> None:
    path, first, full = _two_commits(writer)
    with open(path, "ab") as f:
        f.write(bytes(4096))
    store = FileStore(writer.location)
    assert len(store.open_sync().log) == 2
    assert os.path.getsize(path) == full
    store.close_sync()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_bad_checksum_on_the_last_record_is_corruption_not_a_torn_tail(writer: FileStore, read_only: bool) -> None:
    """Regression (issue 8 #12): a complete last record whose bytes changed was dropped and cut away."""
    path, first, full = _two_commits(writer)
    with open(path, "r+b") as f:
        f.seek(full - 3)
        f.write(b"\xff\xfe\xfd")
    with pytest.raises(CorruptIndex, match=f"record at byte {first} fails its checksum"):
        FileStore(writer.location).open_sync(read_only=read_only)
    assert os.path.getsize(path) == full  # nothing was cut away


@pytest.mark.parametrize("read_only", [False, True])
def test_a_damaged_length_in_the_last_record_is_corruption(writer: FileStore, read_only: bool) -> None:
    """The length field points past the end of the file, but the payload after it is whole: not a torn append."""
    path, first, full = _two_commits(writer)
    with open(path, "r+b") as f:
        f.seek(first + 4 + 5)  # a high byte of the last record's length
        f.write(b"\x01")
    with pytest.raises(CorruptIndex, match="length field points past the end"):
        FileStore(writer.location).open_sync(read_only=read_only)
    assert os.path.getsize(path) == full


@pytest.mark.parametrize("tail", [b"XY", b"CVWX", b"\x00\x00\x01"])
def test_bytes_that_cannot_begin_a_record_are_corruption(writer: FileStore, tail: bytes) -> None:
    path, first, full = _two_commits(writer)
    with open(path, "ab") as f:
        f.write(tail)
    with pytest.raises(CorruptIndex, match="do not begin a record"):
        FileStore(writer.location).open_sync()
    assert os.path.getsize(path) == full + len(tail)


def test_a_torn_header_followed_by_a_payload_no_commit_begins_with_is_corruption(writer: FileStore) -> None:
    path, first, full = _two_commits(writer)
    with open(path, "ab") as f:
        f.write(frame(encode_commit([put(3)]))[:16] + b"\x07garbage")  # version 7: never written by clinvec
    with pytest.raises(CorruptIndex, match="unknown version 7"):
        FileStore(writer.location).open_sync()


def test_a_header_followed_only_by_zeros_is_a_torn_tail(writer: FileStore) -> None:
    """A file system may extend the file for an append whose data never landed: zeros to the end are torn."""
    path, first, full = _two_commits(writer)
    with open(path, "ab") as f:
        f.write(frame(encode_commit([put(3)]))[:16] + bytes(40))
    store = FileStore(writer.location)
    assert len(store.open_sync().log) == 2
    assert os.path.getsize(path) == full
    store.close_sync()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=3), min_size=2, max_size=5), st.data())
def test_bytes_cut_out_of_the_middle_of_the_log_are_corruption(ids: list[list[int]], data: st.DataObject) -> None:
    """Issue 8 #12: any cut that is not whole records, followed by an intact record, is ``CorruptIndex``."""
    with tempfile.TemporaryDirectory() as tmp:
        store = FileStore(tmp)
        store.create_sync(MANIFEST)
        store.open_sync()
        ends = [0]
        for commit_ids in ids:
            store.commit_sync([put(i) for i in commit_ids])
            ends.append(store.log_bytes)
        path = log_path(store)
        store.close_sync()
        last_start = ends[-2]
        b = data.draw(st.integers(1, last_start))
        a = data.draw(st.integers(0, b - 1))
        if a in ends and b in ends:
            return  # whole records removed at their boundaries: undetectable without sequence numbers
        blob = Path(path).read_bytes()
        Path(path).write_bytes(blob[:a] + blob[b:])
        for read_only in (True, False):
            with pytest.raises(CorruptIndex):
                FileStore(tmp).open_sync(read_only=read_only)
        assert os.path.getsize(path) == len(blob) - (b - a)


def test_snapshots_checksummed_with_sha256_still_open_and_verify(writer: FileStore) -> None:
    """Generations written before the switch to crc32 carry sha256: they open, and damage is still caught."""
    import json

    writer.write_snapshot_sync(MANIFEST, [put(1).row, put(2).row], put(1).vector + put(2).vector)
    writer.close_sync()
    pointer_path = os.path.join(writer.location, file_mod.POINTER)
    pointer = json.loads(Path(pointer_path).read_text())
    pointer.pop("checksum")
    for key in ("vectors", "rows"):
        info = pointer[key]
        assert "crc32" in info and "sha256" not in info
        info.pop("crc32")
        info["sha256"] = hashlib.sha256(Path(writer.location, info["file"]).read_bytes()).hexdigest()
    body = dict(pointer, checksum=hashlib.sha256(file_mod._canonical(pointer)).hexdigest())
    Path(pointer_path).write_text(json.dumps(body))
    snap = FileStore(writer.location).open_sync(read_only=True)
    assert [row.id for row in snap.rows] == [put(1).row.id, put(2).row.id]
    vectors = os.path.join(writer.location, pointer["vectors"]["file"])
    with open(vectors, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0x10]))
    with pytest.raises(CorruptIndex, match="fails its sha256 checksum"):
        FileStore(writer.location).open_sync(read_only=True)


@pytest.mark.parametrize("target", ["vectors", "rows"])
@pytest.mark.parametrize("read_only", [False, True])
def test_a_damaged_snapshot_file_fails_its_checksum(writer: FileStore, target: str, read_only: bool) -> None:
    writer.write_snapshot_sync(MANIFEST, [put(1).row, put(2).row], put(1).vector + put(2).vector)
    writer.close_sync()
    name = generation_files(2)[0 if target == "vectors" else 1]
    path = os.path.join(writer.location, name)
    with open(path, "r+b") as f:
        f.seek(3)
        byte = f.read(1)
        f.seek(3)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(CorruptIndex, match=f"{name} fails its crc32 checksum"):
        FileStore(writer.location).open_sync(read_only=read_only)
    os.truncate(path, 5)
    with pytest.raises(CorruptIndex, match=f"{name} holds 5 bytes"):
        FileStore(writer.location).open_sync(read_only=read_only)


@pytest.mark.parametrize("read_only", [False, True])
def test_a_missing_snapshot_file_is_corruption(writer: FileStore, read_only: bool) -> None:
    writer.close_sync()
    os.unlink(os.path.join(writer.location, generation_files(1)[0]))
    with pytest.raises(CorruptIndex, match="missing"):
        FileStore(writer.location).open_sync(read_only=read_only)


@pytest.mark.parametrize("damage", ["edit", "garbage", "names"])
def test_a_damaged_manifest_is_corruption(writer: FileStore, damage: str) -> None:
    writer.close_sync()
    path = os.path.join(writer.location, POINTER)
    text = Path(path).read_text()
    if damage == "edit":
        text = text.replace('"cosine"', '"dot"')
    elif damage == "garbage":
        text = text[: len(text) // 2]
    else:
        text = text.replace("snapshot-000001.rows", "../../etc/passwd")
    Path(path).write_text(text)
    with pytest.raises(CorruptIndex):
        FileStore(writer.location).open_sync(read_only=True)
    with pytest.raises(CorruptIndex):
        FileStore(writer.location).open_sync()


def test_leftovers_of_a_crashed_compaction_are_removed_by_the_next_writer_only(writer: FileStore) -> None:
    writer.commit_sync([put(1)])
    writer.close_sync()
    stale = [*generation_files(2), *generation_files(9), "manifest.json.tmp"]
    for name in stale:
        Path(writer.location, name).write_bytes(b"half-written")
    Path(writer.location, "notes.txt").write_text("not ours")
    assert FileStore(writer.location).open_sync(read_only=True).log == [[put(1)]]
    assert all(Path(writer.location, n).exists() for n in stale)
    store = FileStore(writer.location)
    assert store.open_sync().log == [[put(1)]]
    store.close_sync()
    assert sorted(os.listdir(writer.location)) == sorted([POINTER, LOCK, "notes.txt", *generation_files(1)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=4), min_size=1, max_size=5), st.data())
def test_a_log_cut_anywhere_opens_as_exactly_the_whole_commits_before_the_cut(
    commits_ids: list[list[int]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = FileStore(tmp)
        store.create_sync(MANIFEST)
        store.open_sync()
        ends = []
        commits = [[put(i) for i in ids] for ids in commits_ids]
        for ops in commits:
            store.commit_sync(ops)
            ends.append(store.log_bytes)
        path = log_path(store)
        store.close_sync()
        cut = data.draw(st.integers(0, ends[-1]))
        os.truncate(path, cut)
        whole = sum(1 for end in ends if end <= cut)
        assert FileStore(tmp).open_sync(read_only=True).log == commits[:whole]
        assert FileStore(tmp).open_sync().log == commits[:whole]
        assert os.path.getsize(path) == ([0, *ends][whole])


def test_parse_log_reads_frames_written_by_frame() -> None:
    records = [encode_commit([put(1)]), encode_commit([Delete("x")])]
    blob = b"".join(frame(r) for r in records)
    commits, intact = parse_log(blob + b"CVWL\x00")
    assert commits == [[put(1)], [Delete("x")]] and intact == len(blob)


# ----- full disk


def test_enospc_while_appending_raises_storage_full_and_leaves_the_log_as_it_was(
    writer: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.commit_sync([put(1)])
    before = writer.log_bytes
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if len(data) > 8:
            real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_mod.os, "write", half_then_full)
    with pytest.raises(StorageFull):
        writer.commit_sync([put(2), put(3)])
    monkeypatch.undo()
    assert writer.log_bytes == before == os.path.getsize(log_path(writer))
    writer.commit_sync([put(4)])  # the store is still usable once there is room
    writer.close_sync()
    assert FileStore(writer.location).open_sync().log == [[put(1)], [put(4)]]


def test_enospc_from_fsync_is_storage_full_too(writer: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_mod.os, "fsync", full)
    with pytest.raises(StorageFull):
        writer.commit_sync([put(1)])
    monkeypatch.undo()
    assert os.path.getsize(log_path(writer)) == 0


def test_enospc_during_compaction_keeps_the_old_generation(writer: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    writer.commit_sync([put(1)])
    listing = sorted(os.listdir(writer.location))
    real_write = os.write
    calls = 0

    def fail_second(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(file_mod.os, "write", fail_second)
    with pytest.raises(StorageFull):
        writer.write_snapshot_sync(MANIFEST, [put(1).row], put(1).vector)
    monkeypatch.undo()
    assert sorted(os.listdir(writer.location)) == listing  # no half generation left behind
    writer.commit_sync([put(2)])
    writer.close_sync()
    assert FileStore(writer.location).open_sync().log == [[put(1)], [put(2)]]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[str]:
    """A 256 KiB tmpfs: a real ENOSPC. Needs root and mount; skipped elsewhere."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk(tiny_disk: str) -> None:
    store = FileStore(os.path.join(tiny_disk, "idx"))
    store.create_sync(MANIFEST)
    store.open_sync()
    big: list[Op] = [Put(Row(f"b{i}", {"pad": "x" * 3000}, None, i), vec(1.0, 2.0, 3.0, 4.0)) for i in range(10)]
    acked: list[list[Op]] = []
    with pytest.raises(StorageFull):
        for _ in range(200):
            store.commit_sync(big)
            acked.append(big)
    assert 0 < len(acked) < 200
    assert os.path.getsize(log_path(store)) == store.log_bytes
    with pytest.raises(StorageFull):  # no room for a second generation either
        puts = [op for op in big if isinstance(op, Put)]
        store.write_snapshot_sync(MANIFEST, [op.row for op in puts], b"".join(op.vector for op in puts) * 40)
    store.close_sync()
    again = FileStore(store.location)
    assert again.open_sync().log == acked
    again.close_sync()


# ----- read-only and closed stores


async def test_a_reader_needs_no_lock_cannot_write_and_sees_the_last_commit(writer: FileStore) -> None:
    await writer.commit([put(1)])
    reader = FileStore(writer.location)
    snap = await reader.open(read_only=True)
    assert snap.log == [[put(1)]] and reader.read_only is True
    with pytest.raises(ReadOnlyIndex):
        await reader.commit([put(2)])
    with pytest.raises(ReadOnlyIndex):
        await reader.write_snapshot(MANIFEST, [], b"")
    await writer.commit([put(2)])
    assert (await reader.open(read_only=True)).log == [[put(1)], [put(2)]]
    await writer.close()
    other = FileStore(writer.location)
    await other.open()  # the reader, still open, does not block a writer
    await other.close()
    await reader.close()


async def test_writes_on_a_closed_store_raise_index_closed(folder: str) -> None:
    store = FileStore(folder)
    await store.create(MANIFEST)
    with pytest.raises(IndexClosed):
        await store.commit([put(1)])
    await store.open()
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(IndexClosed):
        await store.write_snapshot(MANIFEST, [], b"")


def test_a_reader_survives_a_compaction_between_manifest_and_files(writer: FileStore) -> None:
    writer.commit_sync([put(1)])
    reader = FileStore(writer.location)
    stale = reader._read_pointer()
    writer.write_snapshot_sync(MANIFEST, [put(1).row, put(2).row], put(1).vector + put(2).vector)
    real = reader._read_pointer
    served = []

    def pointer_then_real() -> dict[str, Any]:
        served.append(1)
        return stale if len(served) == 1 else real()

    reader._read_pointer = pointer_then_real  # type: ignore[method-assign]
    snap = reader.open_sync(read_only=True)
    assert len(served) >= 3  # stale pointer, re-check, fresh pointer
    assert [r.id for r in snap.rows] == ["id1", "id2"] and snap.log == []


# ----- locking within one process (cross-process: test_lock.py)


async def test_one_writer_per_index_even_within_a_process(writer: FileStore) -> None:
    second = FileStore(writer.location)
    started = time.perf_counter()
    with pytest.raises(IndexLocked):
        await second.open()
    assert time.perf_counter() - started < 0.5
    with pytest.raises(IndexLocked):
        await second.drop()
    await writer.close()
    await second.open()
    with pytest.raises(IndexLocked):
        await FileStore(writer.location).open()
    await second.close()


# ----- drop


async def test_drop_removes_the_index_and_the_folder_when_empty(writer: FileStore, folder: str) -> None:
    await writer.commit([put(1)])
    await writer.drop()  # the holder may drop
    assert not os.path.exists(folder)
    assert not await writer.exists()
    await FileStore(folder).drop()  # absent: no error
    await FileStore(folder).create(MANIFEST)  # and the name is free again
    again = FileStore(folder)
    assert (await again.open()).log == []
    await again.close()


async def test_drop_keeps_foreign_files(folder: str) -> None:
    os.makedirs(folder)
    Path(folder, "readme.txt").write_text("mine")
    store = FileStore(folder)
    await store.create(MANIFEST)
    await store.drop()
    assert os.listdir(folder) == ["readme.txt"]


# ----- cost of a commit and of an open


def test_a_commit_is_one_append_and_one_fsync(writer: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 5000
    rows_ = [Row(f"r{i}", {"i": i}, "text", i) for i in range(n)]
    writer.write_snapshot_sync(MANIFEST, rows_, vec(1.0, 2.0, 3.0, 4.0) * n)
    calls: dict[str, int] = {"fsync": 0, "write": 0, "written": 0, "read": 0, "open": 0}
    real_write, real_fsync = os.write, os.fsync

    def write(fd: int, data: Any) -> int:
        calls["write"] += 1
        calls["written"] += len(data)
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(file_mod.os, "write", write)
    monkeypatch.setattr(file_mod.os, "fsync", fsync)
    monkeypatch.setattr(file_mod.os, "read", lambda *a: calls.__setitem__("read", 1))
    monkeypatch.setattr(file_mod.os, "open", lambda *a, **k: calls.__setitem__("open", 1))
    op = put(n + 1)
    writer.commit_sync([op])
    assert calls == {"fsync": 1, "write": 1, "written": len(frame(encode_commit([op]))), "read": 0, "open": 0}


@pytest.mark.slow
def test_open_and_commit_speed_at_50k_x_768(tmp_path: Path) -> None:
    """Open costs about one hash pass over the vectors plus one JSON parse of the rows; a commit one fsync.

    Wall time on a shared CI box swings 5x, so the bound is relative to that unavoidable work measured
    right here (0.12 s absolute was measured on a quiet core; the issue asks for <= 0.3 s).
    """
    n, dims = 50_000, 768
    store = FileStore(str(tmp_path / "big"))
    store.create_sync({"dims": dims})
    store.open_sync()
    rows_ = [
        Row(uuid.UUID(int=i).hex, {"ward": ["icu", "ed"][i % 2], "age": i % 90}, f"note {i} text", i) for i in range(n)
    ]
    vectors_ = os.urandom(n * dims * 4)
    store.write_snapshot_sync({"dims": dims}, rows_, vectors_)
    times = []
    for i in range(5):
        started = time.perf_counter()
        store.commit_sync([Put(Row(f"new{i}", {}, None, n + i), os.urandom(dims * 4))])
        times.append(time.perf_counter() - started)
    store.close_sync()
    rows_blob = Path(store.location, generation_files(2)[1]).read_bytes()
    opens, floors = [], []
    for _ in range(3):
        started = time.perf_counter()
        hashlib.sha256(vectors_).digest()
        decode_rows(rows_blob)
        floors.append(time.perf_counter() - started)
        started = time.perf_counter()
        snap = FileStore(store.location).open_sync(read_only=True)
        opens.append(time.perf_counter() - started)
        assert len(snap.rows) == n and len(snap.vectors) == n * dims * 4 and len(snap.log) == 5
        del snap
    print(
        f"\nopen 50k x 768: best {min(opens):.3f} s (hash + parse alone {min(floors):.3f} s); "
        f"commit median {sorted(times)[2] * 1000:.2f} ms"
    )
    assert min(opens) < 1.5 * min(floors) + 0.05
    assert sorted(times)[2] < 0.05


# ----- a store operation cut short at every single step (as abrupt as a kill)


def _cut_until_done(folder: str, action: str, payload: Any, check: Any) -> int:
    for cut_at in range(1, 200):
        proc, conn = cc.start(cc.cut_worker, folder, action, cut_at, payload)
        msgs = cc.messages(conn)
        proc.join(30)
        assert proc.exitcode == 0, msgs
        check(cut_at)
        if msgs and msgs[-1].startswith("done"):
            return cut_at
    raise AssertionError("the operation never finished")


def test_create_cut_at_any_step_leaves_no_index_or_a_whole_one(tmp_path: Path) -> None:
    folder = str(tmp_path / "idx")

    def check(cut_at: int) -> None:
        store = FileStore(folder)
        if not store.exists_sync():
            store.create_sync(MANIFEST)  # whatever the cut left behind does not block a new create
        snap = store.open_sync()
        assert snap.manifest == MANIFEST and snap.rows == [] and snap.log == [], cut_at
        store.close_sync()
        shutil.rmtree(folder, ignore_errors=True)

    finished_at = _cut_until_done(folder, "create", MANIFEST, check)
    assert finished_at > 5


def test_commit_and_compaction_cut_at_any_step_leave_the_old_or_the_new_state(tmp_path: Path) -> None:
    base = str(tmp_path / "base")
    store = FileStore(base)
    store.create_sync(MANIFEST)
    store.open_sync()
    store.commit_sync([put(1), put(2)])
    store.write_snapshot_sync(MANIFEST, [put(1).row, put(2).row], put(1).vector + put(2).vector)
    store.commit_sync([Delete("id1"), put(3)])
    store.close_sync()
    old_state = fold(FileStore(base).open_sync(read_only=True))
    folder = str(tmp_path / "idx")

    def run(action: str, payload: Any, new_state: dict[str, tuple[Row, bytes]], new_manifest: dict[str, Any]) -> int:
        def check(cut_at: int) -> None:
            seen = []
            for read_only in (True, False):  # the reader sees it as found; the writer then repairs it
                store = FileStore(folder)
                snap = store.open_sync(read_only=read_only)
                store.close_sync()
                state = fold(snap)
                assert state in (old_state, new_state), f"cut at call {cut_at}: {sorted(state)}"
                is_new = state == new_state
                assert (snap.manifest == new_manifest) == is_new or new_manifest == MANIFEST
                seen.append(is_new)
            assert seen[0] == seen[1], f"cut at call {cut_at}: reader and writer disagree"
            assert len(os.listdir(folder)) == 5  # manifest, lock, one generation: leftovers were removed
            shutil.rmtree(folder)
            shutil.copytree(base, folder)

        shutil.copytree(base, folder)
        try:
            return _cut_until_done(folder, action, payload, check)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    new_commit = dict(old_state)
    new_commit["id9"] = (put(9).row, put(9).vector)
    assert run("commit", [put(9)], new_commit, MANIFEST) >= 2
    compacted = {"id7": (put(7).row, put(7).vector), **old_state}
    manifest = dict(MANIFEST, generation="new")
    rows_ = [r for r, _ in compacted.values()]
    payload = (manifest, rows_, b"".join(v for _, v in compacted.values()))
    assert run("compact", payload, compacted, manifest) > 10


# ----- create never deletes data it did not write (issue 8 #16)


def test_create_refuses_a_folder_whose_manifest_is_lost_and_changes_nothing(writer: FileStore) -> None:
    """Regression: ``create`` on a folder holding index files but no manifest.json deleted them."""
    writer.commit_sync([put(1)])
    writer.write_snapshot_sync(MANIFEST, [put(1).row], put(1).vector)
    writer.commit_sync([put(2)])
    writer.close_sync()
    os.unlink(os.path.join(writer.location, POINTER))
    before = {name: Path(writer.location, name).read_bytes() for name in os.listdir(writer.location)}
    with pytest.raises(CorruptIndex, match=r"no manifest\.json .*snapshot-000002\.rows.*manifest is lost"):
        FileStore(writer.location).create_sync(MANIFEST)
    assert {name: Path(writer.location, name).read_bytes() for name in os.listdir(writer.location)} == before


@pytest.mark.parametrize("which", [0, 1, 2])
def test_create_refuses_when_any_one_generation_file_holds_data(folder: str, which: int) -> None:
    os.makedirs(folder)
    name = generation_files(4)[which]
    Path(folder, name).write_bytes(b"x" if which != 1 else encode_rows([put(1).row]))
    with pytest.raises(CorruptIndex, match=name.replace(".", r"\.")):
        FileStore(folder).create_sync(MANIFEST)
    assert os.listdir(folder) == [name] or sorted(os.listdir(folder)) == sorted([name, LOCK])


def test_create_clears_what_a_crashed_create_left(folder: str) -> None:
    """An empty generation (and a half-written pointer) is all a crashed create leaves: no data, removed."""
    os.makedirs(folder)
    vectors, rows, log = generation_files(1)
    Path(folder, vectors).write_bytes(b"")
    Path(folder, rows).write_bytes(encode_rows([])[:7])
    Path(folder, log).write_bytes(b"")
    Path(folder, "manifest.json.tmp").write_text("{")
    FileStore(folder).create_sync(MANIFEST)
    assert FileStore(folder).open_sync(read_only=True).manifest == MANIFEST


# ----- every OSError is a StorageError and leaves the store usable (issue 8 #13)


def _fail_os(monkeypatch: pytest.MonkeyPatch, name: str, code: int, when: Any = lambda *a, **k: True) -> None:
    """Make ``os.<name>`` in the file store raise ``OSError(code)`` whenever ``when(*args)`` holds."""
    real = getattr(os, name)

    def failing(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(file_mod.os, name, failing)


WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EIO])
def test_os_errors_in_create_are_storage_errors(folder: str, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Regression: a read-only file system (EROFS) escaped ``create`` as a raw ``OSError``."""
    os.makedirs(folder)
    _fail_os(monkeypatch, "open", code, lambda path, flags, *a, **k: bool(flags & WRITES))
    with pytest.raises(StorageError) as info:
        FileStore(folder).create_sync(MANIFEST)
    assert not isinstance(info.value, StorageFull) and isinstance(info.value.__cause__, OSError)
    assert ("read-only file system" in str(info.value)) == (code == errno.EROFS)
    monkeypatch.undo()
    assert os.listdir(folder) == []
    FileStore(folder).create_sync(MANIFEST)


def test_a_writer_cannot_open_on_a_read_only_file_system_but_a_reader_can(
    writer: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.commit_sync([put(1)])
    writer.close_sync()
    _fail_os(monkeypatch, "open", errno.EROFS, lambda path, flags, *a, **k: bool(flags & WRITES))
    store = FileStore(writer.location)
    with pytest.raises(StorageError, match="read_only=True"):
        store.open_sync()
    assert store.read_only is None  # not half-open
    assert store.open_sync(read_only=True).log == [[put(1)]]
    store.close_sync()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_commit_whose_log_cannot_even_be_cut_back_is_repaired_by_the_next_commit(
    writer: FileStore, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Regression: after a failed append whose truncation failed too, the next commit appended after
    the failed bytes, and the log no longer opened (damage before an intact record)."""
    writer.commit_sync([put(1)])
    before = writer.log_bytes
    real_write = os.write

    def half_then_fail(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(file_mod.os, "write", half_then_fail)
    _fail_os(monkeypatch, "ftruncate", code)
    with pytest.raises(StorageError):
        writer.commit_sync([put(2), put(3)])
    monkeypatch.undo()
    assert writer.log_bytes == before < os.path.getsize(log_path(writer))  # the failed bytes are still there
    writer.commit_sync([put(4)])  # the fault is gone: the log is cut back first, then appended to
    writer.close_sync()
    assert FileStore(writer.location).open_sync().log == [[put(1)], [put(4)]]


@pytest.mark.parametrize(
    ("code", "kind"), [(errno.ENOSPC, StorageFull), (errno.EROFS, StorageError), (errno.EIO, StorageError)]
)
def test_os_errors_during_compaction_keep_the_old_generation(
    writer: FileStore, monkeypatch: pytest.MonkeyPatch, code: int, kind: type[StorageError]
) -> None:
    writer.commit_sync([put(1)])
    listing = sorted(os.listdir(writer.location))
    _fail_os(monkeypatch, "fsync", code)
    with pytest.raises(kind):
        writer.write_snapshot_sync(MANIFEST, [put(1).row], put(1).vector)
    monkeypatch.undo()
    assert sorted(os.listdir(writer.location)) == listing
    writer.commit_sync([put(2)])
    writer.close_sync()
    assert FileStore(writer.location).open_sync().log == [[put(1)], [put(2)]]


def test_a_compaction_whose_old_files_cannot_be_removed_still_succeeds(
    writer: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the new generation is installed the snapshot is durable: cleanup failures must not report it failed."""
    writer.commit_sync([put(1)])
    _fail_os(monkeypatch, "unlink", errno.EROFS)
    writer.write_snapshot_sync(MANIFEST, [put(1).row], put(1).vector)
    monkeypatch.undo()
    assert writer.log_bytes == 0 and writer.info()["generation"] == 2
    writer.commit_sync([put(2)])
    writer.close_sync()
    store = FileStore(writer.location)
    snap = store.open_sync()  # the next writer removes the old generation
    assert snap.rows == [put(1).row] and snap.log == [[put(2)]]
    store.close_sync()
    assert sorted(os.listdir(writer.location)) == sorted([POINTER, LOCK, *generation_files(2)])


@pytest.mark.parametrize("held", [False, True])
def test_a_drop_refused_by_the_file_system_changes_nothing(
    writer: FileStore, monkeypatch: pytest.MonkeyPatch, held: bool
) -> None:
    writer.commit_sync([put(1)])
    if not held:
        writer.close_sync()
    _fail_os(monkeypatch, "unlink", errno.EROFS)
    with pytest.raises(StorageError):
        writer.drop_sync()
    monkeypatch.undo()
    assert writer.exists_sync()
    if held:
        writer.commit_sync([put(2)])  # still the open writer
        writer.close_sync()
    assert len(FileStore(writer.location).open_sync(read_only=True).log) == (2 if held else 1)


def test_unreadable_files_are_storage_errors(writer: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    writer.close_sync()
    real_open = open

    def no_permission(path: Any, *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith(POINTER):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(file_mod, "open", no_permission, raising=False)
    for read_only in (True, False):
        with pytest.raises(StorageError, match="no permission"):
            FileStore(writer.location).open_sync(read_only=read_only)
    monkeypatch.undo()
    _fail_os(monkeypatch, "open", errno.EIO, lambda path, *a, **k: str(path).endswith(".wal"))
    with pytest.raises(StorageError, match="I/O error"):
        FileStore(writer.location).open_sync(read_only=True)


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A small tmpfs and a function ``remount(read_only)``: a real EROFS. Needs root and mount; skipped elsewhere."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")

    def remount(read_only: bool) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if read_only else 'rw'}", str(mount)], check=True)

    try:
        yield str(mount), remount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_really_read_only_file_system(read_only_mount: tuple[str, Any]) -> None:
    mount, remount = read_only_mount
    folder = os.path.join(mount, "idx")
    store = FileStore(folder)
    store.create_sync(MANIFEST)
    store.open_sync()
    store.commit_sync([put(1)])
    store.close_sync()
    remount(True)
    with pytest.raises(StorageError, match="read-only file system"):
        FileStore(folder).open_sync()
    with pytest.raises(StorageError, match="read-only file system"):
        FileStore(os.path.join(mount, "other")).create_sync(MANIFEST)
    with pytest.raises(StorageError, match="read-only file system"):
        FileStore(folder).drop_sync()
    reader = FileStore(folder)
    assert reader.open_sync(read_only=True).log == [[put(1)]]
    reader.close_sync()
    remount(False)
    store = FileStore(folder)
    assert store.open_sync().log == [[put(1)]]
    store.commit_sync([put(2)])
    store.close_sync()
    assert FileStore(folder).open_sync(read_only=True).log == [[put(1)], [put(2)]]
