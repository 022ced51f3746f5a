"""Metadata validation, dotted-path lookup and MongoDB-style filters (pyapp.metadata, pyapp.filters)."""

from __future__ import annotations

import collections
import enum
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp.errors import ClinvecError, InvalidFilter, InvalidInput, InvalidMetadata
from pyapp.filters import MAX_FILTER_DEPTH, Filter, compile_filter, json_equal
from pyapp.metadata import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    check_no_lone_surrogates,
    get_path,
    parse_json,
    validate_metadata,
)

# --------------------------------------------------------------------------- validate_metadata


class Color(enum.IntEnum):
    RED = 3


class Tag(str):
    pass


def test_validate_returns_deep_copy_with_json_types() -> None:
    src = {"a": [1, {"b": (2, 3)}], "c": collections.OrderedDict(x=1.5), "d": Color.RED, "e": Tag("t"), "f": None}
    out = validate_metadata(src)
    assert out == {"a": [1, {"b": [2, 3]}], "c": {"x": 1.5}, "d": 3, "e": "t", "f": None}
    assert type(out["d"]) is int and type(out["e"]) is str and type(out["c"]) is dict
    src["a"][1]["b"] = "changed"
    assert out["a"][1]["b"] == [2, 3]
    assert out["a"] is not src["a"]


def test_validate_keeps_non_ascii_text() -> None:
    src = {"sé": ["naïve", {"k": "é", "e": "\U0001f600"}], "ward": "Säl 3"}
    assert validate_metadata(src) == src


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"s\udfff": 1}, "metadata: key 's\\udfff'"),
        ({"a": "bad\ud800"}, "metadata.a:"),
        ({"a": ["ok", {"k": "x\udc00"}]}, "metadata.a[1].k:"),
        ({"a": {"\ud800": 1}}, "metadata.a: key '\\ud800'"),
    ],
)
def test_validate_rejects_lone_surrogates(bad: Any, where: str) -> None:
    """A lone surrogate is not Unicode text: no UTF-8 export, terminal or browser could carry it (defect 14)."""
    with pytest.raises(InvalidMetadata, match="lone surrogate") as info:
        validate_metadata(bad)
    assert str(info.value).startswith(where)


def test_check_no_lone_surrogates() -> None:
    check_no_lone_surrogates("plain", "id")
    check_no_lone_surrogates("naïve \U0001f600", "id")
    with pytest.raises(InvalidInput, match=r"^id: holds a lone surrogate '\\ud800' at position 2"):
        check_no_lone_surrogates("ab\ud800", "id")


def test_validate_int_digit_limit() -> None:
    """Integers round-trip up to MAX_INT_DIGITS digits (what every JSON reader here parses); longer ones are
    rejected up front instead of failing in the store's encoder (defect 13)."""
    edge = 10**MAX_INT_DIGITS - 1
    assert validate_metadata({"n": edge, "m": [-edge]}) == {"n": edge, "m": [-edge]}
    for bad in ({"n": 10**MAX_INT_DIGITS}, {"n": [-(10**5000)]}, {"n": {"x": 10**5000}}):
        with pytest.raises(InvalidMetadata, match="more than 4300 digits"):
            validate_metadata(bad)


def test_validate_rejects_very_deep_nesting_without_recursion_error() -> None:
    deep: Any = 1
    for _ in range(100_000):
        deep = {"a": [deep]}
    with pytest.raises(InvalidMetadata, match=f"nested deeper than {MAX_DEPTH} levels"):
        validate_metadata({"d": deep})


def test_parse_json_failures_are_clinvec_errors() -> None:
    assert parse_json('{"a": [1, 2.5, "x"]}', "arg") == {"a": [1, 2.5, "x"]}
    cases = {
        "{": "not valid JSON",
        "[" * 100_000 + "]" * 100_000: "nested too deeply",
        "1" * 5000: "not accepted JSON",
        b"\xff\xfe": "not UTF-8",
    }
    for text, message in cases.items():
        with pytest.raises(InvalidInput, match=message):
            parse_json(text, "arg")


