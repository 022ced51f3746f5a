"""The LocalIndex contract (``cases.py``, unchanged) on PgIndex against a real PostgreSQL with pgvector.

The cases call ``LocalIndex.create(location)`` and friends; here that name is bound, for the duration of a
case, to ``PgLocations``, which opens a ``PgIndex`` named after the location in the session's database
(``pg_dsn``: a private server, or ``CLINVEC_PG_DSN``). Cases that cannot hold for this engine by nature are
skipped with the reason below.
"""

from __future__ import annotations

import uuid
from typing import Any

import cases
import pytest
from test_contract_cpython import run_sync

from pyapp import PgIndex

CASES = cases.all_cases()
NOT_FOR_PG = {
    "failed_batch_commit_ends_the_update": "injects faults into a clinvec Store (FaultyStore); PgIndex has no "
    "Store: a failed COMMIT is PostgreSQL's, tested in tests/pg by killing the connection",
    "failed_compaction_keeps_the_acknowledged_write": "clinvec compaction of a Store; PostgreSQL's VACUUM "
    "is not clinvec's to fail",
    "failed_bulk_snapshot_leaves_the_index_empty": "a Store's bulk snapshot write; PgIndex writes rows in a "
    "transaction (all or nothing is tested in tests/pg)",
    "stats_never_builds_the_keyword_index": "LocalIndex builds BM25 lazily; PostgreSQL's full-text index is "
    "kept up to date by every write, so 'built' is always true",
}
# Cases whose observations hold no keyword scores (PostgreSQL's ts_rank is not BM25): PgIndex must observe
# exactly what LocalIndex observes, scores within cases.SCORE_TOL.
SAME_AS_LOCAL = [
    "create_open_exists_drop",
    "insert_get_uuid_normalises",
    "invalid_vectors_change_nothing",
    "duplicate_ids",
    "delete_variants",
    "filter_operators",
    "invalid_filters",
    "exact_top_k_and_ties",
    "filtered_query_returns_exactly_top_k",
    "batch_commit_rollback",
    "update_errors",
    "read_only_rejects_writes",
    "list_paging",
    "iter_items_and_distinct",
    "batch_belongs_to_its_task",
    "hostile_vectors_and_arguments",
]


class PgLocations:
    """``LocalIndex``'s static lifecycle calls, on PgIndex: a location is an index name in ``DSN``'s database."""

    DSN = ""

    @classmethod
    async def create(cls, location: str, **kwargs: Any) -> PgIndex:
        return await PgIndex.create(cls.DSN, location, **kwargs)

    @classmethod
    async def open(cls, location: str, **kwargs: Any) -> PgIndex:
        return await PgIndex.open(cls.DSN, location, **kwargs)

    @classmethod
    async def exists(cls, location: str) -> bool:
        return await PgIndex.exists(cls.DSN, location)

    @classmethod
    async def drop(cls, location: str) -> None:
        await PgIndex.drop(cls.DSN, location)


def new_name() -> str:
    return f"contract_{uuid.uuid4().hex[:16]}"


def run_on_pg(name: str) -> Any:
    if name in NOT_FOR_PG:
        pytest.skip(f"not for PgIndex: {NOT_FOR_PG[name]}")
    return run_sync(cases.run_case(name, new_name))


@pytest.mark.parametrize("name", CASES)
def test_contract_case_on_pg(name: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case holds on PgIndex; where its observation has no keyword scores, it equals LocalIndex's."""
    local = None
    if name in SAME_AS_LOCAL:
        local = run_sync(cases.run_case(name, lambda: f"memory://pgcmp-{uuid.uuid4().hex}"))
    monkeypatch.setattr(PgLocations, "DSN", pg_dsn)
    monkeypatch.setattr(cases, "LocalIndex", PgLocations)
    on_pg = run_on_pg(name)
    if local is not None:
        assert cases.difference(on_pg, local) is None


def test_skips_name_real_cases() -> None:
    assert set(NOT_FOR_PG) <= set(CASES) and set(SAME_AS_LOCAL) <= set(CASES)
