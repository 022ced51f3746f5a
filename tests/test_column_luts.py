"""``MetadataTable.column_luts``: the per-column match tables a kernel selects rows with (the browser's JS kernel).

The selection is re-done here in Python exactly as ``selectRows`` in ``pyapp/browser/js_kernel.mjs`` does it (code
-> lut byte; the two last bytes answer a missing field and a list/object) and must equal ``select`` row for row,
for every filter shape it accepts, with and without numpy, after every kind of change.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pyapp.filters import compile_filter
from pyapp.metadata_table import MAX_AUTO_COLUMNS, MetadataTable


def js_select(luts: list[Any]) -> list[int]:
    """The JS kernel's selection, line for line."""
    rows: list[int] | None = None
    for entry in luts:
        codes = memoryview(entry.codes()).cast("i")
        lut = entry.lut
        miss, complex_ = lut[-2], lut[-1]

        def hit(code: int, lut: bytes = lut, miss: int = miss, complex_: int = complex_) -> bool:
            return (lut[code] if code >= 0 else miss if code == -1 else complex_) == 1

        cand = range(len(codes)) if rows is None else rows
        rows = [r for r in cand if hit(codes[r])]
    return rows or []


FILTERS: list[dict[str, Any]] = [
    {"category": "c3"},
    {"category": {"$in": ["c1", "c7", "nope"]}},
    {"category": {"$ne": "c2"}},
    {"category": {"$nin": ["c0"]}},
    {"year": {"$gte": 2005}},
    {"year": {"$lt": 2003.5}},
    {"year": 2004.0},
    {"flag": True},
    {"flag": {"$exists": False}},
    {"category": "c3", "flag": False},
    {"$and": [{"year": {"$gt": 2001}}, {"category": {"$in": ["c3", "c4"]}}]},
    {"category": {"$gt": "c5"}},
    {"year": {"$not": {"$gte": 2004}}},
]


def _meta(rnd: random.Random) -> dict[str, Any]:
    m: dict[str, Any] = {"category": f"c{rnd.randrange(10)}", "year": rnd.choice([2000, 2004, 2004.0, 2007, 2009.5])}
    if rnd.random() < 0.7:
        m["flag"] = rnd.random() < 0.5
    if rnd.random() < 0.1:
        del m["category"]
    return m


@pytest.mark.parametrize("use_numpy", [False, True])
def test_column_luts_select_the_same_rows_as_the_table_through_changes(use_numpy: bool) -> None:
    rnd = random.Random(5)
    table = MetadataTable(indexed=["year"], use_numpy=use_numpy)
    table.load([_meta(rnd) for _ in range(300)])
    for step in range(6):
        for flt in FILTERS:
            compiled = compile_filter(flt)
            luts = table.column_luts(compiled)
            assert luts is not None, flt
            assert js_select(luts) == [int(r) for r in table.select(compiled)], (step, flt)
        versions = {e.column.uid: e.column.version for e in table.column_luts(compile_filter(FILTERS[9])) or []}
        # every kind of change moves the version of every column, so a kernel's copy is re-sent
        change = step % 3
        if change == 0:
            table.append(_meta(rnd))
        elif change == 1:
            table.set(rnd.randrange(len(table)), _meta(rnd))
        else:
            table.swap_remove(rnd.randrange(len(table)))
        after = table.column_luts(compile_filter(FILTERS[9])) or []
        assert all(e.column.version > versions[e.column.uid] for e in after)


def test_shapes_that_need_the_per_row_test_are_left_to_the_table() -> None:
    table = MetadataTable(use_numpy=False)
    table.load([{"category": "c1", "tags": ["a", "b"]}, {"category": "c2", "tags": "a"}])
    assert table.column_luts(compile_filter({"tags": "a"})) is None  # a row holds a list
    assert table.column_luts(compile_filter({"$or": [{"category": "c1"}, {"category": "c2"}]})) is None
    assert table.column_luts(compile_filter({})) is None
    assert js_select(table.column_luts(compile_filter({"category": "c2"})) or []) == [1]


def test_automatic_columns_stay_bounded() -> None:
    table = MetadataTable(use_numpy=False)
    table.load([{f"f{i}": i for i in range(MAX_AUTO_COLUMNS + 2)}])
    got = [table.column_luts(compile_filter({f"f{i}": i})) for i in range(MAX_AUTO_COLUMNS + 2)]
    assert all(g is not None for g in got[:MAX_AUTO_COLUMNS])
    assert got[MAX_AUTO_COLUMNS] is None  # the table's own select answers it
    assert list(table.select(compile_filter({f"f{MAX_AUTO_COLUMNS}": MAX_AUTO_COLUMNS}))) == [0]