def test_validate_keeps_bools_distinct_from_ints() -> None:
    out = validate_metadata({"t": True, "f": False, "one": 1})
    assert out["t"] is True and out["f"] is False and type(out["one"]) is int


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"labs": [1, 2, {3}]}, "metadata.labs[2]: set is not JSON"),
        ({"x": float("nan")}, "metadata.x: float nan is not JSON"),
        ({"x": [float("inf")]}, "metadata.x[0]: float inf"),
        ({"x": {"y": -math.inf}}, "metadata.x.y: float -inf"),
        ({"x": b"raw"}, "metadata.x: bytes is not JSON"),
        ({"x": object()}, "metadata.x: object is not JSON"),
        ({"x": {1: "a"}}, "metadata.x: key 1 (int) is not a string"),
        ({"p": {"q": frozenset()}}, "metadata.p.q: frozenset is not JSON"),
        ({"a b": complex(1, 2)}, 'metadata["a b"]: complex is not JSON'),
    ],
)
def test_validate_rejects_non_json_naming_the_path(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidMetadata) as info:
        validate_metadata(bad)
    assert message in str(info.value)


@pytest.mark.parametrize("top", [[1, 2], None, "text", 3, ("a", 1)])
def test_validate_rejects_non_dict_top_level(top: Any) -> None:
    with pytest.raises(InvalidMetadata, match=r"^metadata: \w+ is not a JSON object"):
        validate_metadata(top)


def test_validate_rejects_cycles_and_excessive_depth() -> None:
    cyc: dict[str, Any] = {"a": []}
    cyc["a"].append(cyc)
    with pytest.raises(InvalidMetadata, match=r"metadata\.a\[0\]: dict contains itself"):
        validate_metadata(cyc)
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidMetadata, match="nested deeper"):
        validate_metadata({"d": deep})
    shared = [1]
    assert validate_metadata({"a": shared, "b": shared}) == {"a": [1], "b": [1]}  # sharing is not a cycle


def test_invalid_metadata_is_a_clinvec_error() -> None:
    assert issubclass(InvalidMetadata, ClinvecError)


# --------------------------------------------------------------------------- get_path


def test_get_path_traverses_objects_and_list_indexes() -> None:
    m = {"patient": {"age": 50, "ids": ["x", {"k": None}]}, "0": "zero", "n": None}
    assert get_path(m, "patient.age") == (True, 50)
    assert get_path(m, "patient.ids.0") == (True, "x")
    assert get_path(m, "patient.ids.1.k") == (True, None)
    assert get_path(m, "0") == (True, "zero")  # a numeric segment is a key on an object
    assert get_path(m, "n") == (True, None)
    assert get_path(m, "patient") == (True, m["patient"])


@pytest.mark.parametrize(
    "path",
    [
        "missing",
        "patient.x",
        "patient.ids.2",
        "patient.ids.01",
        "patient.ids.-1",
        "patient.age.x",
        "patient.ids.x",
        "n.x",
        "patient.ids.0.0",
    ],
)
def test_get_path_absent(path: str) -> None:
    m = {"patient": {"age": 50, "ids": ["x", {"k": None}]}, "n": None}
    assert get_path(m, path) == (False, None)


# --------------------------------------------------------------------------- operators

ROWS: list[dict[str, Any]] = [
    {"name": "a", "age": 30, "ward": "icu", "tags": ["x", "y"], "patient": {"age": 70, "sex": "f"}},  # 0
    {"name": "b", "age": 30.0, "ward": "er", "tags": ["y"], "nums": [1, 5, 9]},  # 1
    {"name": "c", "age": True, "ward": None, "tags": [], "nums": [[1, 5], 2]},  # 2
    {"name": "d", "age": "40", "tags": "x", "patient": {"age": 20}},  # 3
    {"name": "e", "age": 45.5, "ward": ["icu", "er"], "nums": 5},  # 4
    {"name": "f", "obj": {"k": 1, "j": [1, 2]}, "flag": False},  # 5
    {"name": "g", "age": None, "flag": 0, "obj": {"j": [1, 2], "k": 1.0}},  # 6
]


