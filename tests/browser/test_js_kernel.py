"""JsKernel (in Chromium) against NumpyKernel (on CPython): same top-k, same scores, same errors."""

from __future__ import annotations

import base64
import statistics
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp.errors import DimensionMismatch, InvalidVector
from pyapp.kernels.numpy_kernel import NumpyKernel

pytestmark = pytest.mark.browser

# Runs in the page: builds a JsKernel from base64 float32 rows and answers queries the same way.
KERNEL_RUN = """
import base64
from pyapp.browser.js_kernel import JsKernel
k = JsKernel(dims)
prepared = k.prepare(base64.b64decode(data), n)
k.load(prepared, n)
out = {"prepared": base64.b64encode(prepared).decode(), "engine": k.engine, "hits": [], "scores": []}
for q, kk, rows in queries:
    pq = k.prepare(base64.b64decode(q), 1)
    out["hits"].append(k.topk(pq, kk, rows))
    out["scores"].append(k.scores(pq, rows if rows is not None else list(range(k.size))))
result = out
"""


def b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype="<f4").tobytes()).decode()


def reference(data: np.ndarray, queries: list[tuple[np.ndarray, int, list[int] | None]]) -> dict[str, Any]:
    n, dims = data.shape
    k = NumpyKernel(dims)
    prepared = k.prepare(data.astype("<f4").tobytes(), n)
    k.load(prepared, n)
    hits, scores = [], []
    for q, kk, rows in queries:
        pq = k.prepare(q.astype("<f4").tobytes(), 1)
        hits.append(k.topk(pq, kk, rows))
        scores.append(k.scores(pq, rows if rows is not None else list(range(n))))
    return {"prepared": prepared, "hits": hits, "scores": scores}


def run_both(app: Any, data: np.ndarray, queries: list[tuple[np.ndarray, int, list[int] | None]]) -> tuple[dict, dict]:
    n, dims = data.shape
    browser = app.run(
        KERNEL_RUN, dims=dims, n=n, data=b64(data), queries=[[b64(q), kk, rows] for q, kk, rows in queries]
    )
    return browser, reference(data, queries)


def assert_same_hits(got: list[list[Any]], want: list[tuple[int, float]], atol: float = 2e-6) -> None:
    assert [row for row, _ in got] == [row for row, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=atol)


def test_random_data_same_topk_as_numpy(app: Any) -> None:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((3000, 96)).astype(np.float32)
    subset = sorted(rng.choice(3000, size=400, replace=False).tolist())
    queries = [(rng.standard_normal(96), k, None) for k in (1, 10, 50)]
    queries += [(rng.standard_normal(96), 10, subset), (rng.standard_normal(96), 500, subset)]
    browser, ref = run_both(app, data, queries)
    got_prepared = np.frombuffer(base64.b64decode(browser["prepared"]), "<f4")
    assert np.allclose(got_prepared, np.frombuffer(ref["prepared"], "<f4"), atol=1e-6)
    for got, want in zip(browser["hits"], ref["hits"], strict=True):
        assert_same_hits(got, want)
    for got, want in zip(browser["scores"], ref["scores"], strict=True):
        assert np.allclose(got, want, atol=2e-6)
    assert browser["engine"] == "wasm-simd"  # 96 % 4 == 0: the SIMD path ran


def test_dims_not_multiple_of_four_uses_js_loop(app: Any) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((500, 7)).astype(np.float32)
    queries = [(rng.standard_normal(7), 5, None), (rng.standard_normal(7), 3, [4, 400, 17, 250])]
    browser, ref = run_both(app, data, queries)
    assert browser["engine"] == "js"
    for got, want in zip(browser["hits"], ref["hits"], strict=True):
        assert_same_hits(got, want)


