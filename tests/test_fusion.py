"""Rank fusion: hand-computed values, tie order, input checks, and properties over random legs."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyapp.errors import InvalidInput
from pyapp.fusion import reciprocal_rank_fusion, weighted_fusion

# --- reciprocal rank fusion -------------------------------------------------------------------------


def test_rrf_hand_computed() -> None:
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "c"]])
    assert [k for k, _ in fused] == ["b", "a", "c"]
    s = dict(fused)
    assert s["b"] == pytest.approx(1 / 62 + 1 / 61, abs=1e-15)
    assert s["a"] == pytest.approx(1 / 61, abs=1e-15) and s["c"] == pytest.approx(1 / 62, abs=1e-15)


def test_rrf_k_and_weights() -> None:
    s = dict(reciprocal_rank_fusion([["a", "b"], ["b"]], k=0, weights=[2.0, 0.5]))
    assert s == {"a": pytest.approx(2.0), "b": pytest.approx(2.0 / 2 + 0.5)}
    # a zero weight still lists the leg's keys (they were found), scoring nothing
    assert reciprocal_rank_fusion([["a"], ["b"]], weights=[1, 0]) == [("a", 1 / 61), ("b", 0.0)]


def test_rrf_ties_by_first_appearance_and_duplicates_count_once() -> None:
    assert [k for k, _ in reciprocal_rank_fusion([["x", "y"], ["y", "x"]])] == ["x", "y"]
    assert [k for k, _ in reciprocal_rank_fusion([["q"], ["p"]])] == ["q", "p"]
    # "a" repeated: only its first rank counts and "b" keeps rank 2
    assert reciprocal_rank_fusion([["a", "a", "b"]]) == [("a", 1 / 61), ("b", 1 / 62)]


def test_rrf_empty_and_invalid() -> None:
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[], []]) == []
    for bad in ({"k": -1}, {"k": math.nan}, {"weights": [1.0]}, {"weights": [1.0, -0.1]}, {"weights": [1, math.inf]}):
        with pytest.raises(InvalidInput):
            reciprocal_rank_fusion([["a"], ["b"]], **bad)


# --- weighted fusion ---------------------------------------------------------------------------------


def test_weighted_hand_computed() -> None:
    vector = [("a", 0.9), ("b", 0.7), ("c", 0.5)]  # -> 1.0, 0.5, 0.0
    keyword = [("c", 12.0), ("d", 4.0)]  # -> 1.0, 0.0
    fused = weighted_fusion([vector, keyword], [0.7, 0.3])
    s = dict(fused)
    assert s == {
        "a": pytest.approx(0.7),
        "b": pytest.approx(0.35),
        "c": pytest.approx(0.3),
        "d": pytest.approx(0.0),
    }
    assert [k for k, _ in fused] == ["a", "b", "c", "d"]


def test_weighted_single_hit_and_equal_scores_normalise_to_one() -> None:
    assert weighted_fusion([[("a", 0.2)], []], [0.5, 0.5]) == [("a", 0.5)]
    assert weighted_fusion([[("a", 3.0), ("b", 3.0)]], [1.0]) == [("a", 1.0), ("b", 1.0)]


def test_weighted_ties_duplicates_and_invalid() -> None:
    assert [k for k, _ in weighted_fusion([[("x", 1.0), ("y", 0.0)], [("y", 1.0), ("x", 0.0)]], [1, 1])] == ["x", "y"]
    # only the first occurrence of a key in a leg counts
    assert dict(weighted_fusion([[("a", 5.0), ("b", 1.0), ("a", 0.0)]], [1.0])) == {"a": 1.0, "b": 0.0}
    with pytest.raises(InvalidInput):
        weighted_fusion([[("a", 1.0)]], [1.0, 1.0])
    with pytest.raises(InvalidInput):
        weighted_fusion([[("a", math.nan)]], [1.0])
    with pytest.raises(InvalidInput):
        weighted_fusion([[("a", 1.0)]], [-1.0])


def test_weighted_extreme_but_finite_scores() -> None:
    fused = dict(weighted_fusion([[("a", 1e308), ("b", 0.0), ("c", -1e308)]], [1.0]))
    assert fused == {"a": 1.0, "b": pytest.approx(0.5), "c": 0.0}


# --- properties -------------------------------------------------------------------------------------

_keys = st.sampled_from([f"k{i}" for i in range(12)])
_rank_legs = st.lists(st.lists(_keys, max_size=10), max_size=4)
_int_scores = st.integers(min_value=-1000, max_value=1000).map(float)
_score_legs = st.lists(st.lists(st.tuples(_keys, _int_scores), max_size=10), min_size=1, max_size=4)
_weight = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0])


def _first_seen(keys_in_leg_order: list[list[str]]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for leg in keys_in_leg_order:
        for key in leg:
            seen.setdefault(key, len(seen))
    return seen


def _assert_ranked(fused: list[tuple[str, float]], first_seen: dict[str, int]) -> None:
    assert [k for k, _ in fused] == sorted(first_seen, key=lambda k: (-dict(fused)[k], first_seen[k]))


@settings(max_examples=300, deadline=None)
@given(legs=_rank_legs, k=st.sampled_from([0, 1, 60]), data=st.data())
def test_rrf_properties(legs: list[list[str]], k: int, data: st.DataObject) -> None:
    weights = data.draw(st.lists(_weight, min_size=len(legs), max_size=len(legs)))
    fused = reciprocal_rank_fusion(legs, k=k, weights=weights)
    keys = [key for key, _ in fused]
    assert len(keys) == len(set(keys)) and set(keys) == {key for leg in legs for key in leg}
    _assert_ranked(fused, _first_seen(legs))
    score = dict(fused)
    ranks = [{key: r for r, key in enumerate(dict.fromkeys(leg))} for leg in legs]  # first occurrence wins
    for a in score:
        for b in score:
            # better-or-equal rank in every leg (absent = infinitely bad) can never score lower
            if all(r.get(a, math.inf) <= r.get(b, math.inf) for r in ranks):
                assert score[a] >= score[b]
    for a in score:
        expected = sum(w / (k + r[a] + 1) for w, r in zip(weights, ranks, strict=True) if a in r)
        assert score[a] == pytest.approx(expected, rel=1e-12, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(leg=st.lists(_keys, max_size=12))
def test_rrf_single_leg_keeps_order_with_strictly_falling_scores(leg: list[str]) -> None:
    fused = reciprocal_rank_fusion([leg])
    assert [k for k, _ in fused] == list(dict.fromkeys(leg))
    assert all(a > b for (_, a), (_, b) in pairwise(fused))


@settings(max_examples=300, deadline=None)
@given(legs=_score_legs, data=st.data())
def test_weighted_properties(legs: list[list[tuple[str, float]]], data: st.DataObject) -> None:
    weights = data.draw(st.lists(_weight, min_size=len(legs), max_size=len(legs)))
    fused = weighted_fusion(legs, weights)
    keys = [key for key, _ in fused]
    assert len(keys) == len(set(keys)) and set(keys) == {key for leg in legs for key, _ in leg}
    _assert_ranked(fused, _first_seen([[key for key, _ in leg] for leg in legs]))
    for _, s in fused:
        assert -1e-12 <= s <= sum(weights) + 1e-12
    # each non-empty leg's best key gets that leg's full weight from it, its worst gets 0 when scores differ
    for leg, w in zip(legs, weights, strict=True):
        firsts = dict(reversed(leg))  # first occurrence wins
        if not firsts or w == 0:
            continue
        alone = dict(weighted_fusion([leg], [w]))
        hi, lo = max(firsts.values()), min(firsts.values())
        for key, s in firsts.items():
            assert alone[key] == (w if s == hi else 0.0 if s == lo else pytest.approx(w * (s - lo) / (hi - lo)))


@settings(max_examples=200, deadline=None)
@given(
    legs=_score_legs,
    scale=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    shift=st.integers(min_value=-100, max_value=100),
    data=st.data(),
)
def test_weighted_ignores_positive_affine_rescaling_of_a_leg(
    legs: list[list[tuple[str, float]]], scale: float, shift: int, data: st.DataObject
) -> None:
    """Min-max makes a leg's scale irrelevant: cosine in [-1, 1] and BM25 in [0, inf) combine alike."""
    weights = data.draw(st.lists(_weight, min_size=len(legs), max_size=len(legs)))
    rescaled = [[(k, s * scale + shift) for k, s in leg] for leg in legs]
    assert weighted_fusion(rescaled, weights) == weighted_fusion(legs, weights)
