"""Item: immutable, equal by value, and its lazily built vector is the one read at query time."""

from __future__ import annotations

import copy
import pickle
import uuid
from array import array

import pytest

from pyapp import LocalIndex
from pyapp.types import Item


def test_lazy_and_eager_items_are_equal_and_immutable() -> None:
    raw = array("f", [0.6, 0.8]).tobytes()
    lazy = Item._from_float32("a", raw, {"k": [1]}, "t")
    eager = Item("a", array("f", [0.6, 0.8]).tolist(), {"k": [1]}, "t")
    assert lazy == eager and lazy.to_dict() == eager.to_dict()
    assert lazy.vector == [pytest.approx(0.6), pytest.approx(0.8)]
    assert lazy != Item("a", [0.6, 0.8], {"k": [2]}, "t")
    with pytest.raises(AttributeError):
        lazy.id = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del eager.text
    with pytest.raises(TypeError):
        hash(lazy)
    for clone in (pickle.loads(pickle.dumps(lazy)), copy.deepcopy(lazy), copy.copy(lazy)):
        assert clone == lazy and type(clone) is Item


async def test_query_results_keep_the_vector_they_were_found_with() -> None:
    idx = await LocalIndex.create(f"memory://{uuid.uuid4()}", dims=3)
    await idx.insert([1, 0, 0], id="a")
    await idx.insert([0, 1, 0], id="b")
    hits = await idx.query([1, 0.1, 0], top_k=2)
    got = await idx.get("a")
    await idx.upsert("a", [0, 0, 1])  # rewrites row 0 in place
    await idx.delete("b")  # swaps rows
    assert hits[0].id == "a" and hits[0].item.vector == [1.0, 0.0, 0.0]
    assert hits[1].item.vector == [0.0, 1.0, 0.0]
    assert got is not None and got.vector == [1.0, 0.0, 0.0]
    assert (await idx.get("a")).vector == [0.0, 0.0, 1.0]  # type: ignore[union-attr]
    await idx.close()