def test_ties_at_kth_score_are_all_returned(app: Any) -> None:
    # rows 0, 2, 5 are identical: asking for top-2 must return all three tied best rows, lowest row first.
    data = np.array(
        [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0.5, 0.5, 0, 0], [2, 0, 0, 0]], np.float32
    )
    queries = [(np.array([1, 0, 0, 0]), 2, None), (np.array([1, 0, 0, 0]), 1, [5, 2, 1])]
    browser, ref = run_both(app, data, queries)
    assert [r for r, _ in browser["hits"][0]] == [0, 2, 5]
    assert [r for r, _ in browser["hits"][1]] == [5, 2]  # ties keep the order of the rows given
    for got, want in zip(browser["hits"], ref["hits"], strict=True):
        assert_same_hits(got, want)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 60),
    dims=st.sampled_from([1, 3, 4, 8, 13]),
    k=st.integers(0, 70),
    seed=st.integers(0, 2**31),
    use_rows=st.booleans(),
    duplicate=st.booleans(),
)
def test_property_topk_matches_numpy(
    app: Any, n: int, dims: int, k: int, seed: int, use_rows: bool, duplicate: bool
) -> None:
    rng = np.random.default_rng(seed)
    data = rng.integers(-3, 4, size=(n, dims)).astype(np.float32)  # small ints: many exact ties
    data[np.abs(data).sum(axis=1) == 0, 0] = 1.0
    if duplicate and n > 1:
        data[-1] = data[0]
    rows = sorted(rng.choice(n, size=rng.integers(0, n + 1), replace=False).tolist()) if use_rows else None
    q = rng.integers(-3, 4, size=dims).astype(np.float32)
    if not q.any():
        q[0] = 1.0
    browser, _ = run_both(app, data, [(q, k, rows)])
    got = browser["hits"][0]
    # Exact reference in float64; the kernels work in float32, so rows within 1e-6 of the k-th score
    # may fall either side of it. Everything clearly above must be there, nothing clearly below may be.
    unit = data.astype(np.float64) / np.linalg.norm(data.astype(np.float64), axis=1, keepdims=True)
    exact = unit @ (q / np.linalg.norm(q))
    candidates = list(range(n)) if rows is None else rows
    if k <= 0 or not candidates:
        assert got == []
        return
    ranked = sorted((exact[r] for r in candidates), reverse=True)
    kth = ranked[min(k, len(candidates)) - 1]
    got_rows = [r for r, _ in got]
    assert len(set(got_rows)) == len(got_rows) and set(got_rows) <= set(candidates)
    assert {r for r in candidates if exact[r] > kth + 1e-6} <= set(got_rows)
    assert all(exact[r] >= kth - 1e-6 for r in got_rows)
    assert len(got_rows) >= min(k, len(candidates))
    scores = [s for _, s in got]
    assert all(a >= b for a, b in zip(scores, scores[1:], strict=False))
    assert np.allclose(scores, [exact[r] for r in got_rows], atol=1e-6)


KERNEL_OPS = """
import base64
from pyapp.browser.js_kernel import JsKernel
from pyapp.errors import InvalidVector, DimensionMismatch
k = JsKernel(4)
rows = k.prepare(k.pack([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [1, 1, 1, 1]]), 4)
k.append(rows[:32], 2)
k.append(rows[32:], 2)
k.set_row(1, k.prepare(k.pack([[0, 0, 0, 5]]), 1))
before = k.get_row(3)
k.swap_remove(0)  # the last row (3) moves into row 0
errors = []
for bad in BAD:
    try:
        k.prepare(k.pack(bad), 1)
        errors.append(None)
    except (InvalidVector, DimensionMismatch) as exc:
        errors.append([type(exc).__name__, str(exc)])
try:
    k.topk(k.prepare(k.pack([[1, 0, 0, 0]]), 1), 2, [0, 9])
    oob = None
except IndexError as exc:
    oob = "IndexError"
result = {
    "size": k.size,
    "row0_is_old_row3": k.get_row(0) == before,
    "matrix": base64.b64encode(k.to_bytes()).decode(),
    "some_rows": base64.b64encode(k.get_rows([2, 0, 2])).decode(),
    "no_rows": k.get_rows([]) == b"",
    "errors": errors,
    "oob": oob,
    "empty_rows": k.topk(k.prepare(k.pack([[1, 0, 0, 0]]), 1), 3, []),
    "k0": k.topk(k.prepare(k.pack([[1, 0, 0, 0]]), 1), 0),
}
"""


# NaN, zeros, wrong length, a string, a non-number, a numeric string, a boolean, a vector whose norm overflows float32
BAD = [
    [[float("nan"), 0, 0, 0]],
    [[0, 0, 0, 0]],
    [[1, 2, 3]],
    ["abcd"],
    [[1, "x", 2, 3]],
    [["1", "2", "3", "4"]],
    [[True, 0.5, 0.5, 0.5]],
    [[3e38, 3e38, 3e38, 3e38]],
]


