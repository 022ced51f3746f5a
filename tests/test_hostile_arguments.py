"""Only ClinvecErrors escape the public API, and a refused call changes nothing, whatever the arguments.

Hypothesis throws hostile values (wrong types, NaN, huge integers, lone surrogates, deep nesting, bytes, sets,
arbitrary objects) at every public LocalIndex method in every argument position.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp import ClinvecError, LocalIndex

DIMS = 4


class HugeInt(int):
    """10**5000, with a repr hypothesis can print (str() of it raises past Python's digit limit)."""

    def __repr__(self) -> str:
        return "10**5000"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.just(HugeInt(10**5000)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "a\udc00b", "", "$eq", "$where", "hybrid", "rrf", "x" * 600]),
    st.binary(max_size=8),
    st.builds(object),
    st.just(math.inf),
)
hostile = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(st.text(max_size=4), st.integers(), st.sampled_from(["$and", "$gt", "ward"])), inner, max_size=4
        ),
        st.frozensets(st.integers(), max_size=3),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


deep = st.integers(200, 3000).map(_nested)

CALLS = {
    "insert": lambda idx, a, b: idx.insert(a, metadata=b),
    "insert_text": lambda idx, a, b: idx.insert([1, 0, 0, 0], text=a, id=b),
    "upsert": lambda idx, a, b: idx.upsert(a, b),
    "insert_many": lambda idx, a, b: idx.insert_many(a),
    "upsert_many": lambda idx, a, b: idx.upsert_many([{"id": "x", "vector": a, "metadata": b}]),
    "update_metadata": lambda idx, a, b: idx.update_metadata("keep", a),
    "delete": lambda idx, a, b: idx.delete(a),
    "delete_many": lambda idx, a, b: idx.delete_many(a),
    "delete_where": lambda idx, a, b: idx.delete_where(a),
    "get": lambda idx, a, b: idx.get(a),
    "count": lambda idx, a, b: idx.count(a),
    "list": lambda idx, a, b: idx.list(a, limit=b),
    "list_offset": lambda idx, a, b: idx.list(None, offset=a),
    "query_vector": lambda idx, a, b: idx.query(a, top_k=b),
    "query_args": lambda idx, a, b: idx.query([1, 0, 0, 0], text="pain", mode="hybrid", weights=a, rrf_k=b),
    "query_filter": lambda idx, a, b: idx.query([1, 0, 0, 0], filter=a, min_score=b),
    "query_mode": lambda idx, a, b: idx.query(text=a, mode=b),
    "query_fusion": lambda idx, a, b: idx.query([1, 0, 0, 0], text="pain", fusion=a, top_k=3),
    "distinct": lambda idx, a, b: idx.distinct(a),
}


async def _call_and_check(name: str, a: Any, b: Any) -> None:
    idx = await LocalIndex.create(f"memory://hostile-{uuid.uuid4().hex}", dims=DIMS, indexed=["ward"])
    try:
        await idx.insert([1, 0, 0, 0], metadata={"ward": "ICU"}, text="chest pain", id="keep")
        before = [(i.id, i.vector, i.metadata, i.text) for i in await idx.list()]
        try:
            await CALLS[name](idx, a, b)
        except ClinvecError:
            after = [(i.id, i.vector, i.metadata, i.text) for i in await idx.list()]
            assert after == before, f"{name} raised but changed the index"
        # a call that succeeded may have changed the index: that is allowed; the next write must work
        await idx.upsert("probe", [0, 1, 0, 0])
        assert await idx.get("probe") is not None
    finally:
        await idx.close()


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(CALLS)), a=st.one_of(hostile, deep), b=hostile)
def test_only_clinvec_errors_escape_and_a_refusal_changes_nothing(name: str, a: Any, b: Any) -> None:
    asyncio.run(_call_and_check(name, a, b))
