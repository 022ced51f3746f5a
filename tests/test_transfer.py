"""Export/import: JSONL and CSV round trips (exact), malformed sources, and migration from a real vectra folder."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp import DuplicateId, InvalidInput, InvalidMetadata, InvalidVector, LocalIndex
from pyapp.errors import ClinvecError, StorageError
from pyapp.transfer import export_items, import_into, read_source
from pyapp.transfer.create import create_from

HERE = Path(__file__).parent
VECTRA_DIR = Path(os.environ.get("VECTRA_DIR", Path.home() / ".cache/clinvec-peers/vectra"))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.integers(-(10**300), 10**300),  # beyond float64 and 64 bits: JSON integers stay exact
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(',"\n\r\t;\\é😀'), max_size=10),  # CSV/JSON escaping edge cases
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
items_strategy = st.lists(
    st.tuples(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=4, max_size=4).filter(
            lambda v: any(abs(x) > 1e-3 for x in v)
        ),
        st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4),
        st.one_of(st.none(), st.text(min_size=1, max_size=40)),
        st.text(min_size=1, max_size=12),
    ),
    max_size=12,
    unique_by=lambda t: t[3],
)


async def _snapshot(idx: LocalIndex) -> list[tuple]:
    return [(i.id, i.vector, i.metadata, i.text) for i in await idx.list()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=items_strategy)
async def test_round_trip_is_exact(tmp_path, fmt, items):
    src = await LocalIndex.create(f"memory://{uuid.uuid4()}", dims=4)
    await src.insert_many([{"id": i, "vector": v, "metadata": m, "text": t} for v, m, t, i in items])
    path = str(tmp_path / f"out-{uuid.uuid4()}.{fmt}")
    assert await src.export_to(path, format=fmt) == len(items)
    dst = await LocalIndex.create(f"memory://{uuid.uuid4()}", dims=4)
    assert await dst.import_from(path) == len(items)
    assert await _snapshot(dst) == await _snapshot(src)
    await src.close()
    await dst.close()


async def test_malformed_sources_change_nothing(tmp_path):
    idx = await LocalIndex.create(str(tmp_path / "idx"), dims=3)
    await idx.insert([1, 0, 0], id="keep")
    cases = {
        "bad.jsonl": '{"id": "a", "vector": [1, 2, 3]}\n{"id": "b", "vector": [1, 2}\n',
        "dims.jsonl": '{"id": "a", "vector": [1, 2, 3]}\n{"id": "b", "vector": [1, 2]}\n',
        "keys.jsonl": '{"id": "a", "vector": [1, 2, 3], "colour": "red"}\n',
        "nan.jsonl": '{"id": "a", "vector": [1, 2, 3]}\n{"id": "b", "vector": [NaN, 2, 3]}\n',
        "bad.csv": 'id,vector\na,"[1,2,3]"\nb,"[1,2"\n',
        "noheader.csv": "a,b\n",
        "notes.txt": "hello",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(InvalidVector if "nan" in name else InvalidInput):
            await idx.import_from(str(path))
        assert await idx.count() == 1, name
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "new", "vector": [1, 2, 3]}\n{"id": "keep", "vector": [1, 2, 3]}\n')
    with pytest.raises(DuplicateId):
        await idx.import_from(str(dup))
    assert await idx.upsert_many([]) == []
    assert await idx.import_from(str(dup), upsert=True) == 2
    assert await idx.count() == 2
    with pytest.raises(InvalidInput):
        await idx.import_from(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InvalidInput):
        await idx.export_to(str(tmp_path / "x.parquet"), format="parquet")
    await idx.close()


@pytest.fixture(scope="module")
def vectra_folder(tmp_path_factory) -> Path:
    if shutil.which("node") is None or not (VECTRA_DIR / "node_modules" / "vectra").exists():
        pytest.skip("vectra 0.15.0 is not installed (scripts/setup.sh installs it)")
    out = tmp_path_factory.mktemp("vectra")
    subprocess.run(["node", str(HERE / "fixtures" / "make_vectra_index.mjs"), str(VECTRA_DIR), str(out)], check=True)
    return out


async def test_import_real_vectra_index(tmp_path, vectra_folder):
    idx = await LocalIndex.create(str(tmp_path / "idx"), dims=4)
    assert await idx.import_from(str(vectra_folder / "plain")) == 5
    item = await idx.get("p3")
    assert item.metadata == {"n": 3, "ward": "ICU", "tags": ["x", "t3"]}
    expected = np.array([4, 1, 0.5, -3], dtype=np.float64)
    assert item.vector == pytest.approx((expected / np.linalg.norm(expected)).tolist(), abs=1e-6)
    assert await idx.count({"tags": {"$contains": "t1"}}) == 1
    # indexed config: the full metadata lives in side files and must come back whole
    assert await idx.import_from(str(vectra_folder / "indexed")) == 4
    assert (await idx.get("q2")).metadata == {"ward": "ED", "note": "side file 2", "nested": {"a": 2}}
    # a broken vectra folder (side file missing) is rejected whole
    broken = tmp_path / "broken"
    shutil.copytree(vectra_folder / "indexed", broken)
    data = json.loads((broken / "index.json").read_text())
    for entry in data["items"]:
        entry["id"] = "b-" + entry["id"]
    (broken / "index.json").write_text(json.dumps(data))
    os.remove(broken / data["items"][-1]["metadataFile"])
    with pytest.raises(InvalidInput):
        await idx.import_from(str(broken))
    assert await idx.count() == 9
    await idx.close()


async def test_vectra_indexed_fields_are_kept_by_create_from(tmp_path, vectra_folder):
    """Defect 6: vectra's metadata_config.indexed used to be dropped; a migrated index keeps it."""
    source = read_source(str(vectra_folder / "indexed"))
    assert source.indexed == ["ward"] and source.dims == 4
    idx = await create_from(str(tmp_path / "new"), str(vectra_folder / "indexed"))
    assert idx.indexed == ["ward"] and idx.manifest["indexed"] == ["ward"] and idx.dims == 4
    assert await idx.count({"ward": "ED"}) == 4
    assert (await idx.get("q1")).metadata == {"ward": "ED", "note": "side file 1", "nested": {"a": 1}}
    await idx.close()
    reopened = await LocalIndex.open(str(tmp_path / "new"))
    assert reopened.indexed == ["ward"]
    await reopened.close()
    plain = await create_from(str(tmp_path / "plain"), str(vectra_folder / "plain"), indexed=["n"])
    assert plain.indexed == ["n"] and await plain.count() == 5
    await plain.close()


