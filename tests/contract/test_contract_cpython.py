"""The LocalIndex contract (``cases.py``) on CPython: file store, memory store and ``RemoteIndex`` against a real
``serve-api`` server, same observations."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import cases
import pytest
import remote_cases

CASES = cases.all_cases()
T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop in a thread of its own: when browser tests ran earlier in the session,
    Playwright's sync API keeps a loop running in this thread and ``asyncio.run`` here would refuse."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run_case(name: str, store: str, folder: Path) -> Any:
    if store == "memory":
        return run_sync(cases.run_case(name, lambda: f"memory://contract-{uuid.uuid4().hex}"))
    return run_sync(cases.run_case(name, lambda: str(folder / uuid.uuid4().hex)))


@pytest.mark.parametrize("store", ["file", "memory"])
@pytest.mark.parametrize("name", CASES)
def test_contract_case(name: str, store: str, tmp_path: Path) -> None:
    run_case(name, store, tmp_path)


@pytest.mark.parametrize("name", CASES)
def test_file_and_memory_stores_observe_the_same(name: str, tmp_path: Path) -> None:
    on_file = run_case(name, "file", tmp_path)
    in_memory = run_case(name, "memory", tmp_path)
    assert cases.difference(on_file, in_memory) is None


def test_every_case_is_collected_and_cleans_up(tmp_path: Path) -> None:
    """The suite covers what the contract promises, and ``run_case`` drops every index a case made.

    The named cases include those that replaced ``tests/test_index.py``'s copies: removing one here loses
    that coverage in every build."""
    assert {
        "create_open_exists_drop",
        "insert_get_uuid_normalises",
        "invalid_vectors_change_nothing",
        "duplicate_ids",
        "metadata_and_argument_validation",
        "upsert_keeps_order_and_update_metadata",
        "delete_variants",
        "filter_operators",
        "invalid_filters",
        "exact_top_k_and_ties",
        "filtered_query_returns_exactly_top_k",
        "min_score_and_query_errors",
        "keyword_queries",
        "hybrid_queries",
        "batch_commit_rollback",
        "update_errors",
        "reopen_sees_everything",
        "compaction_then_reopen",
        "stats_never_builds_the_keyword_index",
        "read_only_rejects_writes",
        "list_paging",
        "iter_items_and_distinct",
        "fingerprint_workload",
        "export_import",
        "failed_bulk_snapshot_leaves_the_index_empty",
        "failed_bulk_load_in_memory_writes_nothing",
    } <= set(CASES)
    made: list[str] = []

    def new_location() -> str:
        made.append(str(tmp_path / f"idx{len(made)}"))
        return made[-1]

    run_sync(cases.run_case("reopen_sees_everything", new_location))
    assert made and not any(Path(p).exists() for p in made)


def test_a_failing_case_still_closes_and_drops(tmp_path: Path) -> None:
    """A case that fails half-way must not leave an index open (a held writer lock would block the next)."""
    location = str(tmp_path / "held")

    async def failing(scope: cases.Scope) -> None:
        idx = await scope.create(scope())
        await idx.insert(cases.vec(1), id="a")
        raise AssertionError("boom")

    cases.case_failing_for_test = failing  # type: ignore[attr-defined]
    try:
        with pytest.raises(AssertionError, match="boom"):
            run_sync(cases.run_case("failing_for_test", lambda: location))
    finally:
        del cases.case_failing_for_test  # type: ignore[attr-defined]
    assert not Path(location).exists()


def test_difference_spots_what_matters() -> None:
    assert cases.difference([["a", 0.5]], [["a", 0.500001]]) is None
    assert cases.difference([["a", 0.5]], [["a", 0.51]]) is not None
    assert cases.difference({"x": True}, {"x": 1}) is not None
    assert cases.difference(["a", "b"], ["b", "a"]) is not None
    assert cases.difference({"x": None}, {"x": 0}) is not None


# --------------------------------------------------------------------------- RemoteIndex (issue 11)


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from api_server import api_server

    with api_server(tmp_path_factory.mktemp("api-root")) as url:
        yield url


@pytest.mark.parametrize("name", CASES)
def test_contract_case_on_remote_index(name: str, api_url: str, tmp_path: Path) -> None:
    """Each case unchanged against ``RemoteIndex`` (a real uvicorn server over its file store), observing what
    the memory store does (file and memory are held equal above; memory is the cheaper reference)."""
    reason = remote_cases.REMOTE_SKIPS.get(name)
    if reason:
        pytest.skip(reason)
    remote = run_sync(remote_cases.run_case(name, api_url))
    assert cases.difference(remote, run_case(name, "memory", tmp_path)) is None
