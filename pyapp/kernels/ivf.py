"""Inverted-file (IVF) partitioning: which rows a query scans once an index is large.

Why: an exact scan reads every row (memory-bandwidth bound: ~20 ms at 200k x 768). k-means centroids split the
rows into ``nlist`` lists; a query ranks the centroids and scans only the rows of the nearest lists with the
ordinary kernel (int8 shadow + float32 re-score on the server, the JS kernel in the browser), so the answer is
exact *over the candidates* and the only loss is a true neighbour sitting in a list that was not probed
(recall, measured in bench/ivf_bench.py).

This module is the bookkeeping and the policy, in pure Python so both builds share it: row -> list assignment
kept in step with every write (rows are dense and deletes swap the last row in, as in the kernels), when to
train and retrain (a measured drift criterion), how many candidates a query scans, and the snapshot state.
The arithmetic (training, nearest centroid, centroid ranking) sits behind ``Centroids`` with one
implementation per runtime: ``ivf_numpy`` on the server, ``pyapp.browser.ivf_js`` in Pyodide without numpy.
"""

from __future__ import annotations

import base64
import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol

from ..errors import CorruptIndex, InvalidInput, describe
from .base import Buffer, VectorKernel

STATE_VERSION = 2  # 2: adds the calibrated probe depth ("probe"); version 1 still opens (PROBE_SCALE rule)
DEFAULT_THRESHOLD = (
    64_000  # exact below: the int8 scan is ~6 ms at 50k x 768, and bench/run_core.sh (<= 50k) stays exact
)
MIN_CANDIDATES = 1024  # a query scans at least this many rows (all of them in a small index: exact answers)
PER_K = 64  # ... and at least 64 candidates per requested hit
# The automatic probe depth of a partitioning saved before calibration existed (state version 1): the nearest
# lists until 0.8 x sqrt(nlist) lists' worth of rows is covered. One rule for every data set, so it probes deeper
# than clustered data needs; calibrated partitions (below) replace it.
PROBE_SCALE = 0.8
# A probe reads its candidates list by list (gathered from scattered rows, on the server then kept per list until a
# write), at up to about 3x the per-row cost of the contiguous full scan plus per-list work: the automatic probe
# gives way to the exact scan from a third of the rows on (an exact answer is never the worse choice there).
GATHER_COST = 3
# Calibration, run whenever the partitions are (re)trained: leave-one-out on a sample of the index's own rows (each
# a query, its truth the exact top-10 of the other rows), then the smallest candidate budget whose mean recall@10
# over the sample reaches CALIBRATION_RECALL and whose lower confidence bound reaches CALIBRATION_FLOOR (the
# promise). The margin covers fresh queries (not rows of the index) and the sample's noise, which is per query,
# not per neighbour: a cluster split between lists loses most of one query's neighbours at once.
CALIBRATION_QUERIES = 128  # per round; each costs n x dims multiply-adds (128 / nlist of assigning every row)
CALIBRATION_ROUNDS = 3
CALIBRATION_ERROR = 0.005  # another round while the sample recall's standard error is above this
CALIBRATION_K = 10
CALIBRATION_RECALL = 0.97
CALIBRATION_FLOOR = 0.95
# Drift: retrain when the index has doubled or halved since training, when list sizes got uneven (the expected
# rows per probed list grew by half), or when rows sit farther from their centroids (mean 1 - cosine up 25 %).
GROWTH = 2.0
IMBALANCE_GROWTH = 1.5
RESIDUAL_GROWTH = 1.25


def nlist_for(n: int) -> int:
    """Lists for ``n`` rows: sqrt(n)/2 (200k -> 223, 1M -> 500). Fewer, longer lists than the textbook sqrt(n)
    because every write pays one dot product per centroid, and insert throughput must stay within 2x."""
    return max(min(n, 4), min(1024, round(math.sqrt(n) / 2)))