async def test_vectra_document_index_keeps_text_and_uri(tmp_path, vectra_folder):
    """Defect 6: a LocalDocumentIndex came in as bare chunks; each chunk now carries its slice of the
    document body (as vectra renders it, UTF-16 positions: the notes hold an emoji) and the document's uri."""
    expected = json.loads((vectra_folder / "documents-expected.json").read_text())
    idx = await create_from(str(tmp_path / "docs"), str(vectra_folder / "documents"))
    assert idx.indexed == ["ward"] and await idx.count() == len(expected) == 8
    for chunk_id, want in expected.items():
        item = await idx.get(chunk_id)
        assert item.text == want["text"]
        assert item.metadata == {**want["metadata"], "uri": want["uri"]}
    assert await idx.count({"uri": "notes/b.txt", "ward": "ED"}) == 4
    hits = await idx.query(text=None, vector=[1, 1, 1, 1], mode="vector", filter={"uri": "notes/a.txt"}, top_k=1)
    assert hits[0].item.metadata["author"] == "dr a"
    await idx.close()


async def test_broken_vectra_document_index_is_rejected_whole(tmp_path, vectra_folder):
    broken = tmp_path / "broken"
    shutil.copytree(vectra_folder / "documents", broken)
    body = next(broken.glob("*.txt"))
    body.write_text(body.read_text()[:10])  # chunks now point past the end of their document
    with pytest.raises(InvalidInput, match="past the end"):
        read_source(str(broken))
    body.unlink()
    with pytest.raises(InvalidInput, match="document body .* is missing"):
        await create_from(str(tmp_path / "never"), str(broken))
    assert not await LocalIndex.exists(str(tmp_path / "never"))  # a failed migration leaves nothing behind


# --------------------------------------------------------------------------- CSV and JSONL hardening (defect 15)


