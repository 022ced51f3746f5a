"""MetadataTable: row alignment, columnar filtering (numpy and pure Python) and its agreement with Filter.matches."""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp.errors import InvalidFilter, InvalidInput, InvalidMetadata
from pyapp.filters import Filter, compile_filter
from pyapp.metadata import get_path
from pyapp.metadata_table import MetadataTable

MODES = [True, False]  # use_numpy


def rows_of(table: MetadataTable) -> list[dict[str, Any]]:
    return [table.get(i) for i in range(len(table))]


def expected(rows: list[dict[str, Any]], spec: Any) -> list[int]:
    flt = compile_filter(spec)
    return [i for i, m in enumerate(rows) if flt.matches(m)]


# --------------------------------------------------------------------------- row bookkeeping


@pytest.mark.parametrize("use_numpy", MODES)
def test_append_set_swap_remove_mirror_the_kernel(use_numpy: bool) -> None:
    t = MetadataTable(["ward"], use_numpy=use_numpy)
    for i in range(5):
        t.append({"n": i, "ward": f"w{i % 2}"})
    assert len(t) == 5
    t.swap_remove(1)  # row 4 moves into row 1
    assert [m["n"] for m in rows_of(t)] == [0, 4, 2, 3]
    assert list(t.select({"ward": "w0"})) == [0, 1, 2]
    t.swap_remove(3)  # removing the last row moves nothing
    assert [m["n"] for m in rows_of(t)] == [0, 4, 2]
    t.set(0, {"n": 9, "ward": "w1"})
    assert t.get(0) == {"n": 9, "ward": "w1"}
    assert list(t.select({"ward": "w1"})) == [0]
    assert list(t.select({"ward": "w0"})) == [1, 2]
    t.swap_remove(0)
    t.swap_remove(0)
    t.swap_remove(0)
    assert len(t) == 0 and list(t.select({"ward": "w0"})) == [] and t.count(None) == 0
    t.append({"ward": "w0"})
    assert list(t.select({"ward": "w0"})) == [0]


@pytest.mark.parametrize("use_numpy", MODES)
def test_row_bounds(use_numpy: bool) -> None:
    t = MetadataTable(["a"], use_numpy=use_numpy)
    t.append({"a": 1})
    for bad in (1, -1, 5):
        with pytest.raises(IndexError):
            t.get(bad)
        with pytest.raises(IndexError):
            t.set(bad, {})
        with pytest.raises(IndexError):
            t.swap_remove(bad)
    assert len(t) == 1 and t.get(0) == {"a": 1}