def check_threshold(value: Any) -> int:
    """``ivf_threshold``: a positive integer (rows from which the index is partitioned)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"ivf_threshold must be a positive integer, got {describe(value)}")
    return value


def check_nprobe(value: Any) -> int | None:
    """``nprobe``: None (automatic) or a positive integer of lists to scan."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"nprobe must be a positive integer or None, got {describe(value)}")
    return value


def row_mask(rows: Sequence[int], n: int) -> bytes | bytearray:
    """A byte per row, 1 where the row is in ``rows`` (a filter's matches): O(1) membership while probing."""
    if hasattr(rows, "dtype"):  # numpy rows from the metadata table: one vectorised pass
        import numpy as np

        mask = np.zeros(n, dtype=np.uint8)
        mask[np.asarray(rows)] = 1
        return mask.tobytes()
    out = bytearray(n)
    for r in rows:
        out[r] = 1
    return out


def use_exact(matches: int, rows: int, target: int) -> bool:
    """Whether the automatic probe should give way to an exact scan.

    A selective filter is answered by an exact scan of its matches: probing would need about
    ``target * rows / matches`` rows to gather ``target`` matching candidates, more than the matches themselves.
    Unfiltered, a probe reads its candidates scattered over memory, at up to ``GATHER_COST`` times the cost per
    row of the contiguous full scan; when calibration asks for that large a share of the rows (data with no cluster
    structure, e.g. uniform noise), the full scan is exact and no slower."""
    if matches == rows:
        return target * GATHER_COST >= rows
    return matches * matches <= target * rows


class Centroids(Protocol):
    """The arithmetic of one set of unit centroids (numpy on the server, JS in the browser)."""

    nlist: int

    def nearest(self, data: Buffer, n: int) -> tuple[Sequence[int], Sequence[float]]:
        """For ``n`` prepared rows: the nearest centroid of each and its cosine."""

    def rank(self, query: Buffer) -> Sequence[int]:
        """Every list, nearest centroid first, for a prepared query."""

    def to_bytes(self) -> bytes:
        """The centroid matrix, float32, list order."""


class ListCopies(Protocol):
    """A runtime's copies of list rows (optional: ``Centroids.list_copies()``), kept in step by ``Partitions``."""

    def put(self, lst: int, rows: list[int]) -> None:
        """Replace list ``lst``'s copy with ``rows``."""

    def get(self, lst: int) -> Sequence[int]:
        """List ``lst``'s copy (tests)."""

    def gather(self, lists: Sequence[int]) -> Sequence[int]:
        """The rows of these lists, in this order, as something the runtime's kernel scans directly."""


class IvfMath(Protocol):
    """Builds ``Centroids``: from stored bytes, or by k-means over a kernel's rows."""

    def centroids(self, data: bytes, nlist: int, dims: int) -> Centroids: ...

    def train(self, kernel: VectorKernel, nlist: int, seed: int) -> Centroids: ...

    def neighbours(self, kernel: VectorKernel, queries: bytes, n: int, k: int) -> list[list[int]]:
        """Exact top-``k`` rows of ``kernel`` (largest cosine first) for each of ``n`` prepared queries."""


def default_math() -> IvfMath | None:
    """numpy when it loads, the JS kernel in Pyodide without numpy; None where neither can run."""
    try:
        from .ivf_numpy import NumpyIvfMath
    except ImportError:
        from .._platform import is_pyodide

        if not is_pyodide():
            return None
        from ..browser.ivf_js import JsIvfMath

        return JsIvfMath()
    return NumpyIvfMath()


@dataclass(frozen=True)
class Probe:
    """A calibrated automatic probe depth: ``share`` of the rows (the candidate budget over the rows at
    calibration); ``recall`` is the sample's mean recall@10 at that budget, ``sample`` how many rows were queries."""

    share: float
    recall: float
    sample: int