async def _index(tmp_path: Path, name: str = "idx") -> LocalIndex:
    idx = await LocalIndex.create(str(tmp_path / name), dims=3)
    await idx.insert([1, 0, 0], id="keep")
    return idx


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_long_note_round_trips(tmp_path, fmt):
    """A note over csv's default 128 KiB field limit: clinvec's own CSV export used to fail to re-import."""
    note = "Progress note. " * 20_000  # 300 KB
    src = await _index(tmp_path, "src")
    await src.insert([0, 1, 0], id="long", text=note, metadata={"summary": note})
    path = str(tmp_path / f"out.{fmt}")
    assert await export_items(src, path, fmt) == 2
    dst = await LocalIndex.create(str(tmp_path / "dst"), dims=3)
    assert await import_into(dst, path) == 2
    item = await dst.get("long")
    assert item.text == note and item.metadata == {"summary": note}
    await src.close()
    await dst.close()


async def test_csv_with_bom_imports(tmp_path):
    """Excel writes a UTF-8 byte-order mark; it used to turn the 'id' header into '\\ufeffid'."""
    idx = await _index(tmp_path)
    path = tmp_path / "bom.csv"
    path.write_bytes(b'\xef\xbb\xbfid,vector,metadata\r\na,"[0,1,0]","{""w"": ""\xc3\xa9""}"\r\n')
    assert await import_into(idx, str(path)) == 1
    assert (await idx.get("a")).metadata == {"w": "é"}
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b'\xef\xbb\xbf{"id": "b", "vector": [0, 0, 1]}\n')
    assert await import_into(idx, str(jsonl)) == 1
    await idx.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # the quote opened on line 3 never closes: every later row used to vanish into one field
        ('id,vector,text\na,"[1,0,0]",x\nb,"[0,1,0]","never closed\nc,"[0,0,1]",z\nd,"[1,1,0]",w\n', "lines 3-4"),
        ('id,vector,text\na,"[1,0,0]",x\nb,"[0,1,0]",y\nc,"[0,0,1]","z\n', "line 4: a quoted field opened"),
        ('id,vector\na,"[1,0,0]"\nb,"[0,1,0]",extra\n', "line 3: 3 fields, the header has 2"),
        ("id,vector,colour\na,[1,0,0],red\n", "unknown columns \\['colour'\\]"),
        ('id,vector\na,"[1,0,0]"\nb,"[0,1"\n', "line 3 vector: not valid JSON"),
    ],
)
async def test_malformed_csv_names_the_line(tmp_path, content, message):
    idx = await _index(tmp_path)
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message):
        await import_into(idx, str(path))
    assert await idx.count() == 1
    await idx.close()


# --------------------------------------------------------------------------- hostile sources (defect 13)

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000
HOSTILE_SOURCES = {
    "latin1.jsonl": (
        b'{"id": "a", "vector": [1, 0, 0]}\n{"id": "caf\xe9", "vector": [1, 0, 0]}\n',
        "line 2: not UTF-8",
    ),
    "latin1.csv": (b'id,vector\na,"[1,0,0]"\ncaf\xe9,"[1,0,0]"\n', "not UTF-8"),
    "deep.jsonl": (
        f'{{"id": "a", "vector": [1, 0, 0], "metadata": {{"x": {DEEP}}}}}\n'.encode(),
        "line 1: JSON nested",
    ),
    "deep.csv": f'id,vector,metadata\na,"[1,0,0]","{{""x"": {DEEP}}}"\n'.encode(),
    "huge.jsonl": (
        f'{{"id": "a", "vector": [1, 0, 0], "metadata": {{"n": {HUGE}}}}}\n'.encode(),
        "line 1: not accepted",
    ),
    "huge.csv": (f'id,vector,metadata\na,"[1,0,0]","{{""n"": {HUGE}}}"\n'.encode(), "line 2 metadata: not accepted"),
    "surrogate-id.jsonl": (b'{"id": "x\\ud800", "vector": [1, 0, 0]}\n', "line 1 id: holds a lone surrogate"),
    "surrogate-text.csv": (b'id,vector,text\na,"[1,0,0]",\xed\xa0\x80\n', "not UTF-8"),
}
HOSTILE_SOURCES["deep.csv"] = (HOSTILE_SOURCES["deep.csv"], "line 2 metadata: JSON nested")  # type: ignore[assignment]


