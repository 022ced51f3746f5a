"""Export/import: JSONL and CSV round trips (exact), malformed sources, and migration from a real vectra folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp import DuplicateId, InvalidInput, InvalidVector, LocalIndex

HERE = Path(__file__).parent
VECTRA_DIR = Path(os.environ.get("VECTRA_DIR", Path.home() / ".cache/clinvec-peers/vectra"))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
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
    ),
    max_size=12,
)


async def _snapshot(idx: LocalIndex) -> list[tuple]:
    return [(i.id, i.vector, i.metadata, i.text) for i in await idx.list()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=items_strategy)
async def test_round_trip_is_exact(tmp_path, fmt, items):
    src = await LocalIndex.create(f"memory://{uuid.uuid4()}", dims=4)
    await src.insert_many(
        [{"id": f"id-{n}", "vector": v, "metadata": m, "text": t} for n, (v, m, t) in enumerate(items)]
    )
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