def test_row_operations_and_errors_match_numpy_kernel(app: Any) -> None:
    out = app.run(KERNEL_OPS, BAD=BAD)
    ref = NumpyKernel(4)
    rows = ref.prepare(ref.pack([[1, 0, 0, 0], [0, 2, 0, 0], [0, 0, 3, 0], [1, 1, 1, 1]]), 4)
    ref.append(rows, 4)
    ref.set_row(1, ref.prepare(ref.pack([[0, 0, 0, 5]]), 1))
    ref.swap_remove(0)
    assert out["size"] == ref.size == 3
    assert out["row0_is_old_row3"] is True
    assert np.allclose(np.frombuffer(base64.b64decode(out["matrix"]), "<f4"), np.frombuffer(ref.to_bytes(), "<f4"))
    expected = []
    for bad in BAD:
        try:
            ref.prepare(ref.pack(bad), 1)
            expected.append(None)
        except (InvalidVector, DimensionMismatch) as exc:
            expected.append([type(exc).__name__, str(exc)])
    assert [e and e[0] for e in out["errors"]] == [e and e[0] for e in expected]
    assert out["errors"][:2] == expected[:2]  # same messages for NaN and all-zero vectors
    assert out["errors"][-1] is None and expected[-1] is None  # normalised in float64, not stored as zeros
    assert base64.b64decode(out["some_rows"]) == ref.get_rows([2, 0, 2]) == b"".join(ref.get_row(r) for r in (2, 0, 2))
    assert out["no_rows"] is True
    assert out["oob"] == "IndexError"
    assert out["empty_rows"] == [] and out["k0"] == []


BENCH = """
import js
from array import array
import random
from pyapp.browser.js_kernel import JsKernel
rnd = random.Random(5)
k = JsKernel(768)
data = array("f", array("b", rnd.randbytes(n * 768))).tobytes()
k.load(k.prepare(data, n), n)
q = k.prepare(array("f", array("b", rnd.randbytes(768))).tobytes(), 1)
times = []
for _ in range(15):
    t = js.performance.now()
    hits = k.topk(q, 10)
    times.append(js.performance.now() - t)
result = {"times": times, "hits": len(hits)}
"""


def test_topk_10k_x_768_is_fast(app: Any) -> None:
    """Guard against falling back to per-element Python (~2.5 s): generous bound for a loaded 2-core VM."""
    out = app.run(BENCH, n=10_000)
    assert out["hits"] == 10
    assert statistics.median(out["times"]) < 150, out["times"]


MANY_RUN = """
import base64
from pyapp.browser.js_kernel import JsKernel
k = JsKernel(dims)
k.load(k.prepare(base64.b64decode(data), n), n)
qs = k.prepare(base64.b64decode(queries), nq)
w = dims * 4
result = {
    str(kk): {
        "many": k.topk_many(qs, nq, kk),
        "single": [[row for row, _ in k.topk(qs[i * w : (i + 1) * w], kk)][:kk] for i in range(nq)],
    }
    for kk in ks
}
"""


@pytest.mark.parametrize("dims", [16, 10], ids=["wasm-simd", "js-loop"])
def test_topk_many_equals_topk_per_query_ties_included(app: Any, dims: int) -> None:
    """The IVF calibration's batched truth (``topk_many``: blocks of 256 rows scored against groups of 16 queries,
    a k-entry heap per query) answers what ``topk`` answers first for each query, ties by row, also for ties
    that straddle a block edge and for k beyond the row count."""
    rng = np.random.default_rng(5)
    data = rng.standard_normal((700, dims)).astype("f4")
    data[250:270] = data[10]  # 21 equal rows around the first block edge (256)
    queries = np.concatenate([data[[10, 255, 699]], rng.standard_normal((20, dims)).astype("f4")])  # two groups
    ks = [1, 11, 1000]
    out = app.run(MANY_RUN, dims=dims, n=len(data), data=b64(data), nq=len(queries), queries=b64(queries), ks=ks)
    for kk in ks:
        got = out[str(kk)]
        assert got["many"] == got["single"], kk
        assert all(len(rows) == min(kk, len(data)) for rows in got["many"])
    assert out["11"]["many"][0] == [10, *range(250, 260)]  # the tied rows, lowest first, across the block edge