@pytest.mark.parametrize("use_numpy", MODES)
def test_rejects_non_dict_metadata(use_numpy: bool) -> None:
    t = MetadataTable(["a"], use_numpy=use_numpy)
    with pytest.raises(InvalidMetadata):
        t.append([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(InvalidMetadata):
        t.load([{"a": 1}, None])  # type: ignore[list-item]
    assert len(t) == 0


def test_indexed_argument_is_checked() -> None:
    with pytest.raises(InvalidInput, match="not a string"):
        MetadataTable("ward")
    with pytest.raises(InvalidInput, match="empty segment"):
        MetadataTable(["a..b"])
    assert MetadataTable(["b", "a", "b"], use_numpy=False).indexed == ("b", "a")


def test_numpy_is_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MetadataTable([]).uses_numpy  # numpy is installed here
    monkeypatch.setitem(sys.modules, "numpy", None)  # makes `import numpy` fail
    t = MetadataTable(["a"])
    assert not t.uses_numpy
    t.load([{"a": 1}, {"a": 2}])
    assert t.select({"a": 2}) == [1] and type(t.select(None)) is list
    with pytest.raises(ImportError):
        MetadataTable(["a"], use_numpy=True)


@pytest.mark.parametrize("use_numpy", MODES)
def test_select_types_and_count(use_numpy: bool) -> None:
    t = MetadataTable(["a"], use_numpy=use_numpy)
    t.load([{"a": i % 3} for i in range(10)])
    for spec in (None, {"a": 1}, {"b": 1}, compile_filter({"a": {"$gt": 0}})):
        got = t.select(spec)
        if use_numpy:
            assert isinstance(got, np.ndarray) and got.dtype == np.int64
        else:
            assert type(got) is list and all(type(i) is int for i in got)
        assert t.count(spec) == len(got)
    assert list(t.select({"a": 1})) == [1, 4, 7]
    assert list(t.select(None)) == list(range(10))
    with pytest.raises(InvalidFilter):
        t.select({"a": {"$bogus": 1}})


@pytest.mark.parametrize("use_numpy", MODES)
def test_indexed_column_edge_values(use_numpy: bool) -> None:
    big = 2**53 + 1
    rows: list[dict[str, Any]] = [
        {"v": 1},
        {"v": 1.0},
        {"v": True},
        {"v": False},
        {"v": 0},
        {"v": None},
        {},
        {"v": "1"},
        {"v": [1, "x"]},
        {"v": {"k": 1}},
        {"v": big},
        {"v": float(2**53)},
        {"v": -0.0},
        {"v": [[1]]},
        {"v": 2**70},
        {"v": 1.5},
    ]
    specs: list[dict[str, Any]] = [
        {"v": 1},
        {"v": True},
        {"v": 0},
        {"v": None},
        {"v": "1"},
        {"v": big},
        {"v": 2**53},
        {"v": {"$gt": 2**53}},
        {"v": {"$gte": big}},
        {"v": {"$lt": 1}},
        {"v": {"$gt": "0"}},
        {"v": {"$in": [True, 0, "x"]}},
        {"v": {"$nin": [1, None]}},
        {"v": {"$exists": False}},
        {"v": {"$contains": 1}},
        {"v": {"$contains": [1]}},
        {"v": {"k": 1.0}},
        {"v": {"$not": {"$lte": 1}}},
        {"v": {"$ne": [1, "x"]}},
        {"v": [1, "x"]},
        {"v": {"$gt": 2**70 - 1}},
        {"v": {"$gte": 0, "$lt": 1.5}},
        {"v": {"$lt": 10**400}},
    ]
    t = MetadataTable(["v"], use_numpy=use_numpy)
    t.load(rows)
    for spec in specs:
        assert list(t.select(spec)) == expected(rows, spec), spec
    assert list(t.select({"v": 1})) == [0, 1, 8]
    assert list(t.select({"v": {"$gt": 2**53}})) == [10, 14]


@pytest.mark.parametrize("use_numpy", MODES)
def test_list_and_object_values_follow_their_rows(use_numpy: bool) -> None:
    """Rows whose indexed value is a list/object are evaluated per row; moves and overwrites must track them."""
    t = MetadataTable(["a"], use_numpy=use_numpy)
    t.load([{"a": 1}, {"a": [2]}, {"a": {"k": 3}}, {"a": [2, 3]}])
    t.swap_remove(0)  # [2, 3] moves to row 0
    assert list(t.select({"a": 2})) == [0, 1]
    assert list(t.select({"a": {"$gt": 2}})) == [0]
    t.set(1, {"a": 2})  # list replaced by a scalar
    t.set(2, {"a": [5]})  # object replaced by a list
    assert list(t.select({"a": 2})) == [0, 1]
    assert list(t.select({"a": {"$contains": 5}})) == [2]
    t.swap_remove(1)  # the list [5] moves to row 1
    assert list(t.select({"a": {"$contains": 5}})) == [1]
    assert list(t.select({"a": {"$not": {"$contains": 5}}})) == [0]
    assert rows_of(t) == [{"a": [2, 3]}, {"a": [5]}]


def test_unused_codes_are_recycled() -> None:
    """Churning through unique values must not grow the dictionary (no rebuilds needed, no leak)."""
    for use_numpy in MODES:
        t = MetadataTable(["id"], use_numpy=use_numpy)
        t.load([{"id": f"x{i}"} for i in range(10)])
        for k in range(5000):
            t.set(k % 10, {"id": f"y{k}"})
            t.swap_remove(k % len(t))
            t.append({"id": f"z{k}"})
        col = t._columns["id"]
        assert len(col.values) <= 11 and len(col.code_of) == 10
        assert list(t.select({"id": "z4999"})) == expected(rows_of(t), {"id": "z4999"})
        assert len(expected(rows_of(t), {"id": "z4999"})) == 1


@pytest.mark.parametrize("use_numpy", MODES)
def test_mixed_indexed_and_plain_fields(use_numpy: bool) -> None:
    rng = random.Random(7)
    rows = [
        {
            "ward": rng.choice(["icu", "er", "gp"]),
            "age": rng.randrange(100),
            "tags": rng.sample("abcd", 2),
            "p": {"sex": rng.choice("fm")},
        }
        for _ in range(500)
    ]
    t = MetadataTable(["ward", "p.sex"], use_numpy=use_numpy)
    t.load(rows)
    specs: list[dict[str, Any]] = [
        {"ward": "icu", "age": {"$gte": 50}},
        {"$or": [{"ward": "er"}, {"tags": "a"}, {"p.sex": "f"}]},
        {"$or": [{"age": {"$lt": 10}}, {"ward": "gp", "tags": {"$contains": "b"}}]},
        {"$not": {"$and": [{"p.sex": "m"}, {"age": {"$gt": 30}}]}},
        {"p.sex": {"$not": {"$in": ["f"]}}, "$or": [{"tags": {"$nin": ["c"]}}, {"ward": {"$ne": "icu"}}]},
    ]
    for spec in specs:
        got = list(t.select(spec))
        assert got == expected(rows, spec) and 0 < len(got) < len(rows), spec


# --------------------------------------------------------------------------- performance targets


def _perf_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    return [
        {
            "doc": f"d{i}",
            "category": f"c{rng.randrange(10)}",
            "year": 1990 + rng.randrange(35),
            "flag": rng.random() < 0.5,
        }
        for i in range(n)
    ]


def _best_ms(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def test_select_speed_targets_50k() -> None:
    rows = _perf_rows(50_000)
    flt = compile_filter({"category": {"$eq": "c3"}})
    indexed = MetadataTable(["category", "year"], use_numpy=True)
    indexed.load(rows)
    plain = MetadataTable([], use_numpy=True)
    plain.load(rows)
    want = expected(rows, {"category": "c3"})
    assert list(indexed.select(flt)) == want == list(plain.select(flt))
    fast = _best_ms(lambda: indexed.select(flt), 20)
    slow = _best_ms(lambda: plain.select(flt), 5)
    print(f"\n50k rows, category == c3: indexed {fast:.3f} ms, not indexed {slow:.1f} ms")
    assert fast < 2.0
    assert slow < 60.0


def test_updates_do_not_scale_with_row_count() -> None:
    """set/swap_remove/append cost about the same on 2k and 100k rows (an O(n) rebuild would be ~50x)."""

    def per_op_us(n: int) -> float:
        t = MetadataTable(["category", "year"], use_numpy=True)
        t.load(_perf_rows(n))
        rng = random.Random(1)

        def churn() -> None:
            for k in range(500):
                t.set(rng.randrange(len(t)), {"category": f"c{k % 7}", "year": k})
                t.swap_remove(rng.randrange(len(t)))
                t.append({"category": "new", "year": 2000})

        return _best_ms(churn, 3) * 1000 / 1500

    small, large = per_op_us(2_000), per_op_us(100_000)
    print(f"\nper update op: {small:.1f} us at 2k rows, {large:.1f} us at 100k rows")
    assert large < 5 * small + 5


# --------------------------------------------------------------------------- property tests

# A small value universe so that filters often hit rows (equal values across rows, lists holding them).
KEYS = ["a", "b"]
PATHS = ["a", "b", "a.b", "a.0", "b.0", "c"]
scalars = st.sampled_from([None, True, False, 0, 1, 1.0, -0.0, 2, 2.5, 2**53 + 1, "", "a", "b"])
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)),
    max_leaves=4,
)
any_value = st.one_of(scalars, json_values)
metadata_st = st.dictionaries(st.sampled_from(KEYS), any_value, max_size=2)
comparable = st.sampled_from([-1, 0, 1, 2, 2.5, 2**53, "", "a", "b"])


