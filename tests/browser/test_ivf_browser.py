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

from pyapp.kernels.ivf import Partitions
from pyapp.kernels.ivf_numpy import NumpyIvfMath
from pyapp.kernels.numpy_kernel import NumpyKernel

pytestmark = pytest.mark.browser

DIMS = 32

PAGE = """
import base64
from pyapp import LocalIndex
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
found, differs, answers = 0, 0, []
for j in range(nq):
    exact = [r.id for r in await idx.query(qvec(j), top_k=10, mode="vector", exact=True)]
    auto = [r.id for r in await idx.query(qvec(j), top_k=10, mode="vector")]
    one = [r.id for r in await idx.query(qvec(j), top_k=10, mode="vector", nprobe=1)]
    found += len(set(auto) & set(exact))
    differs += one != exact
    answers.append(one)
centroids = idx._state.ivf.centroids.to_bytes()
stats = (await idx.stats())["ivf"]
await idx.close()

idx = await LocalIndex.open(name)  # snapshot centroids and assignments (+ log): no retraining
idx._state.ivf.verify(idx._state.kernel)
same_centroids = idx._state.ivf.centroids.to_bytes() == centroids
same_answers = answers == [[r.id for r in await idx.query(qvec(j), top_k=10, mode="vector", nprobe=1)]
                           for j in range(nq)]
await idx.compact()
rows, vectors, state = idx._state.snapshot_parts()
await idx.close()
await LocalIndex.drop(name)
result = {"recall": found / (10 * nq), "differs": differs, "same_centroids": same_centroids,
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
    # The page's saved partitioning is the server's format: numpy agrees with every assignment it made.
    kernel = NumpyKernel(DIMS)
    vectors = base64.b64decode(out["vectors"])
    kernel.load(vectors, len(out["ids"]))
    Partitions.restore(out["state"], NumpyIvfMath(), DIMS, len(out["ids"])).verify(kernel)