def names(spec: Any) -> str:
    flt = compile_filter(spec)
    return "".join(r["name"] for r in ROWS if flt.matches(r))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "abcdefg"),
        ({"age": 30}, "ab"),  # 1 == 1.0
        ({"age": {"$eq": 30.0}}, "ab"),
        ({"age": True}, "c"),  # bool only equals bool
        ({"flag": False}, "f"),
        ({"flag": 0}, "g"),
        ({"age": 1}, ""),
        ({"age": "40"}, "d"),
        ({"age": 40}, ""),
        ({"age": None}, "fg"),  # null or missing
        ({"ward": None}, "cdfg"),
        ({"ward": "icu"}, "ae"),  # list element
        ({"ward": ["icu", "er"]}, "e"),  # whole list
        ({"ward": ["er", "icu"]}, ""),  # list order matters
        ({"nums": [1, 5]}, "c"),  # element that is itself a list
        ({"nums": 5}, "be"),
        ({"obj": {"j": [1, 2], "k": 1}}, "fg"),  # object equality ignores key order, 1 == 1.0
        ({"obj": {"k": 1}}, ""),
        ({"obj": {}}, ""),
        ({"patient.age": 70}, "a"),
        ({"patient": {"age": 20}}, "d"),
        ({"tags.0": "x"}, "a"),
        ({"tags.1": "y"}, "a"),
        ({"name": "a", "age": 30}, "a"),  # implicit AND
    ],
)
def test_equality(spec: dict[str, Any], expected: str) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"age": {"$ne": 30}}, "cdefg"),  # includes rows lacking the field
        ({"age": {"$ne": None}}, "abcde"),
        ({"ward": {"$ne": "icu"}}, "bcdfg"),  # a list containing it is excluded
        ({"tags": {"$ne": "x"}}, "bcefg"),
        ({"flag": {"$ne": False}}, "abcdeg"),
    ],
)
def test_ne(spec: dict[str, Any], expected: str) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"age": {"$gt": 30}}, "e"),
        ({"age": {"$gte": 30}}, "abe"),
        ({"age": {"$lt": 45.5}}, "ab"),
        ({"age": {"$lte": 45.5}}, "abe"),
        ({"age": {"$gt": 0}}, "abe"),  # True is not a number, "40" is not a number
        ({"age": {"$gte": "4"}}, "d"),  # strings compare with strings only
        ({"age": {"$lt": "5"}}, "d"),
        ({"name": {"$gt": "e"}}, "fg"),
        ({"nums": {"$gt": 8}}, "b"),  # any list element
        ({"nums": {"$lt": 2}}, "b"),  # [[1,5],2]: nested list is not a number
        ({"nums": {"$gte": 2}}, "bce"),
        ({"tags": {"$gte": "y"}}, "ab"),
        ({"age": {"$gt": 29, "$lt": 31}}, "ab"),  # several operators on one field
        ({"missing": {"$lt": 1}}, ""),
        ({"age": {"$lt": 10**400}}, "abe"),  # huge int operand compared exactly
    ],
)
def test_comparisons(spec: dict[str, Any], expected: str) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"ward": {"$in": ["er", "ward9"]}}, "be"),
        ({"age": {"$in": [30, True]}}, "abc"),
        ({"age": {"$in": [1]}}, ""),
        ({"ward": {"$in": [None]}}, "cdfg"),  # null matches missing
        ({"ward": {"$in": []}}, ""),
        ({"ward": {"$in": [["icu", "er"]]}}, "e"),
        ({"obj": {"$in": [{"k": 1, "j": [1, 2]}]}}, "fg"),
        ({"nums": {"$in": [[1, 5], 9]}}, "bc"),
        ({"ward": {"$nin": ["er", "ward9"]}}, "acdfg"),
        ({"ward": {"$nin": []}}, "abcdefg"),
        ({"ward": {"$nin": [None]}}, "abe"),
        ({"ward": {"$in": ("icu",)}}, "ae"),  # a tuple is accepted as a list
    ],
)
def test_in_nin(spec: dict[str, Any], expected: str) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"ward": {"$exists": True}}, "abce"),  # null counts as present
        ({"ward": {"$exists": False}}, "dfg"),
        ({"patient.sex": {"$exists": True}}, "a"),
        ({"tags.0": {"$exists": True}}, "ab"),
        ({"tags.1": {"$exists": True}}, "a"),
        ({"tags": {"$contains": "x"}}, "a"),  # "x" as a plain string is not a list
        ({"tags": {"$contains": "y"}}, "ab"),
        ({"nums": {"$contains": 5}}, "b"),  # 5 (not a list) is not matched
        ({"nums": {"$contains": [1, 5]}}, "c"),
        ({"nums": {"$contains": 5.0}}, "b"),
        ({"name": {"$contains": "a"}}, ""),  # no substring semantics
    ],
)
def test_exists_contains(spec: dict[str, Any], expected: str) -> None:
    assert names(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"$and": [{"ward": "icu"}, {"age": 30}]}, "a"),
        ({"$or": [{"ward": "icu"}, {"age": 30}]}, "abe"),
        ({"$or": [{"age": {"$gt": 40}}, {"flag": {"$exists": True}}], "name": {"$ne": "g"}}, "ef"),
        ({"$not": {"ward": "icu"}}, "bcdfg"),
        ({"$not": {}}, ""),
        ({"age": {"$not": {"$gt": 30}}}, "abcdfg"),  # includes rows lacking the field
        ({"age": {"$not": {"$gte": 30, "$lt": 40}}}, "cdefg"),
        ({"age": {"$not": {"$eq": None}}}, "abcde"),
        ({"$and": [{}, {"name": "a"}]}, "a"),
        ({"$or": [{"$and": [{"age": 30}, {"ward": "er"}]}, {"$not": {"name": {"$lt": "g"}}}]}, "bg"),
    ],
)
def test_logical(spec: dict[str, Any], expected: str) -> None:
    assert names(spec) == expected