def _operand(op: str) -> st.SearchStrategy[Any]:
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return comparable
    if op in ("$in", "$nin"):
        return st.lists(any_value, max_size=3)
    if op == "$exists":
        return st.booleans()
    if op == "$not":
        return st.sampled_from(["$eq", "$gt", "$in", "$exists", "$lte"]).flatmap(
            lambda o: _operand(o).map(lambda a: {o: a})
        )
    return any_value


op_doc = st.lists(
    st.sampled_from(
        ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$not"]
    ).flatmap(lambda op: _operand(op).map(lambda a: (op, a))),
    min_size=1,
    max_size=2,
).map(dict)
leaf = st.dictionaries(st.sampled_from(PATHS), st.one_of(scalars, op_doc, op_doc, json_values), min_size=1, max_size=2)
filter_st = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        inner.map(lambda f: {"$not": f}),
        st.tuples(leaf, inner).map(lambda t: {**t[0], "$or": [t[1]]}),
    ),
    max_leaves=4,
)
ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("append"), metadata_st),
        st.tuples(st.just("set"), st.floats(0, 1, exclude_max=True), metadata_st),
        st.tuples(st.just("swap_remove"), st.floats(0, 1, exclude_max=True)),
    ),
    max_size=12,
)


def _apply(op: Any, tables: list[MetadataTable], model: list[dict[str, Any]]) -> None:
    """One operation on every table and on the plain-list model (swap_remove as the kernel does it)."""
    if op[0] == "append":
        model.append(op[1])
        for t in tables:
            t.append(op[1])
    elif not model:
        return
    elif op[0] == "set":
        row = int(op[1] * len(model))
        model[row] = op[2]
        for t in tables:
            t.set(row, op[2])
    else:
        row = int(op[1] * len(model))
        last = model.pop()
        if row < len(model):
            model[row] = last
        for t in tables:
            t.swap_remove(row)


