"""IVF partitions in the page (Pyodide without numpy: JS k-means and assignment, IndexedDB snapshot).

The page trains when it must (a bulk load past the threshold), keeps lists in step with writes, saves centroids
and assignments in the IndexedDB snapshot and reopens them without retraining; the saved state is the same
format the server reads, and numpy on CPython agrees with every assignment the page made.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from pyapp.kernels import ivf
from pyapp.kernels.ivf import Partitions
from pyapp.kernels.ivf_numpy import NumpyIvfMath
from pyapp.kernels.numpy_kernel import NumpyKernel

pytestmark = pytest.mark.browser

DIMS = 32

PAGE = """
import base64
from pyapp import LocalIndex
from pyapp.kernels import ivf
from pyapp.kernels.ivf import Partitions

def vec(i):
    return list(memoryview(base64.b64decode(data)).cast("f")[i * dims:(i + 1) * dims])

def qvec(i):
    return list(memoryview(base64.b64decode(queries)).cast("f")[i * dims:(i + 1) * dims])

await LocalIndex.drop(name)
idx = await LocalIndex.create(name, dims=dims, ivf_threshold=300)
await idx.insert_many([{"id": f"r{i}", "vector": vec(i)} for i in range(n)])  # bulk: trained in JS
parts = idx._state.ivf
assert parts is not None and type(parts.centroids).__name__ == "JsCentroids"
for i in range(0, 60, 3):
    await idx.upsert(f"r{i}", vector=vec(n - 1 - i))
for i in range(1, 60, 3):
    await idx.delete(f"r{i}")
await idx.insert(vec(5), id="extra")
idx._state.ivf.verify(idx._state.kernel)
found, differs, answers, exact_ids = 0, 0, [], []
for j in range(nq):
    exact = [r.id for r in await idx.query(qvec(j), top_k=10, mode="vector", exact=True)]
    exact_ids.append(exact)
    auto = [r.id for r in await idx.query(qvec(j), top_k=10, mode="vector")]
    one = [r.id for r in await idx.query(qvec(j), top_k=10, mode="vector", nprobe=1)]
    found += len(set(auto) & set(exact))
    differs += one != exact
    answers.append(one)
centroids = idx._state.ivf.centroids.to_bytes()
stats = (await idx.stats())["ivf"]
kernel = idx._state.kernel
probed = idx._state.ivf.candidates(kernel.prepare(kernel.pack([qvec(0)]), 1), 10)
gathered = [type(probed).__name__, len(probed)]
await idx.close()

idx = await LocalIndex.open(name)  # snapshot centroids and assignments (+ log): no retraining
idx._state.ivf.verify(idx._state.kernel)
same_centroids = idx._state.ivf.centroids.to_bytes() == centroids
same_answers = answers == [[r.id for r in await idx.query(qvec(j), top_k=10, mode="vector", nprobe=1)]
                           for j in range(nq)]
await idx.compact()
rows, vectors, state = idx._state.snapshot_parts()
again = idx._state.ivf.calibrate(idx._state.kernel, idx._state.ivf_math(), 0)  # over these very rows
recalibrated = [again.share, again.recall, again.sample]
await idx.close()
await LocalIndex.drop(name)
result = {"recall": found / (10 * nq), "differs": differs, "same_centroids": same_centroids,
          "exact_ids": exact_ids, "gathered": gathered, "recalibrated": recalibrated,
          "same_answers": same_answers, "stats": stats, "state": state,
          "vectors": base64.b64encode(bytes(vectors)).decode(), "ids": [r.id for r in rows]}
"""


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, DIMS)).astype(np.float32)
    x = centres[rng.integers(0, 16, n)] + np.float32(0.35) * rng.standard_normal((n, DIMS)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("<f4")


def b64(x: np.ndarray) -> str:
    return base64.b64encode(x.tobytes()).decode()


def test_page_partitions_train_follow_writes_and_reopen_from_indexeddb(app: Any, index_name: str) -> None:
    n, nq = 800, 30
    out = app.run(
        PAGE, name=index_name, dims=DIMS, n=n, nq=nq, data=b64(clustered(n, 1)), queries=b64(clustered(nq, 2))
    )
    assert out["stats"]["active"] and out["stats"]["lists"] >= 4
    assert out["recall"] >= 0.95 and out["differs"] > 0  # probing prunes, and still finds the neighbours
    assert out["same_centroids"] and out["same_answers"]
    assert out["stats"]["probe"] == "calibrated"  # the page calibrated its own probe depth at training
    assert out["gathered"][0] == "JsRows" and out["gathered"][1] > 0  # probed rows stay a JS Int32Array
    # The page's saved partitioning is the server's format: numpy agrees with every assignment it made.
    kernel = NumpyKernel(DIMS)
    vectors = base64.b64decode(out["vectors"])
    kernel.load(vectors, len(out["ids"]))
    restored = Partitions.restore(out["state"], NumpyIvfMath(), DIMS, len(out["ids"]))
    restored.verify(kernel)
    # ... and calibrating the same partitions with numpy picks the page's depth (one policy, two runtimes)
    assert restored.probe is not None  # the page's own calibration, saved with the partitions
    assert ivf.Probe(*out["recalibrated"]) == restored.calibrate(kernel, NumpyIvfMath(), 0)
    # exact=True in the page is numpy's top-10 over the same rows (compared by score: upserted copies tie)
    x = np.frombuffer(vectors, dtype="<f4").reshape(-1, DIMS)
    row_of = {item_id: r for r, item_id in enumerate(out["ids"])}
    for j, q in enumerate(clustered(nq, 2)):
        scores = x @ q
        want = np.sort(scores)[::-1][:10]
        got = scores[[row_of[i] for i in out["exact_ids"][j]]]
        assert len(got) == 10 and np.allclose(got, want, atol=1e-6), (got, want)