@pytest.mark.parametrize("name", sorted(HOSTILE_SOURCES))
async def test_hostile_sources_raise_invalid_input(tmp_path, name):
    """Non-UTF-8 bytes, JSON nested 100,000 deep and 5,000-digit integers used to escape as
    UnicodeDecodeError, RecursionError and ValueError; now InvalidInput naming the line, nothing written."""
    content, message = HOSTILE_SOURCES[name]
    idx = await _index(tmp_path)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        await import_into(idx, str(path))
    assert await idx.count() == 1
    await idx.close()


async def test_hostile_vectra_folder(tmp_path, vectra_folder):
    idx = await _index(tmp_path)
    folder = tmp_path / "v"
    shutil.copytree(vectra_folder / "plain", folder)
    text = (folder / "index.json").read_text()
    (folder / "index.json").write_text(text.replace('"n":3', f'"n":{HUGE}', 1))
    with pytest.raises(InvalidInput, match="not accepted JSON"):
        await import_into(idx, str(folder))
    (folder / "index.json").write_bytes(b"\xff" + text.encode())
    with pytest.raises(InvalidInput, match="not UTF-8"):
        await import_into(idx, str(folder))
    assert await idx.count() == 1
    await idx.close()


async def test_metadata_with_lone_surrogate_in_a_file_is_rejected(tmp_path):
    idx = await _index(tmp_path)
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "vector": [1, 0, 0], "metadata": {"ward": "IC\\udc00U"}}\n')
    with pytest.raises(InvalidMetadata, match="lone surrogate"):
        await import_into(idx, str(path))
    assert await idx.count() == 1
    await idx.close()


# --------------------------------------------------------------------------- export safety (defect 14)


async def test_export_refuses_the_index_own_files(tmp_path):
    idx = await _index(tmp_path)
    home = tmp_path / "idx"
    before = {p.name: p.read_bytes() for p in home.iterdir()}
    wal = next(p for p in home.iterdir() if p.name.endswith(".wal"))
    link = tmp_path / "link"
    link.symlink_to(home)
    for target in (
        wal,
        home / "manifest.json",
        home / "new.jsonl",
        home,
        link / "x.csv",
        tmp_path / "idx" / ".." / "idx",
    ):
        with pytest.raises(InvalidInput, match="own folder|is a folder"):
            await export_items(idx, str(target), "csv")
    assert {p.name: p.read_bytes() for p in home.iterdir()} == before
    await idx.close()
    reopened = await LocalIndex.open(str(home))
    assert await reopened.count() == 1
    await reopened.close()


async def test_failed_export_leaves_no_temp_file_and_keeps_the_target(tmp_path, monkeypatch):
    idx = await _index(tmp_path)
    await idx.insert([0, 1, 0], id="big", metadata={"n": 10**2000})
    out = tmp_path / "out"
    out.mkdir()
    target = out / "items.jsonl"
    target.write_text("previous export\n")
    # an item the writer cannot encode (injected by lowering Python's int<->str digit limit)
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(1000)
    try:
        with pytest.raises(InvalidInput, match="item 'big' cannot be exported"):
            await export_items(idx, str(target), "jsonl")
    finally:
        sys.set_int_max_str_digits(limit)
    assert os.listdir(out) == ["items.jsonl"] and target.read_text() == "previous export\n"

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)  # the disk fills up as the file is made durable
    with pytest.raises(StorageError, match="No space left"):
        await export_items(idx, str(target), "csv")
    monkeypatch.undo()
    assert os.listdir(out) == ["items.jsonl"] and target.read_text() == "previous export\n"
    with pytest.raises(StorageError):
        await export_items(idx, str(tmp_path / "no-such-folder" / "x.jsonl"))
    assert await export_items(idx, str(target)) == 2 and os.listdir(out) == ["items.jsonl"]
    await idx.close()


def test_every_transfer_error_is_a_clinvec_error():
    assert issubclass(StorageError, ClinvecError) and issubclass(InvalidInput, ClinvecError)


def test_transfer_uses_only_the_public_index_api():
    """Transfer sits above the index: no attribute access to a private name (``index._rows``) anywhere."""
    import ast

    for path in sorted((HERE.parent / "pyapp" / "transfer").glob("*.py")) + [HERE.parent / "pyapp" / "cli.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                private = node.attr.startswith("_") and not node.attr.startswith("__")
                assert not private, f"{path.name}:{node.lineno} reads .{node.attr}"