def _recall_stats(costs: list[list[int]], budget: int) -> tuple[float, float]:
    """Mean per-query recall at ``budget`` and its standard error."""
    recalls = [sum(c < budget for c in query) / len(query) for query in costs if query]
    if not recalls:
        return 1.0, 0.0
    mean = math.fsum(recalls) / len(recalls)
    if len(recalls) < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((r - mean) ** 2 for r in recalls) / (len(recalls) - 1) / len(recalls))


def probe_budget(costs: list[list[int]], target: float, floor: float) -> int:
    """The smallest budget B whose sample recall reaches ``target`` on average and ``floor`` at its lower
    confidence bound (mean - 2 standard errors over the queries: neighbours of one query hide together, so the
    queries, not the neighbours, are the independent draws). ``costs[i]``: for query i's neighbours, the rows the
    automatic probe gathers before reaching each one's list; it is found iff ``cost < B`` (lists are added while
    fewer than B rows are gathered)."""
    flat = sorted({c for query in costs for c in query})
    if not flat:
        return 1

    def enough(budget: int) -> bool:
        mean, error = _recall_stats(costs, budget)
        return mean >= target - 1e-12 and mean - 2 * error >= floor - 1e-12

    lo, hi = 0, len(flat) - 1  # both criteria only grow with B: binary search over the budgets that differ
    if not enough(flat[hi] + 1):
        return flat[hi] + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if enough(flat[mid] + 1):
            hi = mid
        else:
            lo = mid + 1
    return 1 if lo == 0 and enough(1) else flat[lo] + 1


@dataclass(frozen=True)
class Trained:
    """What the partitioning looked like when trained: the baseline the drift criterion compares with."""

    rows: int
    imbalance: float
    residual: float


