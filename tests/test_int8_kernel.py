"""Int8Kernel must answer exactly as NumpyKernel: same rows, same float32 scores, same tie order.

The int8 shadow only prunes; these tests attack the pruning with near-ties below int8 resolution,
duplicates, outlier dimensions, filtered subsets and every mutation, and check the error bound itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("simsimd")

from pyapp.kernels import (  # noqa: E402
    KERNEL_ENV,
    default_kernel,
    int8_kernel,  # noqa: E402
)
from pyapp.kernels.int8_kernel import Int8Kernel  # noqa: E402
from pyapp.kernels.ivf_numpy import NumpyListCopies  # noqa: E402
from pyapp.kernels.numpy_kernel import NumpyKernel  # noqa: E402


@pytest.fixture(autouse=True)
def always_prune(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the int8 path even on the small matrices hypothesis builds."""
    monkeypatch.setattr(int8_kernel, "SMALL", 0)


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def pair(matrix: np.ndarray) -> tuple[NumpyKernel, Int8Kernel]:
    dims = matrix.shape[1]
    ref, fast = NumpyKernel(dims), Int8Kernel(dims)
    data = ref.prepare(matrix.tobytes(), matrix.shape[0])
    ref.load(bytes(data), matrix.shape[0])
    fast.load(bytes(data), matrix.shape[0])
    return ref, fast


def query_bytes(kernel: NumpyKernel, q: np.ndarray) -> bytes:
    return bytes(kernel.prepare(np.asarray(q, dtype=np.float32).tobytes(), 1))


