"""The LocalIndex contract: one set of cases, run unchanged on CPython and inside the page (Pyodide).

Why plain async functions and no pytest/numpy here: this file's source is shipped into the browser
worker (``test_contract_browser.py``) and executed there as a module, where neither exists. Every case is
``async def case_<name>(locations) -> observation``: it uses only the public ``pyapp`` API, checks the
behaviour with ``assert``, and returns a deterministic JSON-able observation (ids, scores, error names).
The CPython suite runs each case on the file store and the memory store, the browser suite on IndexedDB
with the JS kernel, and every observation must agree (scores within ``SCORE_TOL``) across all of them.

``locations`` is a :class:`Scope`: call it for a fresh location, and open indexes through it so that
``run_case`` can close and drop everything even when a case fails half-way.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pyapp import (
    ClinvecError,
    DimensionMismatch,
    DuplicateId,
    IndexClosed,
    IndexExists,
    IndexNotFound,
    InvalidFilter,
    InvalidInput,
    InvalidMetadata,
    InvalidVector,
    LocalIndex,
    NoEmbedder,
    NoUpdateInProgress,
    ReadOnlyIndex,
    StorageError,
    StorageFull,
    UpdateInProgress,
)
from pyapp.index import DEFAULT_RRF_K, DEFAULT_WEIGHTS, HYBRID_DEPTH
from pyapp.stores import FaultyStore, store_for

DIMS = 8
SCORE_TOL = 1e-5  # float32 kernels (numpy, JS) may differ in the last bits of a dot product
SERVER_ONLY = frozenset({"export_import"})  # cases that need a real file system

Observation = Any
Case = Callable[["Scope"], Awaitable[Observation]]


# --------------------------------------------------------------------------- deterministic data, no numpy


def _mix(x: int) -> int:
    """A 32-bit integer hash (same on every Python): the source of reproducible pseudo-random vectors."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x45D9F3B) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x45D9F3B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def vec(seed: int, dims: int = DIMS) -> list[float]:
    """A reproducible vector with entries k/1024 (exact in float32), never all zero."""
    out = [((_mix(seed * 1_000_003 + i) % 2001) - 1000) / 1024 for i in range(dims)]
    if not any(out):
        out[0] = 1.0
    return out


def unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(unit(a), unit(b)))


