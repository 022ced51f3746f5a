"""The column-wise fast checks of ``pyapp.staging`` accept exactly what the per-item checks accept.

Why: bulk staging checks ids, metadata and texts a whole column at a time (C-level passes) and falls back to
the per-item checks only to name an offender. A fast path that let through anything the per-item path refuses
would store bad input; one that refused good input would only cost time, but must still give the same answer.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp import LocalIndex
from pyapp.errors import ClinvecError
from pyapp.metadata import MAX_INT_DIGITS, validate_metadata
from pyapp.staging import _flat_copies, _plain_ids, check_id, item_dicts

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.just(10**MAX_INT_DIGITS),
    st.just(-(10**MAX_INT_DIGITS) + 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["a\ud800", "é", "plain"]),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
)
KEYS = st.one_of(st.text(max_size=4), st.sampled_from(["k\ud800", "ü"]), st.integers(0, 3))
METADATA = st.one_of(st.none(), st.dictionaries(KEYS, SCALARS, max_size=3), st.sampled_from([[], "x", 3]))


def _per_item(metadatas: list[Any]) -> list[dict[str, Any]] | str:
    try:
        return [{} if m is None else validate_metadata(m) for m in metadatas]
    except ClinvecError as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(st.lists(METADATA, max_size=6))
def test_flat_metadata_fast_path_agrees_with_validate_metadata(metadatas: list[Any]) -> None:
    fast = _flat_copies(metadatas)
    if fast is not None:  # accepted column-wise: the per-item path accepts it too, with equal copies
        slow = _per_item(metadatas)
        assert slow == fast
        assert all(a is not b for a, b in zip(fast, metadatas))  # copies, never the caller's dicts


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=4), st.just("x" * 513), st.integers(), st.none()), min_size=1))
def test_plain_ids_fast_path_agrees_with_check_id(ids: list[Any]) -> None:
    if _plain_ids(ids):
        assert [check_id(i) for i in ids] == ids


def test_floats_and_big_ints_take_the_checking_path() -> None:
    assert _flat_copies([{"x": math.inf}]) is None
    assert _flat_copies([{"x": 10**MAX_INT_DIGITS}]) is None
    assert _flat_copies([{"x": 1.5, "y": True, "z": None}, None]) == [{"x": 1.5, "y": True, "z": None}, {}]


def test_item_dicts_fast_path_still_refuses_unknown_keys_and_non_dicts() -> None:
    with pytest.raises(ClinvecError, match="item 1 has unknown keys"):
        item_dicts([{"id": "a"}, {"id": "b", "vectr": [1.0]}])
    with pytest.raises(ClinvecError, match="item 0 must be a dict"):
        item_dicts([["id", "a"]])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"metadata": {"k": math.nan}}, "metadata"),
        ({"metadata": {"k": b"x"}}, "metadata"),
        ({"metadata": {1: "x"}}, "metadata"),
        ({"text": "a\ud800"}, "lone surrogate"),
        ({"text": 3}, "text must be a string"),
        ({"id": ""}, "non-empty string"),
        ({"id": 7}, "non-empty string"),
        ({"vector": [0.0, 0.0]}, "all zeros"),
        ({"vector": [1.0]}, "1 dimensions"),
    ],
)
async def test_a_bad_item_among_many_rejects_the_call_and_stores_nothing(bad: dict[str, Any], message: str) -> None:
    idx = await LocalIndex.create(f"memory://{uuid.uuid4()}", dims=2)
    items = [{"id": f"i{i}", "vector": [1.0, float(i)], "metadata": {"c": "x"}, "text": "t"} for i in range(50)]
    items[37] = {**items[37], **bad}
    with pytest.raises(ClinvecError, match=message):
        await idx.insert_many(items)
    assert await idx.count() == 0
    await idx.close()