def near_ties(rng: np.random.Generator, n: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows that all sit within ~1e-4 of the query's direction: int8 cannot tell them apart."""
    q = unit(rng.standard_normal((1, dims)))[0]
    rows = q[None, :] + rng.standard_normal((n, dims)).astype(np.float32) * 1e-4
    return unit(rows), q


def test_identical_to_numpy_on_random_data() -> None:
    rng = np.random.default_rng(1)
    matrix = unit(rng.uniform(-1, 1, (3000, 64)))
    ref, fast = pair(matrix)
    for _ in range(20):
        q = query_bytes(ref, rng.uniform(-1, 1, 64))
        for k in (1, 10, 200, 2999, 3000, 5000):
            assert fast.topk(q, k) == ref.topk(q, k)


def test_near_ties_below_int8_resolution_are_ranked_exactly() -> None:
    rng = np.random.default_rng(2)
    rows, q = near_ties(rng, 2000, 96)
    noise = unit(rng.standard_normal((2000, 96)))
    ref, fast = pair(np.concatenate([noise, rows, noise]))
    qb = query_bytes(ref, q)
    for k in (1, 5, 50, 1999):
        got = fast.topk(qb, k)
        assert got == ref.topk(qb, k)
        assert all(row >= 2000 for row, _ in got[:k])  # the near-duplicates win


def test_exact_duplicates_keep_every_tied_row_in_row_order() -> None:
    rng = np.random.default_rng(3)
    base = unit(rng.standard_normal((1, 32)))
    matrix = np.concatenate([unit(rng.standard_normal((500, 32))), np.repeat(base, 40, axis=0)])
    ref, fast = pair(matrix)
    got = fast.topk(query_bytes(ref, base[0]), 3)
    assert got == ref.topk(query_bytes(ref, base[0]), 3)
    assert [row for row, _ in got] == list(range(500, 540))  # every tie is returned, in row order


def test_wide_vectors_near_ties() -> None:
    """At 3,072 dims float32 rounding of the exact score is larger than at 768; pruning must allow for it."""
    rng = np.random.default_rng(9)
    rows, q = near_ties(rng, 300, 3072)
    ref, fast = pair(np.concatenate([unit(rng.standard_normal((300, 3072))), rows]))
    qb = query_bytes(ref, q)
    for k in (1, 10, 299):
        assert fast.topk(qb, k) == ref.topk(qb, k)


def test_outlier_dimension_rows() -> None:
    """BERT-like vectors with one huge dimension make the per-row scale coarse; answers stay exact."""
    rng = np.random.default_rng(4)
    matrix = rng.standard_normal((2500, 128)).astype(np.float32) * 0.05
    matrix[:, 7] = 3.0
    matrix = unit(matrix)
    ref, fast = pair(matrix)
    for _ in range(10):
        q = query_bytes(ref, matrix[rng.integers(2500)] + rng.standard_normal(128).astype(np.float32) * 0.01)
        assert fast.topk(q, 10) == ref.topk(q, 10)


def test_filtered_subsets_match() -> None:
    rng = np.random.default_rng(5)
    rows, q = near_ties(rng, 1000, 48)
    ref, fast = pair(np.concatenate([unit(rng.standard_normal((1000, 48))), rows]))
    qb = query_bytes(ref, q)
    for subset in (list(range(0, 2000, 3)), list(range(1999, 0, -7)), [1500, 3, 1600, 1501]):
        for k in (1, 4, 10, 100):
            assert fast.topk(qb, k, subset) == ref.topk(qb, k, subset)


def test_mutations_keep_the_shadow_in_step() -> None:
    rng = np.random.default_rng(6)
    ref, fast = pair(unit(rng.standard_normal((300, 40))))
    for step in range(400):
        action = rng.integers(3)
        if action == 0:
            n = int(rng.integers(1, 20))
            block = bytes(ref.prepare(unit(rng.standard_normal((n, 40))).tobytes(), n))
            ref.append(block, n)
            fast.append(block, n)
        elif action == 1 and ref.size:
            row = int(rng.integers(ref.size))
            vec = bytes(ref.prepare(unit(rng.standard_normal((1, 40))).tobytes(), 1))
            ref.set_row(row, vec)
            fast.set_row(row, vec)
        elif ref.size > 1:
            row = int(rng.integers(ref.size))
            ref.swap_remove(row)
            fast.swap_remove(row)
        if step % 20 == 0:
            q = query_bytes(ref, rng.standard_normal(40))
            assert fast.topk(q, 7) == ref.topk(q, 7)
            assert fast.to_bytes().tobytes() == ref.to_bytes().tobytes()
    q = query_bytes(ref, rng.standard_normal(40))
    assert fast.topk(q, 15) == ref.topk(q, 15)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    dims=st.sampled_from([3, 8, 33, 128]),
    k=st.integers(1, 40),
    near=st.booleans(),
    filtered=st.booleans(),
)
def test_property_same_answer_as_numpy(seed: int, n: int, dims: int, k: int, near: bool, filtered: bool) -> None:
    rng = np.random.default_rng(seed)
    if near:
        matrix, q = near_ties(rng, n, dims)
    else:
        matrix = unit(rng.integers(-3, 4, (n, dims)).astype(np.float32) + 0.01)  # coarse values: exact ties
        q = rng.integers(-3, 4, dims).astype(np.float32) + 0.02
    ref, fast = pair(matrix)
    qb = query_bytes(ref, q)
    rows = sorted(rng.choice(n, size=max(1, n // 2), replace=False).tolist()) if filtered else None
    assert fast.topk(qb, k, rows) == ref.topk(qb, k, rows)


def test_bounds_contain_the_exact_scores() -> None:
    rng = np.random.default_rng(7)
    for dims in (16, 384, 768):
        matrix = unit(np.concatenate([rng.standard_normal((400, dims)), rng.uniform(-1, 1, (400, dims))]))
        ref, fast = pair(matrix)
        for _ in range(5):
            q = np.frombuffer(query_bytes(ref, rng.standard_normal(dims)), dtype=np.float32)
            lower, upper = fast._bounds(q, None)
            exact = matrix.astype(np.float64) @ q.astype(np.float64)
            assert (lower <= exact).all() and (exact <= upper).all()
            assert (upper - lower).max() < 0.1  # and tight enough to prune


def test_default_kernel_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    assert type(default_kernel(8)) is Int8Kernel
    monkeypatch.setenv(KERNEL_ENV, "numpy")
    assert type(default_kernel(8)) is NumpyKernel


def test_prepare_one_equals_prepare_many_bit_for_bit() -> None:
    """Queries and single writes take a scalar fast path; it must normalise exactly as the batch path."""
    rng = np.random.default_rng(8)
    kernel = NumpyKernel(64)
    for scale in (1e-20, 1e-3, 1.0, 1e3, 1e20):
        v = (rng.standard_normal(64) * scale).astype(np.float32)
        one = bytes(kernel.prepare(kernel.pack([v]), 1))
        many = bytes(kernel.prepare(kernel.pack([v, v]), 2))
        assert one == many[: 64 * 4]
    already = unit(rng.standard_normal((1, 64))).tobytes()
    assert bytes(kernel.prepare(already, 1)) == already  # already unit: untouched
    from pyapp.errors import InvalidVector

    with pytest.raises(InvalidVector, match="NaN or infinity"):
        kernel.prepare(np.full(64, np.inf, dtype=np.float32).tobytes(), 1)
    with pytest.raises(InvalidVector, match="all zeros"):
        kernel.prepare(np.zeros(64, dtype=np.float32).tobytes(), 1)


def test_get_rows_is_get_row_back_to_back() -> None:
    """The listing path reads many rows in one kernel call; it must equal reading them one by one."""
    for kernel_class in (NumpyKernel, Int8Kernel):
        kernel = kernel_class(6)
        data = np.random.default_rng(3).standard_normal((5, 6)).astype("<f4")
        kernel.load(kernel.prepare(data.tobytes(), 5), 5)
        kernel.swap_remove(1)
        rows = [3, 0, 3, 2]
        assert kernel.get_rows(rows) == b"".join(kernel.get_row(r) for r in rows)
        assert kernel.get_rows([]) == b""


def test_probed_lists_are_scanned_from_kept_blocks_and_writes_drop_them() -> None:
    """An IVF probe passes ``ProbedRows`` (each list's row array stays the same object while its list is
    unchanged): the kernel keeps each probed list's int8 codes contiguous. Answers equal ``NumpyKernel``'s over
    the same rows, also after writes changed rows of kept lists (every write drops the kept blocks), and a list
    whose row array is replaced loses its block with the old array."""
    rng = np.random.default_rng(11)
    ref, fast = pair(unit(rng.standard_normal((3000, 24))))
    lists = NumpyListCopies()
    assign = rng.integers(0, 12, 3000)
    for lst in range(12):
        lists.put(lst, np.flatnonzero(assign == lst).tolist())
    probes = [rng.choice(12, 4, replace=False).tolist() for _ in range(10)]

    def check() -> None:
        for chosen in probes:
            q = query_bytes(ref, rng.standard_normal(24))
            rows = lists.gather(chosen)
            assert len(rows.parts) == 4
            assert fast.topk(q, 10, rows) == ref.topk(q, 10, [int(r) for r in rows])

    check()
    assert fast._lists, "probed lists' blocks are kept"
    for row in rng.choice(3000, 50, replace=False):
        vec = bytes(ref.prepare(unit(rng.standard_normal((1, 24))).tobytes(), 1))
        ref.set_row(int(row), vec)
        fast.set_row(int(row), vec)
    assert not fast._lists, "a write drops every kept block"
    check()
    for lst in range(12):
        lists.put(lst, np.flatnonzero(assign == lst).tolist())
    assert not fast._lists, "replaced row arrays take their blocks with them"
    check()
