"""Property test: LocalIndex.query equals a brute-force reference (cosine, filter first, ties by insertion order)."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp import LocalIndex
from pyapp.filters import compile_filter

DIMS = 6
small_ints = st.integers(-3, 3)
vectors = st.lists(small_ints, min_size=DIMS, max_size=DIMS).filter(lambda v: any(v))  # small ints: many exact ties
rows = st.lists(
    st.tuples(vectors, st.sampled_from(["ICU", "ED", "OR"]), st.integers(2015, 2025)), min_size=1, max_size=40
)
filters = st.one_of(
    st.none(),
    st.builds(lambda w: {"ward": w}, st.sampled_from(["ICU", "ED", "OR", "none"])),
    st.builds(lambda y: {"year": {"$gte": y}}, st.integers(2014, 2026)),
    st.builds(
        lambda w, y: {"$or": [{"ward": w}, {"year": {"$lt": y}}]},
        st.sampled_from(["ICU", "ED"]),
        st.integers(2014, 2026),
    ),
)


def reference(items, query, top_k, flt):
    q = np.asarray(query, dtype=np.float32).astype(np.float64)
    q /= np.linalg.norm(q)
    compiled = None if flt is None else compile_filter(flt)
    scored = []
    for seq, (vec, meta) in enumerate(items):
        if compiled is not None and not compiled.matches(meta):
            continue
        v = np.asarray(vec, dtype=np.float32).astype(np.float64)
        scored.append((-(v / np.linalg.norm(v)) @ q, seq))
    scored.sort()
    return [(seq, -neg) for neg, seq in scored[:top_k]]


@settings(max_examples=60, deadline=None)
@given(data=rows, query=vectors, top_k=st.integers(1, 12), flt=filters, indexed=st.booleans())
def test_query_matches_brute_force(data, query, top_k, flt, indexed):
    async def run():
        idx = await LocalIndex.create(f"memory://{uuid.uuid4()}", dims=DIMS, indexed=["ward"] if indexed else [])
        items = [(v, {"ward": w, "year": y}) for v, w, y in data]
        await idx.insert_many([{"id": f"i{n}", "vector": v, "metadata": m} for n, (v, m) in enumerate(items)])
        got = await idx.query(query, top_k=top_k, filter=flt)
        await idx.close()
        return got

    got = asyncio.run(run())
    full = reference([(v, {"ward": w, "year": y}) for v, w, y in data], query, len(data), flt)
    expected = full[:top_k]
    assert len(got) == len(expected)
    assert [r.score for r in got] == [pytest.approx(s, abs=1e-5) for _, s in expected]
    for position, (hit, (seq, score)) in enumerate(zip(got, expected)):
        # exact ties (same direction) may differ by one float32 ulp after normalising; any tied item is right,
        # and items that are exactly equal in float32 keep insertion order
        tied = {f"i{s}" for s, sc in full if abs(sc - score) < 1e-6}
        assert hit.id in tied, (position, hit.id, seq)
    identical = {}
    for hit in got:
        identical.setdefault(round(hit.score, 12), []).append(int(hit.id[1:]))
    for seqs in identical.values():
        assert seqs == sorted(seqs)  # bit-identical scores: insertion order