def close_to(a: list[float], b: list[float], tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def rounded(values: list[float], digits: int = 5) -> list[float]:
    return [round(v, digits) for v in values]


def hits(results: list[Any]) -> list[list[Any]]:
    """The observable part of a result list: id and the three scores (rounded to 1e-5)."""
    return [
        [
            r.id,
            round(r.score, 5),
            None if r.vector_score is None else round(r.vector_score, 5),
            None if r.keyword_score is None else round(r.keyword_score, 5),
        ]
        for r in results
    ]


async def raises(error: type[BaseException], call: Awaitable[Any] | Callable[[], Any], match: str | None = None) -> str:
    """Assert that ``call`` (an awaitable or a plain callable) raises ``error`` (whose message contains
    ``match``, when given); returns the error's name."""
    try:
        outcome = call() if callable(call) else call
        if hasattr(outcome, "__await__"):
            await outcome
    except error as exc:
        assert match is None or match in str(exc), f"{match!r} not in {str(exc)!r}"
        return type(exc).__name__
    raise AssertionError(f"expected {error.__name__}")


# --------------------------------------------------------------------------- scope: locations and cleanup


class Scope:
    """Fresh locations for one case, and every index the case opened (closed and dropped afterwards)."""

    def __init__(self, new_location: Callable[[], str]) -> None:
        self._new_location = new_location
        self.locations: list[str] = []
        self.opened: list[LocalIndex] = []

    def __call__(self) -> str:
        location = self._new_location()
        self.locations.append(location)
        return location

    async def create(self, location: str, **kwargs: Any) -> LocalIndex:
        kwargs.setdefault("dims", DIMS)
        idx = await LocalIndex.create(location, **kwargs)
        self.opened.append(idx)
        return idx

    async def open(self, location: str, **kwargs: Any) -> LocalIndex:
        idx = await LocalIndex.open(location, **kwargs)
        self.opened.append(idx)
        return idx

    async def cleanup(self) -> None:
        for idx in self.opened:
            try:
                await idx.close()
            except Exception:  # noqa: BLE001, S110 - best effort: the case already reported its failure
                pass
        for location in self.locations:
            try:
                await LocalIndex.drop(location)
            except Exception:  # noqa: BLE001, S110 - best effort
                pass


async def run_case(name: str, new_location: Callable[[], str]) -> Observation:
    """Run ``case_<name>`` with a fresh scope; returns its observation after a JSON round trip."""
    case: Case = globals()[f"case_{name}"]
    scope = Scope(new_location)
    try:
        observed = await case(scope)
    finally:
        await scope.cleanup()
    return json.loads(json.dumps(observed))


def all_cases() -> list[str]:
    """Every case name, in file order."""
    return [
        key[len("case_") :]
        for key, value in globals().items()
        if key.startswith("case_") and inspect.iscoroutinefunction(value)
    ]


def difference(a: Any, b: Any, tol: float = SCORE_TOL, path: str = "$") -> str | None:
    """Where two observations differ (None when equal; floats within ``tol``, bool never equals a number)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return None if (type(a) is type(b) and a == b) else f"{path}: {a!r} != {b!r}"
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return None if abs(a - b) <= tol else f"{path}: {a!r} != {b!r}"
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            found = difference(x, y, tol, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            found = difference(a[key], b[key], tol, f"{path}.{key}")
            if found:
                return found
        return None
    return f"{path}: {type(a).__name__} {a!r} != {type(b).__name__} {b!r}"


# --------------------------------------------------------------------------- lifecycle


async def case_create_open_exists_drop(locations: Scope) -> Observation:
    loc = locations()
    assert await LocalIndex.exists(loc) is False
    await raises(IndexNotFound, LocalIndex.open(loc))
    idx = await locations.create(loc, indexed=["ward"])
    assert await LocalIndex.exists(loc) is True
    assert idx.dims == DIMS and idx.indexed == ["ward"] and idx.read_only is False
    await idx.close()
    await raises(IndexClosed, idx.count())
    await raises(IndexExists, LocalIndex.create(loc, dims=DIMS))
    again = await locations.create(loc, dims=DIMS, exist_ok=True)  # opens the existing one, config kept
    assert again.dims == DIMS and again.indexed == ["ward"]
    await again.close()
    await LocalIndex.drop(loc)
    assert await LocalIndex.exists(loc) is False
    await LocalIndex.drop(loc)  # dropping an absent index is not an error
    bad = [
        await raises(InvalidInput, LocalIndex.create(loc, dims=0)),
        await raises(InvalidInput, LocalIndex.create(loc, dims=DIMS, metric="euclidean")),
        await raises(InvalidInput, LocalIndex.create(loc, dims=DIMS, indexed="ward")),
    ]
    assert await LocalIndex.exists(loc) is False
    return {"bad_config": bad, "manifest": {k: again.manifest[k] for k in ("dims", "metric", "indexed")}}


# --------------------------------------------------------------------------- writes and validation


async def case_insert_get_uuid_normalises(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    new_id = await idx.insert(
        [3, 4, 0, 0, 0, 0, 0, 0], metadata={"a": 1, "nested": {"x": [1, "two", None]}}, text="hello"
    )
    assert uuid.UUID(new_id).version == 4
    item = await idx.get(new_id)
    assert item is not None and item.id == new_id
    assert close_to(item.vector, [0.6, 0.8, 0, 0, 0, 0, 0, 0])
    assert abs(math.sqrt(sum(x * x for x in item.vector)) - 1) < 1e-6
    assert item.metadata == {"a": 1, "nested": {"x": [1, "two", None]}} and item.text == "hello"
    assert await idx.get("missing") is None
    given = await idx.insert(vec(1), id="given")
    assert given == "given"
    assert close_to((await idx.get("given")).vector, unit(vec(1)))
    other = await idx.insert(vec(2))
    assert other not in (new_id, given) and await idx.count() == 3
    # what the caller keeps (its metadata dict, the returned item) cannot reach the stored item
    meta = {"tags": ["a"]}
    await idx.insert(vec(3), metadata=meta, id="m")
    meta["tags"].append("b")
    got = await idx.get("m")
    got.metadata["tags"].append("c")
    assert (await idx.get("m")).metadata == {"tags": ["a"]}
    return {
        "vector": rounded(item.vector),
        "given": rounded((await idx.get("given")).vector),
        "ids": [i for i in await idx.ids() if i in ("given", "m")],
    }


async def case_invalid_vectors_change_nothing(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    await idx.insert(vec(1), id="keep")
    bad: list[tuple[Any, type[ClinvecError]]] = [
        (vec(2)[:-1], DimensionMismatch),
        (vec(2) + [1.0], DimensionMismatch),
        ([math.nan] * DIMS, InvalidVector),
        ([1.0] + [math.nan] + [0.0] * (DIMS - 2), InvalidVector),
        ([math.inf] + [0.0] * (DIMS - 1), InvalidVector),
        ([-math.inf] + [1.0] * (DIMS - 1), InvalidVector),
        ([0.0] * DIMS, InvalidVector),
        (["x"] * DIMS, InvalidVector),
        ("abc", InvalidVector),
        (None, NoEmbedder),
    ]
    names = [await raises(error, idx.insert(vector, id="new")) for vector, error in bad]
    names.append(
        await raises(
            InvalidVector, idx.insert_many([{"id": "ok", "vector": vec(3)}, {"id": "nan", "vector": [math.nan] * DIMS}])
        )
    )
    names.append(
        await raises(
            DimensionMismatch, idx.insert_many([{"id": "ok", "vector": vec(3)}, {"id": "short", "vector": [1.0, 2.0]}])
        )
    )
    names.append(await raises(InvalidVector, idx.upsert("keep", [0.0] * DIMS)))
    assert await idx.count() == 1 and await idx.get("ok") is None and await idx.get("new") is None
    assert close_to((await idx.get("keep")).vector, unit(vec(1)))
    return names


async def case_duplicate_ids(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    await idx.insert(vec(1), id="a")
    names = [
        await raises(DuplicateId, idx.insert(vec(2), id="a")),  # against an existing id
        await raises(DuplicateId, idx.insert_many([{"id": "b", "vector": vec(3)}, {"id": "b", "vector": vec(4)}])),
        await raises(DuplicateId, idx.insert_many([{"id": "c", "vector": vec(3)}, {"id": "a", "vector": vec(4)}])),
        await raises(DuplicateId, idx.upsert_many([{"id": "d", "vector": vec(3)}, {"id": "d", "vector": vec(4)}])),
    ]
    assert await idx.count() == 1 and await idx.ids() == ["a"]
    assert close_to((await idx.get("a")).vector, unit(vec(1)))
    await idx.insert_many([{"id": "b", "vector": vec(3)}, {"id": "c", "vector": vec(4)}])
    assert await idx.ids() == ["a", "b", "c"]
    return names


async def case_metadata_and_argument_validation(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    names = [
        await raises(InvalidMetadata, idx.insert(vec(1), metadata={"x": {1, 2}})),
        await raises(InvalidMetadata, idx.insert(vec(1), metadata={"x": math.nan})),
        await raises(InvalidMetadata, idx.insert(vec(1), metadata={"x": [1, math.inf]})),
        await raises(InvalidMetadata, idx.insert(vec(1), metadata={1: "int key"})),
        await raises(InvalidMetadata, idx.insert(vec(1), metadata={"x": b"bytes"})),
        await raises(InvalidMetadata, idx.insert(vec(1), metadata={"deep": {"er": {"x": object()}}})),
        await raises(InvalidMetadata, idx.insert(vec(1), metadata=["not", "a", "dict"])),
        await raises(InvalidInput, idx.insert(vec(1), id="")),
        await raises(InvalidInput, idx.insert(vec(1), id=42)),
        await raises(InvalidInput, idx.insert(vec(1), id="x" * 513)),
        await raises(InvalidInput, idx.insert(vec(1), text=5)),
        await raises(InvalidInput, idx.insert_many([{"id": "a", "vector": vec(1), "colour": "red"}])),
        await raises(InvalidInput, idx.upsert_many([{"vector": vec(1)}])),
        await raises(InvalidInput, idx.list(limit=-1)),
        await raises(InvalidInput, idx.list(offset=-1)),
    ]
    assert await idx.count() == 0
    ok = await idx.insert(vec(1), id="x" * 512, metadata={"t": (1, 2), "f": 1.5, "n": None, "b": False})
    assert (await idx.get(ok)).metadata == {"t": [1, 2], "f": 1.5, "n": None, "b": False}  # tuples become lists
    return names


async def case_upsert_keeps_order_and_update_metadata(locations: Scope) -> Observation:
    idx = await locations.create(locations(), indexed=["v"])
    await idx.insert(vec(1), metadata={"v": 1}, text="old words", id="a")
    await idx.insert(vec(2), id="b")
    await idx.upsert("a", vec(3), metadata={"v": 2}, text="new words")
    item = await idx.get("a")
    assert item.metadata == {"v": 2} and item.text == "new words" and close_to(item.vector, unit(vec(3)))
    await idx.upsert("c", vec(4))  # upsert of an unknown id inserts it at the end
    await idx.update_metadata("a", {"v": 3, "extra": ["x"]})
    item = await idx.get("a")
    assert item.metadata == {"v": 3, "extra": ["x"]} and item.text == "new words"
    assert close_to(item.vector, unit(vec(3)))  # vector and text untouched
    name = await raises(InvalidInput, idx.update_metadata("zzz", {}))
    bad_meta = await raises(InvalidMetadata, idx.update_metadata("a", {"x": math.nan}))
    await idx.upsert_many([{"id": "b", "vector": vec(5), "metadata": {"v": 9}}, {"id": "d", "vector": vec(6)}])
    assert await idx.ids() == ["a", "b", "c", "d"]  # upserts keep insertion order
    assert [i.id for i in await idx.list()] == ["a", "b", "c", "d"]
    assert await idx.count({"v": 3}) == 1 and await idx.count({"v": 2}) == 0 and await idx.count({"v": 9}) == 1
    assert [h.id for h in await idx.query(text="old", mode="keyword")] == []
    assert [h.id for h in await idx.query(text="new", mode="keyword")] == ["a"]
    top = await idx.query(vec(5), top_k=1)
    assert top[0].id == "b"
    return {"errors": [name, bad_meta], "top": hits(top)}


async def case_delete_variants(locations: Scope) -> Observation:
    idx = await locations.create(locations(), indexed=["g"])
    await idx.insert_many(
        [{"id": f"i{n}", "vector": vec(n), "metadata": {"g": n % 3, "h": n % 2}, "text": f"t{n}"} for n in range(12)]
    )
    assert await idx.delete("i0") is True
    assert await idx.delete("i0") is False  # unknown id: a no-op, as in vectra
    assert await idx.delete_many(["i1", "i2", "nope", "i1"]) == 2
    assert await idx.delete_many([]) == 0
    assert await idx.delete_where({"g": 0}) == 3  # i3, i6, i9 (indexed field)
    assert await idx.delete_where({"h": 1, "g": 2}) == 2  # i5, i11 (unindexed field too)
    assert await idx.delete_where({"g": 99}) == 0
    name = await raises(InvalidFilter, idx.delete_where({"g": {"$regex": "x"}}))
    assert await idx.count() == 4
    ids = [i.id for i in await idx.list()]
    assert ids == ["i4", "i7", "i8", "i10"]
    found = [h.id for h in await idx.query(vec(3), top_k=20)]
    assert sorted(found) == sorted(ids)  # deleted rows never come back from a query
    assert await idx.get("i3") is None
    assert [h.id for h in await idx.query(text="t5", mode="keyword")] == []
    await idx.insert(vec(0), id="i0")  # a deleted id can be used again
    return {"error": name, "ids": await idx.ids(), "query": hits(await idx.query(vec(3), top_k=3))}


# --------------------------------------------------------------------------- filters

PATIENTS: list[dict[str, Any]] = [
    {
        "ward": "ICU",
        "age": 71,
        "tags": ["cardiac", "urgent"],
        "vitals": {"hr": 110, "bp": "high"},
        "labs": [5.1, 7.0],
        "dnr": True,
        "note": None,
    },
    {"ward": "ED", "age": 34, "tags": ["resp"], "vitals": {"hr": 88}, "labs": [4.2], "dnr": False},
    {"ward": "ICU", "age": 58, "tags": [], "vitals": {"hr": 72, "bp": "normal"}, "dnr": False, "note": "stable"},
    {"ward": "ward-3", "age": 80.5, "tags": ["ortho", "urgent"], "labs": [6.5, 3.3, 9.9], "note": None},
    {"ward": "ED", "age": "unknown", "tags": ["cardiac"], "vitals": {"hr": 130, "bp": "low"}, "dnr": True},
    {"age": 45, "vitals": {}, "labs": []},
    {"ward": None, "age": 1, "tags": ["Cardiac"], "dnr": 1},
]

# (filter, ids expected in insertion order): MongoDB semantics, see pyapp/filters.py
FILTER_TABLE: list[tuple[dict[str, Any], list[int]]] = [
    ({"ward": "ICU"}, [0, 2]),
    ({"ward": {"$eq": "ED"}}, [1, 4]),
    ({"ward": {"$ne": "ICU"}}, [1, 3, 4, 5, 6]),  # $ne matches rows lacking the field
    ({"age": {"$gt": 58}}, [0, 3]),  # a string age never compares with a number
    ({"age": {"$gte": 58}}, [0, 2, 3]),
    ({"age": {"$lt": 45}}, [1, 6]),
    ({"age": {"$lte": 45}}, [1, 5, 6]),
    ({"age": {"$gte": 34, "$lt": 72}}, [0, 1, 2, 5]),
    ({"age": {"$gt": "a"}}, [4]),  # string against string
    ({"age": 71.0}, [0]),  # 71 == 71.0
    ({"ward": {"$in": ["ED", "ward-3"]}}, [1, 3, 4]),
    ({"ward": {"$nin": ["ED", "ward-3"]}}, [0, 2, 5, 6]),
    ({"ward": None}, [5, 6]),  # null matches null and missing
    ({"ward": {"$in": [None]}}, [5, 6]),
    ({"note": {"$exists": True}}, [0, 2, 3]),  # present as null counts
    ({"note": {"$exists": False}}, [1, 4, 5, 6]),
    ({"tags": "urgent"}, [0, 3]),  # equality on a list matches an element
    ({"tags": []}, [2]),  # ... or the whole list
    ({"tags": {"$contains": "cardiac"}}, [0, 4]),  # case-sensitive
    ({"tags": {"$contains": "Cardiac"}}, [6]),
    ({"ward": {"$contains": "ICU"}}, []),  # $contains is false on anything but a list
    ({"vitals.hr": {"$gte": 100}}, [0, 4]),  # dotted path into an object
    ({"vitals.bp": {"$exists": False}}, [1, 3, 5, 6]),
    ({"labs.0": {"$gt": 5}}, [0, 3]),  # numeric segment indexes a list
    ({"labs.2": 9.9}, [3]),
    ({"labs": {"$gt": 9}}, [3]),  # comparison on a list: any element
    ({"dnr": True}, [0, 4]),  # True != 1
    ({"dnr": 1}, [6]),
    ({"age": {"$not": {"$gt": 50}}}, [1, 4, 5, 6]),  # field $not: exact negation
    ({"$or": [{"ward": "ICU"}, {"age": {"$lt": 40}}]}, [0, 1, 2, 6]),
    ({"$and": [{"tags": "cardiac"}, {"dnr": True}]}, [0, 4]),
    ({"$not": {"ward": "ICU"}}, [1, 3, 4, 5, 6]),
    ({"ward": "ED", "vitals.hr": {"$lt": 100}}, [1]),  # implicit AND
    ({"vitals": {"hr": 88}}, [1]),  # object equality
    ({"vitals": {"$eq": {"bp": "normal", "hr": 72}}}, [2]),  # key order does not matter
    ({}, [0, 1, 2, 3, 4, 5, 6]),
]

BAD_FILTERS: list[Any] = [
    {"ward": {"$regex": "I.*"}},
    {"ward": {"$like": "I%"}},
    {"$nor": [{"ward": "ICU"}]},
    {"age": {"$gt": True}},
    {"age": {"$gt": [1]}},
    {"age": {"$in": 5}},
    {"note": {"$exists": 1}},
    {"age": {"$not": 5}},
    {"$and": []},
    {"$or": {"ward": "ICU"}},
    {"$eq": 1},
    {"ward": {"$gt": 1, "plain": 2}},
    {"ward": {"$or": [{"a": 1}]}},
    {"a..b": 1},
    {"ward": {"$eq": {"$gt": 1}}},
    "ward == ICU",
    ["ward"],
]


async def case_filter_operators(locations: Scope) -> Observation:
    """Every operator, on an index with the fields columnar (indexed) and on one without: same answers."""
    plain = await locations.create(locations())
    columnar = await locations.create(locations(), indexed=["ward", "age", "tags", "vitals.hr", "labs.0", "dnr"])
    items = [{"id": f"p{n}", "vector": vec(100 + n), "metadata": meta} for n, meta in enumerate(PATIENTS)]
    await plain.insert_many(items)
    await columnar.insert_many(items)
    probe = vec(7)
    answers = []
    for flt, want in FILTER_TABLE:
        expected = [f"p{n}" for n in want]
        for idx in (plain, columnar):
            for _ in range(2):  # the second pass may run on columns built on demand
                got = [i.id for i in await idx.list(filter=flt)]
                assert got == expected, f"{flt}: {got} != {expected}"
                assert await idx.count(flt) == len(expected), flt
            found = await idx.query(probe, top_k=10, filter=flt)
            assert sorted(h.id for h in found) == sorted(expected), flt
        answers.append(hits(await columnar.query(probe, top_k=3, filter=flt)))
    return answers


async def case_invalid_filters(locations: Scope) -> Observation:
    idx = await locations.create(locations(), indexed=["ward"])
    await idx.insert(vec(1), metadata={"ward": "ICU"}, id="a")
    names = []
    for flt in BAD_FILTERS:
        names.append(await raises(InvalidFilter, idx.count(flt)))
        await raises(InvalidFilter, idx.list(filter=flt))
        await raises(InvalidFilter, idx.query(vec(1), filter=flt))
        await raises(InvalidFilter, idx.delete_where(flt))
    assert await idx.count() == 1
    return names


# --------------------------------------------------------------------------- vector queries


def _expected_order(items: list[dict[str, Any]], query: list[float]) -> list[tuple[str, float]]:
    """Brute-force cosine in float64, ties by insertion order: the reference every kernel must match."""
    scored = [(item["id"], cosine(item["vector"], query), n) for n, item in enumerate(items)]
    scored.sort(key=lambda s: (-s[1], s[2]))
    return [(i, s) for i, s, _ in scored]


def _check_ranking(results: list[Any], expected: list[tuple[str, float]], top_k: int) -> None:
    assert len(results) == min(top_k, len(expected))
    for r, (_, score) in zip(results, expected):
        assert abs(r.score - score) < 1e-5 and abs(r.vector_score - r.score) < 1e-9 and r.keyword_score is None
    # ids must match wherever the float64 reference is not itself (nearly) tied with its neighbour
    for pos, r in enumerate(results):
        neighbours = [expected[j][1] for j in (pos - 1, pos + 1) if 0 <= j < len(expected)]
        if all(abs(expected[pos][1] - s) > 1e-5 for s in neighbours):
            assert r.id == expected[pos][0], (pos, r.id, expected[pos][0])


async def case_exact_top_k_and_ties(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    items = [{"id": f"i{n}", "vector": vec(n)} for n in range(60)]
    items.append({"id": "twin", "vector": vec(7)})  # an exact tie with i7, inserted later
    items.append({"id": "scaled", "vector": [2 * x for x in vec(7)]})  # same direction: another tie
    await idx.insert_many(items[:30])
    for item in items[30:]:
        await idx.insert(item["vector"], id=item["id"])
    out = []
    for q in (vec(7), vec(1000), vec(1001), [1.0] + [0.0] * (DIMS - 1)):
        expected = _expected_order(items, q)
        for top_k in (1, 5, 17):
            results = await idx.query(q, top_k=top_k)
            _check_ranking(results, expected, top_k)
            out.append(hits(results))
    results = await idx.query(vec(7), top_k=3)
    assert [r.id for r in results] == ["i7", "twin", "scaled"]  # ties: insertion order
    assert len(await idx.query(vec(7), top_k=500)) == 62
    # an upsert keeps its place among ties; delete + insert moves to the end
    await idx.upsert("i7", vec(7), metadata={"touched": True})
    assert [r.id for r in await idx.query(vec(7), top_k=3)] == ["i7", "twin", "scaled"]
    await idx.delete("i7")
    await idx.insert(vec(7), id="i7")
    assert [r.id for r in await idx.query(vec(7), top_k=3)] == ["twin", "scaled", "i7"]
    return out


async def case_filtered_query_returns_exactly_top_k(locations: Scope) -> Observation:
    idx = await locations.create(locations(), indexed=["ward"])
    items = [
        {"id": f"i{n}", "vector": vec(n), "metadata": {"ward": "ICU" if n % 10 == 0 else "ED", "n": n}}
        for n in range(200)
    ]
    await idx.insert_many(items)
    q = vec(5)
    icu = [item for item in items if item["metadata"]["ward"] == "ICU"]
    results = await idx.query(q, top_k=7, filter={"ward": "ICU"})
    _check_ranking(results, _expected_order(icu, q), 7)
    assert all(r.item.metadata["ward"] == "ICU" for r in results)
    late = await idx.query(q, top_k=7, filter={"n": {"$gte": 195}})  # unindexed field, fewer matches than top_k
    assert sorted(r.item.metadata["n"] for r in late) == [195, 196, 197, 198, 199]
    rare = await idx.query(q, top_k=3, filter={"n": {"$in": [3, 150, 199, 7]}})
    _check_ranking(rare, _expected_order([items[3], items[7], items[150], items[199]], q), 3)
    assert await idx.query(q, filter={"ward": "nowhere"}) == []
    assert await idx.count({"ward": "ICU"}) == 20
    return {"icu": hits(results), "late": hits(late), "rare": hits(rare)}


async def case_min_score_and_query_errors(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    await idx.insert_many([{"id": f"i{n}", "vector": vec(n), "text": f"word{n % 4} common"} for n in range(40)])
    await idx.insert(vec(7), id="twin")
    q = vec(7)
    high = await idx.query(q, top_k=10, min_score=0.99)
    assert [r.id for r in high] == ["i7", "twin"]
    all_hits = await idx.query(q, top_k=40)
    mid = await idx.query(q, top_k=40, min_score=0.3)
    assert [r.id for r in mid] == [r.id for r in all_hits if r.score >= 0.3]
    assert await idx.query(q, top_k=5, min_score=1.5) == []
    assert len(await idx.query(q, top_k=5, min_score=-1.0)) == 5
    keyword = await idx.query(text="word1", mode="keyword", min_score=0.0)
    assert all(r.keyword_score >= 0 for r in keyword) and len(keyword) == 10
    names = [await raises(InvalidInput, idx.query(q, top_k=bad)) for bad in (0, -1, 1.5, True, "3")]
    names += [
        await raises(InvalidInput, idx.query(q, mode="fuzzy")),
        await raises(InvalidInput, idx.query(q, min_score=math.nan)),
        await raises(DimensionMismatch, idx.query(q[:-1])),
        await raises(InvalidVector, idx.query([0.0] * DIMS)),
        await raises(InvalidVector, idx.query([math.nan] * DIMS)),
        await raises(InvalidInput, idx.query(q, mode="keyword")),  # keyword needs text
        await raises(NoEmbedder, idx.query(text="word1", mode="vector")),  # text alone needs an embedder
        await raises(InvalidInput, idx.query(q, text="word1", fusion="max")),
    ]
    # rrf k is checked up front, even by a query that runs no fusion (vector or keyword only)
    for bad in (-1, math.nan, math.inf, "5", True):
        names.append(await raises(InvalidInput, idx.query(q, rrf_k=bad), match="rrf k"))
        await raises(InvalidInput, idx.query(text="word1", mode="keyword", rrf_k=bad), match="rrf k")
        await raises(InvalidInput, idx.query(q, text="word1", rrf_k=bad), match="rrf k")
    return {"errors": names, "mid": len(mid), "keyword": hits(keyword)}


# --------------------------------------------------------------------------- keyword and hybrid

NOTES: dict[str, str] = {
    "a": "acute shortness of breath and chest pain",
    "b": "diabetes mellitus type 2 with hyperglycemia",
    "c": "fracture of the left femoral neck after a fall",
    "d": "chronic obstructive pulmonary disease exacerbation with dyspnea and breath sounds",
    "e": "chest pain on exertion, troponin negative, chest x-ray clear",
}


async def case_keyword_queries(locations: Scope) -> Observation:
    idx = await locations.create(locations(), indexed=["ward"])
    for n, (key, text) in enumerate(NOTES.items()):
        await idx.insert(vec(n), text=text, id=key, metadata={"ward": "ICU" if key in ("a", "c") else "ED"})
    await idx.insert(vec(99), id="no-text")
    fracture = await idx.query(text="femoral fracture", mode="keyword")
    assert [h.id for h in fracture] == ["c"] and fracture[0].keyword_score > 0 and fracture[0].vector_score is None
    chest = await idx.query(text="chest pain", mode="keyword")
    assert [h.id for h in chest] == ["e", "a"]  # "chest" twice in e
    assert all(h.score == h.keyword_score for h in chest)
    auto = await idx.query(text="Chest PAIN!")  # auto without a vector or embedder -> keyword, case-folded
    assert [h.id for h in auto] == ["e", "a"]
    filtered = await idx.query(text="chest pain", mode="keyword", filter={"ward": "ICU"})
    assert [h.id for h in filtered] == ["a"]
    assert await idx.query(text="zebra", mode="keyword") == []
    top1 = await idx.query(text="breath", mode="keyword", top_k=1)
    assert len(top1) == 1
    await idx.delete("c")
    assert await idx.query(text="femoral fracture", mode="keyword") == []
    await idx.upsert("b", vec(1), text="femoral neck fracture")
    assert [h.id for h in await idx.query(text="femoral", mode="keyword")] == ["b"]
    return {"chest": hits(chest), "breath": hits(await idx.query(text="breath", mode="keyword")), "top1": hits(top1)}


def _rrf_reference(vector_leg: list[Any], keyword_leg: list[Any], order: list[str]) -> list[tuple[str, float]]:
    """RRF by hand with the documented defaults: sum over legs of weight / (k + rank), ties by insertion order."""
    scores: dict[str, float] = {}
    for leg, weight in zip((vector_leg, keyword_leg), DEFAULT_WEIGHTS):
        for rank, hit in enumerate(leg, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + weight / (DEFAULT_RRF_K + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], order.index(kv[0])))


async def case_hybrid_queries(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    for n, (key, text) in enumerate(NOTES.items()):
        await idx.insert(vec(n), text=text, id=key)
    await idx.insert(vec(99), id="no-text")
    hybrid = await idx.query(vec(1), text="breath", top_k=10)  # auto -> hybrid
    ids = [h.id for h in hybrid]
    assert set(ids) <= {*NOTES, "no-text"} and len(ids) == 6
    assert {h.id for h in hybrid if h.keyword_score} == {"a", "d"}
    assert all(h.vector_score is not None for h in hybrid)
    # the fused ranking is RRF over the two legs as the public vector and keyword queries return them
    vector_leg = await idx.query(vec(1), top_k=HYBRID_DEPTH)
    keyword_leg = await idx.query(text="breath", mode="keyword", top_k=HYBRID_DEPTH)
    expected = _rrf_reference(vector_leg, keyword_leg, await idx.ids())
    assert [h.id for h in hybrid] == [i for i, _ in expected]
    assert all(abs(h.score - s) < 1e-9 for h, (_, s) in zip(hybrid, expected))
    cosines = {r.id: r.score for r in vector_leg}
    bm25 = {r.id: r.score for r in keyword_leg}
    assert all(abs(h.vector_score - cosines[h.id]) < 1e-6 and h.keyword_score == bm25.get(h.id) for h in hybrid)
    explicit = await idx.query(vec(1), text="breath", top_k=10, mode="hybrid")
    assert hits(explicit) == hits(hybrid)
    weighted = await idx.query(vec(1), text="fracture", mode="hybrid", fusion="weighted", weights=(0.2, 0.8))
    assert weighted[0].id == "c"
    vector_only = await idx.query(vec(1), text="fracture", mode="vector")
    assert all(h.keyword_score is None for h in vector_only)
    # hybrid never ranks what both legs missed: with more rows than a leg's depth (HYBRID_DEPTH) and no weight
    # on the vector leg, every vector-leg hit scores 0 and ranks by insertion order, where a row that neither
    # leg returned would show up among them if fusion let it in
    await idx.insert_many(
        [
            {"id": f"n{n}", "vector": vec(500 + n), "text": f"note {n}" if n % 10 == 0 else None}
            for n in range(HYBRID_DEPTH + 60)
        ]
    )
    wide = await idx.query(vec(3), text="note 50", top_k=HYBRID_DEPTH, mode="hybrid", weights=(0.0, 1.0))
    wide_vector = {r.id for r in await idx.query(vec(3), top_k=HYBRID_DEPTH)}
    wide_keyword = {r.id for r in await idx.query(text="note 50", top_k=HYBRID_DEPTH, mode="keyword")}
    assert len(wide) == HYBRID_DEPTH and len(wide_vector | wide_keyword) < len(await idx.ids())
    assert {r.id for r in wide} <= wide_vector | wide_keyword
    # a top_k that cuts through tied fused scores keeps the deeper query's order (ties: insertion order)
    tied = [r for r in wide if r.score == wide[-1].score]
    assert len(tied) > 10
    depth = len(wide) - len(tied) + 5  # 5 rows into the run of tied scores at the end
    cut = await idx.query(vec(3), text="note 50", top_k=depth, mode="hybrid", weights=(0.0, 1.0))
    assert [r.id for r in cut] == [r.id for r in wide[:depth]]
    return {"rrf": hits(hybrid), "weighted": hits(weighted), "wide": [r.id for r in wide]}


# --------------------------------------------------------------------------- updates (batch)


async def case_batch_commit_rollback(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    await idx.insert(vec(0), id="base")
    async with idx.batch():
        await idx.insert(vec(1), id="x")
        await idx.upsert("base", vec(2), metadata={"changed": True})
        assert await idx.get("x") is None  # invisible until commit
        assert await idx.count() == 1 and (await idx.get("base")).metadata == {}
        assert [r.id for r in await idx.query(vec(1), top_k=5)] == ["base"]
        await raises(DuplicateId, idx.insert(vec(3), id="x"))  # staged ids count as taken
    assert await idx.count() == 2 and (await idx.get("base")).metadata == {"changed": True}

    try:
        async with idx.batch():
            await idx.insert(vec(4), id="y")
            await idx.delete("x")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    else:
        raise AssertionError("the batch swallowed the exception")
    assert await idx.get("y") is None and await idx.get("x") is not None  # rolled back

    idx.begin_update()
    await idx.insert(vec(5), id="z")
    await idx.insert_many([{"id": "z2", "vector": vec(6)}])
    assert await idx.count() == 2
    idx.cancel_update()
    assert await idx.get("z") is None and await idx.get("z2") is None
    idx.begin_update()
    await idx.insert(vec(6), id="w")
    await idx.delete("w")
    await idx.insert(vec(7), id="w")
    await idx.update_metadata("w", {"final": 1})
    assert await idx.delete_many(["x", "nope"]) == 1
    await idx.end_update()
    w = await idx.get("w")
    assert close_to(w.vector, unit(vec(7))) and w.metadata == {"final": 1}
    assert await idx.ids() == ["base", "w"]
    return {"ids": await idx.ids(), "top": hits(await idx.query(vec(7), top_k=2))}


async def case_update_errors(locations: Scope) -> Observation:
    loc = locations()
    idx = await locations.create(loc)
    names = [await raises(NoUpdateInProgress, idx.end_update()), await raises(NoUpdateInProgress, idx.cancel_update)]
    idx.begin_update()
    names.append(await raises(UpdateInProgress, idx.begin_update))

    async def nested() -> None:
        async with idx.batch():
            pass

    names.append(await raises(UpdateInProgress, nested()))
    idx.cancel_update()
    names.append(await raises(NoUpdateInProgress, idx.cancel_update))
    idx.begin_update()
    await idx.insert(vec(1), id="pending")
    await idx.close()  # closing discards the open update
    idx = await locations.open(loc)
    assert await idx.count() == 0
    names.append(await raises(NoUpdateInProgress, idx.end_update()))
    await idx.close()
    reader = await locations.open(loc, read_only=True)
    names.append(await raises(ReadOnlyIndex, reader.begin_update))
    return names


# --------------------------------------------------------------------------- persistence


def _snapshot_of(items: list[Any]) -> list[Any]:
    return [[i.id, rounded(i.vector, 6), i.metadata, i.text] for i in items]


async def case_reopen_sees_everything(locations: Scope) -> Observation:
    loc = locations()
    idx = await locations.create(loc, indexed=["k"])
    await idx.insert_many(
        [
            {"id": f"i{n}", "vector": vec(n), "metadata": {"k": n % 2, "deep": {"n": n}}, "text": f"word{n}"}
            for n in range(30)
        ]
    )
    await idx.insert(vec(50), id="single", text="single note")
    await idx.delete("i3")
    await idx.upsert("i4", vec(100), metadata={"k": 9}, text="replaced")
    await idx.update_metadata("i5", {"k": 7})
    async with idx.batch():
        await idx.insert(vec(60), id="batched")
        await idx.delete("i6")
    before = _snapshot_of(await idx.list())
    queries = [
        hits(await idx.query(vec(100), top_k=5)),
        hits(await idx.query(text="replaced", mode="keyword")),
        hits(await idx.query(vec(1), text="word1", top_k=4)),
    ]
    await idx.close()
    idx = await locations.open(loc)
    assert _snapshot_of(await idx.list()) == before
    assert [
        hits(await idx.query(vec(100), top_k=5)),
        hits(await idx.query(text="replaced", mode="keyword")),
        hits(await idx.query(vec(1), text="word1", top_k=4)),
    ] == queries
    assert await idx.count({"k": 9}) == 1 and await idx.count({"deep.n": {"$gte": 25}}) == 5
    assert idx.indexed == ["k"] and idx.dims == DIMS
    await idx.insert(vec(70), id="after-reopen")
    await idx.close()
    idx = await locations.open(loc)
    assert (await idx.ids())[-1] == "after-reopen" and await idx.count() == 31
    return {"ids": await idx.ids(), "queries": queries}


async def case_compaction_then_reopen(locations: Scope) -> Observation:
    loc = locations()
    idx = await locations.create(loc, indexed=["g"])
    for n in range(20):
        await idx.insert(vec(n), id=f"i{n}", metadata={"g": n % 4}, text=f"note {n}")
    await idx.delete_many(["i1", "i2"])
    await idx.upsert("i3", vec(300), text="upserted")
    before = _snapshot_of(await idx.list())
    await idx.compact()
    assert _snapshot_of(await idx.list()) == before
    await idx.insert(vec(200), id="after-compact", text="late")
    await idx.delete("i4")
    await idx.compact()
    await idx.update_metadata("i5", {"g": 99})
    expected = _snapshot_of(await idx.list())
    await idx.close()
    idx = await locations.open(loc)
    assert _snapshot_of(await idx.list()) == expected
    assert (await idx.query(vec(200), top_k=1))[0].id == "after-compact"
    assert [h.id for h in await idx.query(text="upserted", mode="keyword")] == ["i3"]
    assert await idx.count({"g": 99}) == 1 and await idx.count({"g": 1}) == 3  # i9, i13, i17 (i5 moved, i1 gone)
    stats = await idx.stats()
    assert stats["items"] == 18 and stats["dims"] == DIMS and stats["indexed"] == ["g"]
    assert stats["keyword"]["docs"] == 18 and stats["read_only"] is False and stats["update_in_progress"] is False
    return {"ids": await idx.ids(), "query": hits(await idx.query(vec(3), text="note", top_k=5))}


async def case_stats_never_builds_the_keyword_index(locations: Scope) -> Observation:
    """stats() stays cheap on a reopened index: it counts texts without building BM25 (the page calls it after
    every add; building it took seconds in Pyodide at 50k texts). The first text query builds it."""
    loc = locations()
    idx = await locations.create(loc, indexed=["ward"])
    await idx.insert(vec(1), text="alpha beta")
    stats = await idx.stats()
    assert stats["items"] == 1 and stats["dims"] == DIMS and stats["indexed"] == ["ward"]
    assert stats["metric"] == "cosine" and stats["read_only"] is False and stats["update_in_progress"] is False
    assert stats["kernel"] in ("NumpyKernel", "Int8Kernel", "JsKernel")  # which one depends on the build
    assert stats["keyword"] == {"built": False, "texts": 1}
    await idx.insert_many(
        [{"id": f"t{i}", "vector": vec(i), "text": f"note {i}" if i % 3 else None} for i in range(30)]
    )
    await idx.close()
    idx = await locations.open(loc)
    assert (await idx.stats())["keyword"] == {"built": False, "texts": 21}
    await idx.upsert("t0", vec(0), text="now with text")  # text added
    await idx.delete("t1")  # text removed
    await idx.upsert("t2", vec(2))  # text dropped
    observed = [(await idx.stats())["keyword"]]
    assert observed[0] == {"built": False, "texts": 20}
    await idx.query(text="note", mode="keyword")
    observed.append((await idx.stats())["keyword"])
    assert observed[1]["built"] is True and observed[1]["texts"] == 20 and observed[1]["docs"] == 20
    await idx.insert(vec(99), id="late", text="late note")  # the built index is kept up to date per op
    observed.append((await idx.stats())["keyword"])
    assert observed[2]["built"] is True and observed[2]["texts"] == observed[2]["docs"] == 21
    return observed


async def case_read_only_rejects_writes(locations: Scope) -> Observation:
    loc = locations()
    idx = await locations.create(loc, indexed=["g"])
    await idx.insert(vec(1), id="a", metadata={"g": 1}, text="alpha")
    await idx.close()
    ro = await locations.open(loc, read_only=True)
    assert ro.read_only is True
    assert (await ro.get("a")).metadata == {"g": 1} and await ro.count({"g": 1}) == 1
    assert [h.id for h in await ro.query(vec(1), top_k=1)] == ["a"]
    assert [h.id for h in await ro.query(text="alpha")] == ["a"]
    writes = [
        ro.insert(vec(2)),
        ro.upsert("a", vec(2)),
        ro.insert_many([{"vector": vec(2)}]),
        ro.upsert_many([{"id": "b", "vector": vec(2)}]),
        ro.update_metadata("a", {}),
        ro.delete("a"),
        ro.delete_many(["a"]),
        ro.delete_where({"g": 1}),
        ro.compact(),
        ro.end_update(),
    ]
    names = [await raises(ReadOnlyIndex, call) for call in writes]
    names.append(await raises(ReadOnlyIndex, ro.begin_update))
    assert await ro.count() == 1 and (await ro.stats())["read_only"] is True
    await ro.close()
    names.append(await raises(IndexClosed, ro.get("a")))
    names.append(await raises(IndexClosed, ro.query(vec(1))))
    again = await locations.open(loc)  # the reader held no writer lock
    assert await again.count() == 1
    return names


async def case_list_paging(locations: Scope) -> Observation:
    idx = await locations.create(locations())
    await idx.insert_many([{"id": f"i{n:02d}", "vector": vec(n), "metadata": {"n": n}} for n in range(20)])
    assert [i.id for i in await idx.list(limit=3, offset=2)] == ["i02", "i03", "i04"]
    assert [i.id for i in await idx.list(filter={"n": {"$in": [1, 5, 30]}})] == ["i01", "i05"]
    assert [i.id for i in await idx.list(filter={"n": {"$gte": 10}}, limit=2, offset=3)] == ["i13", "i14"]
    assert await idx.list(offset=50) == [] and await idx.list(limit=0) == []
    assert len(await idx.list()) == 20 and await idx.count() == 20
    await idx.delete("i00")  # a swap-delete must not disturb insertion order
    assert [i.id for i in await idx.list(limit=3)] == ["i01", "i02", "i03"]
    return [i.id for i in await idx.list(offset=17)]


async def case_iter_items_and_distinct(locations: Scope) -> Observation:
    """Public iteration (export and sync build on it) and distinct values (the page's ward list), with the
    field columnar (indexed) and without: same answers after upserts and deletes."""
    out = []
    for indexed in (["ward"], []):
        idx = await locations.create(locations(), dims=2, indexed=indexed)
        await idx.insert([1, 0], metadata={"ward": "ICU"}, id="a")
        await idx.insert([1, 1], metadata={"ward": "ED"}, id="b")
        await idx.insert([0, 1], metadata={"ward": "ICU"}, id="c")
        await idx.insert([0, 1], metadata={"ward": ["x"]}, id="d")  # a list is not a scalar value
        await idx.insert([1, 1], metadata={"other": 1}, id="e")
        await idx.upsert("a", [1, 0], metadata={"ward": "CCU"})
        await idx.delete_many(["b", "e"])
        assert await idx.distinct("ward") == ["CCU", "ICU"]
        assert await idx.distinct("nowhere") == []
        batches = [[item.id for item in batch] async for batch in idx.iter_items(batch_size=2)]
        assert batches == [["a", "c"], ["d"]]
        whole = [item async for batch in idx.iter_items() for item in batch]
        assert [(i.id, i.metadata) for i in whole] == [(i.id, i.metadata) for i in await idx.list()]
        for bad in (0, -1, True, "2"):
            await raises(InvalidInput, idx.iter_items(batch_size=bad).__anext__())
        out.append({"distinct": await idx.distinct("ward"), "batches": batches})
    return out


async def case_fingerprint_workload(locations: Scope) -> Observation:
    """A fixed mixed workload; its (ids, scores to 1e-5) must be the same in every build."""
    dims = 16
    idx = await locations.create(locations(), dims=dims, indexed=["ward"])
    wards = ["ICU", "ED", "ward-3", "oncology"]
    words = ["pain", "fever", "cough", "fracture", "sepsis", "rash", "nausea", "syncope"]
    items = [
        {
            "id": f"n{n:03d}",
            "vector": vec(n, dims),
            "metadata": {"ward": wards[n % 4], "age": 20 + (_mix(n) % 70), "tags": [words[n % 8]]},
            "text": f"{words[n % 8]} and {words[(n * 3) % 8]} day {n % 11}",
        }
        for n in range(300)
    ]
    await idx.insert_many(items[:250])
    async with idx.batch():
        for item in items[250:]:
            await idx.insert(item["vector"], metadata=item["metadata"], text=item["text"], id=item["id"])
    await idx.delete_many([f"n{n:03d}" for n in range(0, 300, 7)])
    await idx.upsert_many(
        [
            {"id": f"n{n:03d}", "vector": vec(n + 1000, dims), "metadata": {"ward": "ICU"}, "text": "sepsis and fever"}
            for n in range(1, 300, 13)
        ]
    )
    await idx.delete_where({"ward": "oncology", "age": {"$gt": 70}})
    fingerprint = []
    for q in range(6):
        vector = vec(2000 + q, dims)
        for options in ({}, {"filter": {"ward": wards[q % 4]}}, {"filter": {"age": {"$lt": 40}, "tags": words[q]}}):
            results = await idx.query(vector, top_k=10, **options)
            fingerprint.append([[r.id for r in results], rounded([r.score for r in results])])
        results = await idx.query(vector, text=f"{words[q]} day {q}", top_k=10)
        fingerprint.append([[r.id for r in results], rounded([r.score for r in results])])
        results = await idx.query(text=f"{words[q]} {words[q + 1]}", mode="keyword", top_k=10)
        fingerprint.append([[r.id for r in results], rounded([r.score for r in results])])
    return {"count": await idx.count(), "ids": await idx.ids(), "fingerprint": fingerprint}


async def case_export_import(locations: Scope) -> Observation:
    """Server only: export to JSONL/CSV and import into a fresh index, exactly."""
    import os
    import tempfile

    idx = await locations.create(locations(), indexed=["ward"])
    await idx.insert_many(
        [
            {
                "id": f"i{n}",
                "vector": vec(n),
                "metadata": {"ward": "ICU" if n % 2 else "ED", "tags": ["a", n]},
                "text": None if n % 3 == 0 else f'note, "quoted"\n{n}',
            }
            for n in range(15)
        ]
    )
    expected = _snapshot_of(await idx.list())
    counts = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("jsonl", "csv"):
            path = os.path.join(folder, f"items.{fmt}")
            counts.append(await idx.export_to(path, format=fmt))
            copy = await locations.create(locations())
            counts.append(await copy.import_from(path))
            assert _snapshot_of(await copy.list()) == expected
            await raises(DuplicateId, copy.import_from(path))
            assert await copy.import_from(path, upsert=True) == 15
    return counts


# --------------------------------------------------------------------------- injected store faults (FaultyStore)


async def _faulty(
    locations: Scope, fail: dict[str, Any], create: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[str, Any, LocalIndex]:
    """A fresh index (``create``: more of ``LocalIndex.create``'s arguments) on ``FaultyStore(<this build's
    store>)``; the plain location reopens it without faults."""
    loc = locations()
    store = FaultyStore(store_for(loc), fail, **kwargs)
    idx = await LocalIndex.create(store, dims=DIMS, **(create or {}))
    locations.opened.append(idx)
    return loc, store, idx


async def case_failed_batch_commit_ends_the_update(locations: Scope) -> Observation:
    """A commit that fails at the end of batch()/end_update() ends the update and changes nothing; the next
    plain write is durable again (it used to be staged into the dead update and lost at close)."""
    loc, store, idx = await _faulty(locations, {"commit": [2, 4]})
    await idx.insert(vec(1), id="a")  # commit 1
    names = []
    try:
        async with idx.batch():
            await idx.insert(vec(2), id="b")
            await idx.upsert("a", vec(3), metadata={"changed": True})
    except StorageError as exc:  # commit 2
        names.append(type(exc).__name__)
    assert await idx.ids() == ["a"] and (await idx.get("a")).metadata == {}
    assert (await idx.stats())["update_in_progress"] is False
    await idx.insert(vec(4), id="c")  # commit 3: a plain, durable write again
    idx.begin_update()
    await idx.insert(vec(5), id="d")
    names.append(await raises(StorageError, idx.end_update()))  # commit 4
    assert (await idx.stats())["update_in_progress"] is False
    await idx.insert(vec(6), id="e")  # commit 5
    assert await idx.ids() == ["a", "c", "e"]
    await idx.close()
    reopened = await locations.open(loc)
    assert await reopened.ids() == ["a", "c", "e"]
    return {"errors": names, "commits": store.calls["commit"], "ids": await reopened.ids()}


async def case_failed_compaction_keeps_the_acknowledged_write(locations: Scope) -> Observation:
    """Auto-compaction after a durable commit fails: the write still succeeds (no retry, no duplicate)."""
    loc, store, idx = await _faulty(locations, {"write_snapshot": 1}, error=StorageFull)
    await idx.insert(vec(0), id="first", text="small")
    filler = "x" * 2048
    items = [{"id": f"n{i}", "vector": vec(i + 1), "text": f"{filler} {i}"} for i in range(600)]
    ids = await idx.insert_many(items)  # > 1 MiB of log: compaction runs, and its snapshot write fails
    assert len(ids) == 600 and store.calls["write_snapshot"] == 1
    stats = await idx.stats()
    assert stats["items"] == 601 and "StorageFull" in stats["compaction_error"]
    await idx.insert(vec(999), id="after")  # the index keeps working
    await idx.compact()  # an explicit compaction now succeeds
    assert (await idx.stats())["compaction_error"] is None
    await idx.close()
    reopened = await locations.open(loc)
    assert await reopened.count() == 602 and (await reopened.get("n599")).text == f"{filler} 599"
    return {"count": await reopened.count(), "snapshots": store.calls["write_snapshot"]}


async def case_failed_bulk_snapshot_leaves_the_index_empty(locations: Scope) -> Observation:
    """A first bulk load is written as a snapshot; when that fails the index is empty and works again."""
    loc, store, idx = await _faulty(locations, {"write_snapshot": 1})
    items = [{"id": f"b{i}", "vector": vec(i), "metadata": {"g": i % 3}, "text": f"bulk {i}"} for i in range(1000)]
    name = await raises(StorageError, idx.insert_many(items))
    assert await idx.count() == 0 and await idx.query(vec(3), text="bulk", top_k=3) == []
    assert await idx.count({"g": 1}) == 0 and await idx.ids() == []
    await idx.insert_many(items)
    top = await idx.query(vec(7), top_k=1)
    assert top[0].id == "b7"
    await idx.close()
    reopened = await locations.open(loc)
    assert await reopened.count() == 1000 and await reopened.count({"g": 1}) == 333
    return {"error": name, "count": await reopened.count(), "top": hits(top)}


async def case_failed_bulk_load_in_memory_writes_nothing(locations: Scope) -> Observation:
    """A first bulk load goes into memory while its snapshot is written (``Store.write_snapshot_while``); when
    that in-memory load fails (out of memory), nothing is written, the index is empty and the next write works."""
    # below the partition threshold, set here so the rerun with partitions from the 4th item takes this path
    # too (a load that must train partitions first is written after it: failed_bulk_snapshot covers that)
    loc, store, idx = await _faulty(locations, {"meanwhile": 1}, {"ivf_threshold": 100_000}, error=MemoryError)
    items = [{"id": f"m{i}", "vector": vec(i), "metadata": {"g": i % 3}, "text": f"bulk {i}"} for i in range(1000)]
    name = await raises(MemoryError, idx.insert_many(items))
    assert store.calls["meanwhile"] == 1
    assert await idx.count() == 0 and await idx.query(vec(3), text="bulk", top_k=3) == []
    assert await idx.count({"g": 1}) == 0 and await idx.ids() == []
    await idx.close()
    reopened = await locations.open(loc)  # nothing of the failed load was written
    assert await reopened.count() == 0
    await reopened.close()
    idx = await locations.open(store)
    await idx.insert_many(items)
    await idx.insert(vec(5000), id="after", text="one more")  # a plain commit on top of the bulk snapshot
    top = await idx.query(vec(7), top_k=1)
    await idx.close()
    reopened = await locations.open(loc)
    assert await reopened.count() == 1001 and await reopened.count({"g": 1}) == 333
    assert (await reopened.get("after")).text == "one more"
    return {"error": name, "count": await reopened.count(), "top": hits(top)}


async def case_batch_belongs_to_its_task(locations: Scope) -> Observation:
    """Task B's plain write waits for task A's batch and never joins it: A's rollback does not lose B's write."""
    idx = await locations.create(locations())
    opened, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def task_a() -> None:
        try:
            async with idx.batch():
                await idx.insert(vec(1), id="from-a")
                await asyncio.gather(idx.insert(vec(2), id="a-child"))  # a task started inside joins the batch
                opened.set()
                await release.wait()
                order.append("a-rollback")
                raise RuntimeError("roll back")
        except RuntimeError:
            pass

    async def task_b() -> None:
        await opened.wait()
        await idx.insert(vec(3), id="from-b")
        order.append("b-done")

    a, b = asyncio.create_task(task_a()), asyncio.create_task(task_b())
    await opened.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == [] and await idx.get("from-b") is None  # B waits for A's batch
    release.set()
    await asyncio.gather(a, b)
    assert order == ["a-rollback", "b-done"]
    assert await idx.ids() == ["from-b"]
    return await idx.ids()


async def case_hostile_vectors_and_arguments(locations: Scope) -> Observation:
    """Vectors whose norm overflows float32 are normalised (not stored as zeros); strings and booleans are not
    numbers; malformed arguments raise ClinvecErrors and change nothing."""
    idx = await locations.create(locations())
    await idx.insert([3e38] * DIMS, id="huge")
    huge = await idx.get("huge")
    assert close_to(huge.vector, [1 / math.sqrt(DIMS)] * DIMS)
    names = []
    for bad in (["1"] * DIMS, [True] + [0.5] * (DIMS - 1), [None] * DIMS, [1e39] * DIMS):
        names.append(await raises(InvalidVector, idx.insert(bad)))
    for call in (
        lambda: idx.query(vec(1), weights="ab"),
        lambda: idx.query(vec(1), text="x", weights=[1]),
        lambda: idx.query(vec(1), weights=[True, 1]),
        lambda: idx.get(["huge"]),
        lambda: idx.insert_many(5),
        lambda: idx.insert_many([5]),
        lambda: idx.delete_many(7),
        lambda: idx.list(limit=True),
        lambda: idx.insert(vec(2), id="\ud800"),
        lambda: idx.insert(vec(2), text="bad \udc00 text"),
    ):
        names.append(await raises(InvalidInput, call))
    assert await idx.ids() == ["huge"]
    return names