def _check(tables: list[MetadataTable], model: list[dict[str, Any]], filters: list[Filter], count: bool) -> None:
    for t in tables:
        assert len(t) == len(model) and rows_of(t) == model
    for flt in filters:
        want = [i for i, m in enumerate(model) if flt.matches(m)]
        for t in tables:
            assert list(t.select(flt)) == want, (flt, t.indexed, t.uses_numpy)
            if count:
                assert t.count(flt) == len(want)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rows=st.lists(metadata_st, max_size=12),
    ops=ops_st,
    specs=st.lists(st.one_of(leaf, filter_st), min_size=1, max_size=6),
    indexed=st.lists(st.sampled_from(PATHS), unique=True, max_size=4),
)
def test_select_agrees_with_matches(
    rows: list[dict[str, Any]], ops: list[Any], specs: list[dict[str, Any]], indexed: list[str]
) -> None:
    """Indexed or not, numpy or pure: select == [rows where matches], after load and after every update."""
    tables = [
        MetadataTable(indexed, use_numpy=True),
        MetadataTable(indexed, use_numpy=False),
        MetadataTable(PATHS, use_numpy=True),
        MetadataTable(PATHS, use_numpy=False),
        MetadataTable([], use_numpy=True),
    ]
    filters = [compile_filter(spec) for spec in specs]
    for t in tables:
        t.load(rows)
    model = list(rows)
    _check(tables, model, filters, count=True)
    for op in ops:
        _apply(op, tables, model)
        _check(tables, model, filters, count=False)
    _check(tables, model, filters, count=True)
    _check(tables, model, _probes(model), count=False)


def _probes(model: list[dict[str, Any]]) -> list[Filter]:
    """Filters built from the values actually present, so each one matches some rows and misses others."""
    specs: list[dict[str, Any]] = []
    for path in PATHS:
        specs += [{path: {"$exists": True}}, {path: None}]
        seen: list[Any] = []
        for m in model:
            found, v = get_path(m, path)
            if found and v not in seen and len(seen) < 3:
                seen.append(v)
        for v in seen:
            specs += [{path: {"$eq": v}}, {path: {"$ne": v}}, {path: {"$in": [v, "b"]}}, {path: {"$not": {"$eq": v}}}]
            for e in v if isinstance(v, list) else [v]:
                specs += [{path: {"$contains": e}}, {path: e}]
                if e.__class__ in (int, float, str):
                    specs += [{path: {"$gte": e}}, {path: {"$lt": e}}]
    return [compile_filter(s) for s in specs]


_scalars = st.one_of(
    st.sampled_from(["a", "b", "c3", ""]),
    st.integers(-3, 3),
    st.booleans(),
    st.none(),
    st.sampled_from([2**70, -(2**65), 0.5, -0.0, 1.0]),
    st.lists(st.integers(0, 2), max_size=2),
)
_metadata = st.one_of(
    st.fixed_dictionaries({}, optional={"v": _scalars, "o": st.fixed_dictionaries({}, optional={"k": _scalars})}),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_metadata, max_size=40), use_numpy=st.booleans())
def test_load_builds_the_same_columns_as_appending(rows: list[dict[str, Any]], use_numpy: bool) -> None:
    """``load`` interns repeated values in bulk; it must leave exactly the state row-by-row appends leave."""
    loaded = MetadataTable(["v", "o.k"], use_numpy=use_numpy)
    loaded.load(rows)
    appended = MetadataTable(["v", "o.k"], use_numpy=use_numpy)
    for m in rows:
        appended.append(m)
    for path in ("v", "o.k"):
        a, b = loaded._columns[path], appended._columns[path]
        assert list(a.codes[: a.n]) == list(b.codes[: b.n])
        assert a.values == b.values and a.refs == b.refs and a.complex == b.complex and a.code_of == b.code_of
        if use_numpy:
            assert np.array_equal(a.num[: a.n], b.num[: b.n], equal_nan=True)
    for spec in ({"v": 1}, {"v": True}, {"v": "a"}, {"o.k": {"$in": [0, "b"]}}, {"v": {"$gt": 0}}):
        assert list(loaded.select(spec)) == list(appended.select(spec)) == expected(rows, spec)
