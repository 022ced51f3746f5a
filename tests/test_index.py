"""LocalIndex checks that cannot be contract cases; everything else lives in ``tests/contract/cases.py``.

The contract cases run unchanged on CPython (file and memory stores) and inside the page (IndexedDB + JS
kernel), so a behaviour asserted there is asserted in every build; a copy here would only drift. What stays
here is CPython-only by nature: the reference-model property test draws its random op sequence from numpy's
generator and checks vectors against numpy (``cases.py`` may import neither numpy nor pytest), and it runs
over pytest's ``tmp_path`` fixture on both CPython stores.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from pyapp import LocalIndex

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