def test_paths_and_identity() -> None:
    flt = compile_filter({"a": 1, "$or": [{"b.c": 2}, {"$not": {"d": {"$exists": True}}}], "e": {"$not": {"$gt": 1}}})
    assert flt.paths == {"a", "b.c", "d", "e"}
    assert compile_filter({}).paths == frozenset()
    assert compile_filter(flt) is flt
    assert isinstance(flt, Filter)


def test_filter_is_independent_of_the_spec_object() -> None:
    spec: dict[str, Any] = {"tags": {"$in": ["x"]}}
    flt = compile_filter(spec)
    spec["tags"]["$in"].append("y")
    assert flt.matches({"tags": "x"}) and not flt.matches({"tags": "y"})


def test_json_equal() -> None:
    assert json_equal(1, 1.0) and json_equal(-0.0, 0) and not json_equal(True, 1) and not json_equal(0, False)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal([1, 2], [2, 1]) and not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal(None, False) and not json_equal("1", 1) and not json_equal([], {})


def test_big_ints_compare_exactly() -> None:
    big = 2**53 + 1
    assert compile_filter({"v": big}).matches({"v": big})
    assert not compile_filter({"v": big}).matches({"v": float(2**53)})
    assert compile_filter({"v": {"$gt": 2**53}}).matches({"v": big})
    assert not compile_filter({"v": {"$gt": float(2**53)}}).matches({"v": 2**53})


# --------------------------------------------------------------------------- InvalidFilter


