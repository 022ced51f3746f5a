"""bench/_browser_workload.py draws exactly what the JS mulberry32 draws (the vectra peer's generator), so the
peers benchmark's data means the same as the vectra peer's, and its files are what the pages read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import _browser_workload as workload  # noqa: E402

JS = """
function mulberry32(seed) {
  let s = seed >>> 0;
  return function () {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const r = mulberry32(42), out = [];
for (let i = 0; i < 20000; i++) out.push(r());
console.log(JSON.stringify(out.slice(-5000)));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_numpy_mulberry32_equals_the_js_generator() -> None:
    js = json.loads(subprocess.run(["node", "-e", JS], capture_output=True, text=True, check=True).stdout)
    assert workload.mulberry32(42, 15000, 5000).tolist() == js


def test_files_hold_the_workload(tmp_path: Path) -> None:
    folder = workload.write(tmp_path / "w", 50, 8, queries=4)
    meta = json.loads((folder / "meta.json").read_text())
    vectors = np.fromfile(folder / "vectors.f32", dtype="<f4").reshape(50, 8)
    assert meta["categories"][:11] == [f"c{i % 10}" for i in range(11)]
    assert len(meta["texts"]) == 50 and all(len(t.split()) == 8 for t in meta["texts"])
    assert len(meta["query_texts"]) == 4 and np.fromfile(folder / "queries.f32", dtype="<f4").size == 32
    assert vectors.min() >= -1 and vectors.max() < 1
    assert np.array_equal(vectors.ravel(), workload.make(50, 8, 4)["vectors"])
    assert len(set(workload.words())) == 200