class Partitions:
    """Row -> list assignment over ``Centroids``, kept in step with the kernel's dense rows."""

    def __init__(self, centroids: Centroids, trained: Trained | None = None) -> None:
        self.centroids = centroids
        self.nlist = centroids.nlist
        self.members: list[list[int]] = [[] for _ in range(self.nlist)]
        self.assign: list[int] = []  # row -> list
        self.pos: list[int] = []  # row -> its place in members[list]
        self.score: list[float] = []  # row -> cosine to its centroid (drift)
        self.score_sum = 0.0
        self.trained = trained
        self.probe: Probe | None = None  # None: PROBE_SCALE's rule (a version-1 state); set by calibrate()
        # The runtime's own copies of list rows (numpy arrays, or Int32Arrays held by JS), put lazily by a query
        # and marked stale when the list changes: a query then hands over list numbers, not thousands of ints.
        self._copies: ListCopies | None = getattr(centroids, "list_copies", lambda: None)()
        self._fresh: set[int] = set()  # lists whose copy equals ``members[list]``

    def __len__(self) -> int:
        return len(self.assign)

    # ------------------------------------------------------------------ keeping rows in step
    def add(self, start: int, data: Buffer, n: int) -> None:
        """Rows ``start .. start+n-1`` were appended with these prepared vectors."""
        if n == 0:
            return
        if start != len(self.assign):
            raise AssertionError(f"partitions hold {len(self.assign)} rows, rows appended at {start}")
        lists, scores = self.centroids.nearest(data, n)
        self._place(start, lists, scores)
        if self.trained is None:
            self.trained = self._measure()

    def _place(self, start: int, lists: Sequence[int], scores: Sequence[float]) -> None:
        members, assign, pos, score = self.members, self.assign, self.pos, self.score
        if len(lists) > len(self._fresh):
            self._fresh.clear()
        else:
            self._fresh.difference_update(lists)
        for offset, (lst, s) in enumerate(zip(lists, scores)):
            bucket = members[lst]
            assign.append(lst)
            pos.append(len(bucket))
            bucket.append(start + offset)
            score.append(s)
        self.score_sum += math.fsum(scores)

    def update(self, row: int, vector: Buffer) -> None:
        """Row ``row`` got a new vector: move it to its nearest list."""
        lists, scores = self.centroids.nearest(vector, 1)
        self._detach(row)
        lst = int(lists[0])
        self._fresh.discard(lst)
        self.assign[row] = lst
        self.pos[row] = len(self.members[lst])
        self.members[lst].append(row)
        self.score_sum += float(scores[0]) - self.score[row]
        self.score[row] = float(scores[0])

    def _detach(self, row: int) -> None:
        self._fresh.discard(self.assign[row])
        bucket = self.members[self.assign[row]]
        p = self.pos[row]
        moved = bucket.pop()
        if moved != row:
            bucket[p] = moved
            self.pos[moved] = p

    def swap_remove(self, row: int) -> None:
        """Row ``row`` is deleted and the last row takes its number (as ``VectorKernel.swap_remove``)."""
        self._detach(row)
        self.score_sum -= self.score[row]
        last = len(self.assign) - 1
        if row != last:
            lst = self.assign[last]
            self._fresh.discard(lst)
            self.members[lst][self.pos[last]] = row
            self.assign[row], self.pos[row], self.score[row] = lst, self.pos[last], self.score[last]
        self.assign.pop()
        self.pos.pop()
        self.score.pop()

    def verify(self, kernel: VectorKernel) -> None:
        """Check every invariant against the kernel's rows (tests): each row in exactly one list, at the place
        ``pos`` says, in the list of its nearest centroid, with the cosine ``score`` says. ``AssertionError``."""
        n = kernel.size
        assert len(self.assign) == len(self.pos) == len(self.score) == n, "partitions and rows differ in count"
        assert sum(len(b) for b in self.members) == n, "lists hold a different number of rows"
        for lst, bucket in enumerate(self.members):
            for p, row in enumerate(bucket):
                assert self.assign[row] == lst and self.pos[row] == p, f"row {row} is misplaced"
        for lst in self._fresh:
            assert self._copies is not None and list(self._copies.get(lst)) == self.members[lst], f"list {lst} copy"
        if n:
            _, best = self.centroids.nearest(kernel.to_bytes(), n)
            for row, (mine, top) in enumerate(zip(self.score, best)):
                assert abs(mine - top) <= 1e-5, f"row {row} is not in its nearest list ({mine} < {top})"
        assert abs(self.score_sum - math.fsum(self.score)) <= 1e-6 * max(1, n), "drift sum out of step"

    # ------------------------------------------------------------------ drift
    def _measure(self) -> Trained:
        n = len(self.assign)
        sizes = sum(len(b) ** 2 for b in self.members)
        imbalance = self.nlist * sizes / (n * n) if n else 1.0  # 1.0 when every list holds n / nlist rows
        return Trained(n, imbalance, 1.0 - self.score_sum / n if n else 0.0)

    def drift(self) -> str | None:
        """Why the partitioning should be retrained now (None: it is fine). Measured, not timed."""
        base, now = self.trained, self._measure()
        if base is None or now.rows == 0:
            return None
        if now.rows > base.rows * GROWTH or now.rows * GROWTH < base.rows:
            return f"rows {base.rows} -> {now.rows}"
        if now.imbalance > base.imbalance * IMBALANCE_GROWTH:
            return f"list imbalance {base.imbalance:.2f} -> {now.imbalance:.2f}"
        if now.residual > base.residual * RESIDUAL_GROWTH + 1e-6:
            return f"mean distance to centroid {base.residual:.4f} -> {now.residual:.4f}"
        return None

    def stats(self) -> dict[str, Any]:
        now = self._measure()
        sizes = [len(b) for b in self.members]
        return {
            "lists": self.nlist,
            "rows": now.rows,
            "largest_list": max(sizes, default=0),
            "imbalance": round(now.imbalance, 3),
            "mean_distance": round(now.residual, 5),
            "trained_rows": None if self.trained is None else self.trained.rows,
            "probe": "default rule" if self.probe is None else "calibrated",
            "probe_share": None if self.probe is None else round(self.probe.share, 5),
            "probe_rows_top10": self.target(10),
            "auto_scan": "exact" if use_exact(now.rows, now.rows, self.target(10)) else "probe",
            "calibration_recall": None if self.probe is None else round(self.probe.recall, 4),
            "calibration_sample": None if self.probe is None else self.probe.sample,
        }

    # ------------------------------------------------------------------ calibration
    def calibrate(self, kernel: VectorKernel, math_: IvfMath, seed: int = 0) -> Probe:
        """Choose this index's automatic probe depth from its own rows (leave-one-out; see CALIBRATION_*).

        For each sampled row: the exact top-10 of the other rows (``math_.neighbours``, one batched pass per
        round), the centroid order the query would probe, and for each neighbour the rows probed before its list
        (its ``cost``); ``probe_budget`` picks the budget. Rounds of CALIBRATION_QUERIES rows are added while the
        sample recall's standard error at that budget exceeds CALIBRATION_ERROR, unless the budget is under the
        floors and the recall at the floors is safely above target (easy data stops after one round; data whose
        clusters straddle lists buys the precision it needs), up to CALIBRATION_ROUNDS.
        Deterministic for a seed. Sets and returns ``self.probe``."""
        n = len(self.assign)
        if n <= CALIBRATION_K + 1:
            self.probe = Probe(1.0, 1.0, 0)
            return self.probe
        drawn = random.Random(seed).sample(range(n), min(CALIBRATION_QUERIES * CALIBRATION_ROUNDS, n))
        costs: list[list[int]] = []
        budget = 1
        for start in range(0, len(drawn), CALIBRATION_QUERIES):
            costs += self._costs(kernel, math_, sorted(drawn[start : start + CALIBRATION_QUERIES]))
            budget = probe_budget(costs, CALIBRATION_RECALL, CALIBRATION_FLOOR)
            if _recall_stats(costs, budget)[1] <= CALIBRATION_ERROR:
                break
            # a budget under the floors is probed at the floors: enough when even the pessimistic recall there is
            mean, error = _recall_stats(costs, max(budget, MIN_CANDIDATES, PER_K * CALIBRATION_K))
            if mean - 2 * error >= CALIBRATION_RECALL:
                break
        found = [c < budget for query in costs for c in query]
        self.probe = Probe(min(1.0, budget / n), sum(found) / max(1, len(found)), len(costs))
        return self.probe

    def _costs(self, kernel: VectorKernel, math_: IvfMath, sample: list[int]) -> list[list[int]]:
        """For each sampled row as a query: the rows the automatic probe gathers before each true neighbour's list."""
        k = CALIBRATION_K
        data = bytes(memoryview(kernel.get_rows(sample)).cast("B"))
        truth = math_.neighbours(kernel, data, len(sample), k + 1)
        width = len(data) // len(sample)
        sizes = [len(b) for b in self.members]
        assign = self.assign
        costs: list[list[int]] = []
        for i, (row, found) in enumerate(zip(sample, truth)):
            others = [r for r in found if r != row][:k]
            before, total = {}, 0
            for lst in self.centroids.rank(data[i * width : (i + 1) * width]):
                before[lst] = total
                total += sizes[lst]
            costs.append([before[assign[r]] for r in others])
        return costs

    # ------------------------------------------------------------------ probing
    def candidates(self, query: Buffer, k: int, nprobe: int | None = None, allowed: Any = None) -> list[int]:
        """Rows to scan for ``query``: the nearest lists' rows (only those set in ``allowed``, a ``row_mask``, when
        filtered), ``nprobe`` lists or, automatically, until ``target(k)`` rows are gathered."""
        order = self.centroids.rank(query)
        members = self.members
        if allowed is None:
            if nprobe is not None:
                return self._rows_of(order[:nprobe])
            want, total, lists = self.target(k), 0, []
            for lst in order:
                lists.append(lst)
                total += len(members[lst])
                if total >= want:
                    break
            return self._rows_of(lists)
        if nprobe is not None:
            return [r for r in chain.from_iterable(members[lst] for lst in order[:nprobe]) if allowed[r]]
        want = self.target(k)
        out: list[int] = []
        for lst in order:
            out.extend([r for r in members[lst] if allowed[r]])
            if len(out) >= want:
                break
        return out

    def _rows_of(self, lists: Sequence[int]) -> Sequence[int]:
        """The rows of these lists, gathered by the runtime from its copies when it keeps them (numpy arrays
        concatenated; in the page a JS Int32Array that the JS kernel scans as is), else as a Python list."""
        copies = self._copies
        if copies is None:
            return list(chain.from_iterable(self.members[lst] for lst in lists))
        fresh = self._fresh
        for lst in lists:
            if lst not in fresh:
                copies.put(lst, self.members[lst])
                fresh.add(lst)
        return copies.gather(lists)

    def target(self, k: int) -> int:
        """How many candidate rows the automatic probe gathers for top-``k``."""
        rows = len(self.assign)
        if self.probe is None:
            depth = math.ceil(rows * PROBE_SCALE / math.sqrt(self.nlist))
        else:  # a share, so the depth follows the rows between retrainings (at most a doubling or halving)
            depth = math.ceil(rows * self.probe.share)
        return max(MIN_CANDIDATES, PER_K * k, depth)

    # ------------------------------------------------------------------ snapshot state
    def state(self) -> dict[str, Any]:
        """JSON-able state saved with the snapshot rows (binary parts base64: compact, fast in both builds)."""
        t = self.trained
        return {
            "version": STATE_VERSION,
            "nlist": self.nlist,
            "centroids": base64.b64encode(self.centroids.to_bytes()).decode("ascii"),
            "assign": base64.b64encode(array("i", self.assign).tobytes()).decode("ascii"),
            "score": base64.b64encode(array("f", self.score).tobytes()).decode("ascii"),
            "trained": None if t is None else [t.rows, t.imbalance, t.residual],
            "probe": None if self.probe is None else [self.probe.share, self.probe.recall, self.probe.sample],
        }

    @classmethod
    def restore(cls, state: dict[str, Any], math_: IvfMath, dims: int, rows: int) -> Partitions:
        """Rebuild from ``state()`` for a snapshot of ``rows`` rows; ``CorruptIndex`` when it does not fit."""
        try:
            if state["version"] not in (1, STATE_VERSION):
                raise CorruptIndex(f"snapshot partitioning has unknown version {state['version']!r}")
            probe = None if state["version"] == 1 or state["probe"] is None else Probe(*state["probe"])
            if probe is not None and not (0.0 < probe.share <= 1.0 and 0.0 <= probe.recall <= 1.0):
                raise ValueError(f"probe {state['probe']!r} out of range")
            nlist = int(state["nlist"])
            raw = base64.b64decode(state["centroids"], validate=True)
            assign = array("i", base64.b64decode(state["assign"], validate=True))
            score = array("f", base64.b64decode(state["score"], validate=True))
            trained = None if state["trained"] is None else Trained(*state["trained"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptIndex(f"snapshot partitioning is malformed: {exc!r}") from exc
        if len(raw) != nlist * dims * 4 or len(assign) != rows or len(score) != rows or nlist < 1:
            raise CorruptIndex("snapshot partitioning does not match its rows")
        if rows and not 0 <= min(assign) <= max(assign) < nlist:
            raise CorruptIndex("snapshot partitioning names a list that does not exist")
        parts = cls(math_.centroids(raw, nlist, dims), trained)
        parts.probe = probe
        parts._place(0, assign.tolist(), score.tolist())
        return parts


__all__ = [
    "DEFAULT_THRESHOLD",
    "Centroids",
    "IvfMath",
    "Partitions",
    "Probe",
    "check_nprobe",
    "check_threshold",
    "default_math",
    "nlist_for",
    "row_mask",
    "use_exact",
]