class Weird:
    pass


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([{"a": 1}], "a filter must be an object (dict), got list"),
        (None, "got NoneType"),
        ("a = 1", "got str"),
        ({"$nor": [{"a": 1}]}, "unknown operator $nor"),
        ({"$where": "x"}, "unknown operator $where"),
        ({"a": {"$regex": "x"}}, "filter.a.$regex: unknown operator $regex"),
        ({"a": {"$gt": 1, "$foo": 2}}, "unknown operator $foo"),
        ({"a": {"$not": {"$bar": 1}}}, "filter.a.$not.$bar: unknown operator $bar"),
        ({"$or": [{"a": {"$size": 2}}]}, "filter.$or[0].a.$size: unknown operator $size"),
        ({"a": {"$gt": 1, "b": 2}}, "cannot mix operators ($gt) with plain keys ('b')"),
        ({"a": {"$in": "abc"}}, "$in needs a list of values, got str"),
        ({"a": {"$nin": 3}}, "$nin needs a list of values, got int"),
        ({"a": {"$in": {"x": 1}}}, "$in needs a list"),
        ({"a": {"$exists": 1}}, "$exists needs true or false, got int"),
        ({"a": {"$exists": "yes"}}, "$exists needs true or false"),
        ({"a": {"$exists": None}}, "$exists needs true or false"),
        ({"$and": {"a": 1}}, "filter.$and: $and needs a non-empty list of filters"),
        ({"$and": []}, "$and needs a non-empty list"),
        ({"$or": []}, "$or needs a non-empty list"),
        ({"$or": "a"}, "$or needs a non-empty list"),
        ({"$and": [1]}, "filter.$and[0]: a filter must be an object (dict), got int"),
        ({"$or": [{"a": 1}, [{"b": 2}]]}, "filter.$or[1]: a filter must be an object"),
        ({"$not": [{"a": 1}]}, "filter.$not: a filter must be an object"),
        ({"$not": 5}, "filter.$not: a filter must be an object"),
        ({"a": {"$not": 5}}, "$not on a field needs an operator document"),
        ({"a": {"$not": {}}}, "$not needs at least one operator"),
        ({"a": {"$not": {"b": 1}}}, "$not on a field takes operators only"),
        ({"a": {"$not": {"$gt": 1, "b": 1}}}, "$not on a field takes operators only"),
        ({"a": {"$gt": True}}, "$gt needs a number or a string, got bool"),
        ({"a": {"$lt": None}}, "$lt needs a number or a string, got NoneType"),
        ({"a": {"$gte": [1]}}, "$gte needs a number or a string, got list"),
        ({"a": {"$lte": {"x": 1}}}, "$lte needs a number or a string, got dict"),
        ({"a": {"$gt": float("nan")}}, "filter.a.$gt: float nan is not JSON"),
        ({"a": {"$lt": float("inf")}}, "float inf is not JSON"),
        ({"a": float("nan")}, "filter.a: float nan is not JSON"),
        ({"a": {"$eq": b"x"}}, "filter.a.$eq: bytes is not JSON"),
        ({"a": {"$in": [1, {2}]}}, "filter.a.$in[1]: set is not JSON"),
        ({"a": {"$contains": Weird()}}, "Weird is not JSON"),
        ({"a": {"x": {"$gt": 1}}}, "filter.a.x.$gt: operator $gt inside a literal value"),
        ({"a": {"$eq": {"$gt": 1}}}, "operator $gt inside a literal value"),
        ({"a": {"$in": [{"$eq": 1}]}}, "operator $eq inside a literal value"),
        ({"": 1}, "bad field path"),
        ({"a..b": 1}, "bad field path"),
        ({"a.": 1}, "bad field path"),
        ({1: "a"}, "filter: key 1 (int) is not a string"),
        ({"a": {"$gt": 1, 2: 3}}, "key 2 (int) is not a string"),
        ({"$eq": 1}, "filter.$eq: $eq must be applied to a field"),
        ({"$exists": True}, "$exists must be applied to a field"),
        ({"a": {"$and": [{"b": 1}]}}, "filter.a.$and: $and is only allowed at the top level"),
        ({"a": {"$or": [{"b": 1}]}}, "$or is only allowed at the top level"),
    ],
)
def test_invalid_filters(spec: Any, message: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        compile_filter(spec)
    assert message in str(info.value)


def test_invalid_filter_is_a_clinvec_error() -> None:
    assert issubclass(InvalidFilter, ClinvecError)


# --------------------------------------------------------------------------- property tests
#
# An independent reference evaluator, written straight from the MongoDB rules in the brief
# (candidates = the value plus, for a list, its elements), shares no code with pyapp.filters.

_ABSENT = object()
_DIGITS = re.compile(r"(0|[1-9][0-9]*)$")


def kind(v: Any) -> str:
    if v is _ABSENT:
        return "absent"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    assert isinstance(v, dict)
    return "object"


def ref_equal(a: Any, b: Any) -> bool:
    ka, kb = kind(a), kind(b)
    if ka != kb:
        return False
    if ka == "array":
        return len(a) == len(b) and all(ref_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return set(a) == set(b) and all(ref_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def ref_lookup(doc: Any, path: str) -> Any:
    cur = doc
    for seg in path.split("."):
        if kind(cur) == "object" and seg in cur:
            cur = cur[seg]
        elif kind(cur) == "array" and _DIGITS.match(seg) and int(seg) < len(cur):
            cur = cur[int(seg)]
        else:
            return _ABSENT
    return cur


def candidates(v: Any) -> list[Any]:
    if v is _ABSENT:
        return []
    return [v, *v] if kind(v) == "array" else [v]


def ref_eq(v: Any, x: Any) -> bool:
    if v is _ABSENT:
        return x is None
    return any(ref_equal(c, x) for c in candidates(v))


def ref_ops(v: Any, ops: dict[str, Any]) -> bool:
    results = []
    for op, arg in ops.items():
        if op == "$eq":
            results.append(ref_eq(v, arg))
        elif op == "$ne":
            results.append(not ref_eq(v, arg))
        elif op == "$in":
            results.append(any(ref_eq(v, x) for x in arg))
        elif op == "$nin":
            results.append(not any(ref_eq(v, x) for x in arg))
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            hit = False
            for c in candidates(v):
                if kind(c) == kind(arg) and kind(c) in ("number", "string"):
                    hit = hit or {"$gt": c > arg, "$gte": c >= arg, "$lt": c < arg, "$lte": c <= arg}[op]
            results.append(hit)
        elif op == "$exists":
            results.append((v is not _ABSENT) == arg)
        elif op == "$contains":
            results.append(kind(v) == "array" and any(ref_equal(e, arg) for e in v))
        elif op == "$not":
            results.append(not ref_ops(v, arg))
        else:
            raise AssertionError(op)
    return all(results)


def ref_match(doc: dict[str, Any], spec: dict[str, Any]) -> bool:
    for key, val in spec.items():
        if key == "$and":
            ok = all(ref_match(doc, s) for s in val)
        elif key == "$or":
            ok = any(ref_match(doc, s) for s in val)
        elif key == "$not":
            ok = not ref_match(doc, val)
        elif isinstance(val, dict) and val and all(k.startswith("$") for k in val):
            ok = ref_ops(ref_lookup(doc, key), val)
        else:
            ok = ref_eq(ref_lookup(doc, key), val)
        if not ok:
            return False
    return True


KEYS = ["a", "b", "0"]
PATHS = ["a", "b", "a.b", "a.0", "b.1", "a.b.0", "0", "c"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([-1.5, -0.0, 0.0, 1.0, 2.0, 2.5, 2**53 + 1, 2**60, float(2**53)]),
    st.sampled_from(["", "a", "b", "ab", "B", "1"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
metadata_st = st.dictionaries(st.sampled_from(KEYS), st.one_of(scalars, json_values), max_size=3)
comparable = st.one_of(
    st.integers(-3, 3), st.sampled_from([-1.5, 0.0, 2.5, 2**53, 2**53 + 1]), st.sampled_from(["", "a", "ab", "b", "B"])
)


OPS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$not"]
any_value = st.one_of(scalars, json_values)


def _operand_for(op: str, depth: int) -> st.SearchStrategy[Any]:
    if op in ("$eq", "$ne", "$contains"):
        return any_value
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return comparable
    if op in ("$in", "$nin"):
        return st.lists(any_value, max_size=3)
    if op == "$exists":
        return st.booleans()
    return _op_doc(depth - 1)


def _op_doc(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    names = OPS if depth > 0 else OPS[:-1]
    one = st.sampled_from(names).flatmap(lambda op: _operand_for(op, depth).map(lambda arg: (op, arg)))
    return st.lists(one, min_size=1, max_size=2).map(dict)


field_value = st.one_of(
    scalars,
    _op_doc(1),
    st.lists(any_value, max_size=2),
    st.dictionaries(st.sampled_from(KEYS), json_values, min_size=1, max_size=2),
)
leaf_filter = st.dictionaries(st.sampled_from(PATHS), field_value, min_size=0, max_size=2)


def _combine(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        inner.map(lambda f: {"$not": f}),
        st.tuples(inner, leaf_filter).map(lambda t: {**t[1], "$or": [t[0]]}),
    )


filter_st = st.recursive(leaf_filter, _combine, max_leaves=5)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filter_st, st.lists(metadata_st, min_size=1, max_size=8))
def test_matches_agrees_with_reference(spec: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    flt = compile_filter(spec)
    for doc in docs:
        doc = validate_metadata(doc)
        assert flt.matches(doc) == ref_match(doc, spec), (spec, doc)


@settings(max_examples=100, deadline=None)
@given(metadata_st)
def test_validate_roundtrips_json_data(doc: dict[str, Any]) -> None:
    out = validate_metadata(doc)
    assert ref_equal(out, doc) and out == doc
    for path in PATHS:
        found, value = get_path(out, path)
        ref = ref_lookup(out, path)
        assert found == (ref is not _ABSENT)
        assert value is (None if ref is _ABSENT else ref)


single_value = st.one_of(scalars, st.lists(st.one_of(scalars, st.lists(scalars, max_size=2)), max_size=3), json_values)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_op_doc(1), _op_doc(1), scalars, json_values), st.lists(single_value, min_size=1, max_size=20))
def test_single_field_agrees_with_reference(cond: Any, values: list[Any]) -> None:
    """Focused on type interplay (bool/int/float/str/null/lists) at one field, many values per filter."""
    spec = {"a": cond}
    flt = compile_filter(spec)
    for doc in [{"a": v} for v in values] + [{}]:
        assert flt.matches(doc) == ref_match(doc, spec), (spec, doc)


# ----- the compiled-filter cache


def test_cache_never_shares_filters_across_types() -> None:
    from pyapp.filters import compile_filter

    one, true, one_float = compile_filter({"a": 1}), compile_filter({"a": True}), compile_filter({"a": 1.0})
    assert compile_filter({"a": 1}) is one  # cached
    assert one is not true and one is not one_float and true is not one_float
    assert one.matches({"a": 1}) and not one.matches({"a": True})
    assert true.matches({"a": True}) and not true.matches({"a": 1})
    assert compile_filter({"a": [1]}) is not compile_filter({"a": (1,)})


def test_cache_does_not_let_an_invalid_filter_through() -> None:
    from pyapp.filters import compile_filter

    compile_filter({"1": {"$eq": 2}})
    with pytest.raises(InvalidFilter):
        compile_filter({1: {"$eq": 2}})  # type: ignore[dict-item]
    compile_filter({"a": {"$in": [1, 2]}})
    with pytest.raises(InvalidFilter):
        compile_filter({"a": {"$in": {1, 2}}})  # a set is not JSON


def test_cached_filter_is_independent_of_the_callers_dict() -> None:
    from pyapp.filters import compile_filter

    spec = {"ward": {"$in": ["ICU", "ED"]}}
    first = compile_filter(spec)
    spec["ward"]["$in"].append("OR")  # the caller reuses and changes its dict
    changed = compile_filter(spec)
    assert first is not changed
    assert not first.matches({"ward": "OR"}) and changed.matches({"ward": "OR"})


def _nest(kind: str, levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"ward": "ICU"}
    for _ in range(levels):
        if kind == "$not-field":
            spec = {"ward": {"$not": spec["ward"] if "$not" in str(spec) else {"$eq": "ED"}}}
        elif kind == "$not":
            spec = {"$not": spec}
        else:
            spec = {kind: [spec]}
    return spec


@pytest.mark.parametrize("kind", ["$and", "$or", "$not"])
def test_filters_nested_hundreds_deep_are_invalid_filter(kind: str) -> None:
    """500 levels used to overflow the recursive compiler (RecursionError, defect 13): a documented limit now."""
    with pytest.raises(InvalidFilter, match=f"nested deeper than {MAX_FILTER_DEPTH} levels"):
        compile_filter(_nest(kind, 500))
    shallow = compile_filter(_nest(kind, 20))  # well within the limit: still compiles and matches
    assert shallow.matches({"ward": "ICU"}) is (kind != "$not" or 20 % 2 == 0)


def test_field_not_and_literals_nested_deep_are_invalid_filter() -> None:
    cond: Any = {"$eq": 1}
    for _ in range(500):
        cond = {"$not": cond}
    with pytest.raises(InvalidFilter, match="nested deeper"):
        compile_filter({"n": cond})
    literal: Any = 1
    for _ in range(5000):
        literal = [literal]
    with pytest.raises(InvalidFilter, match="nested deeper"):
        compile_filter({"n": literal})
