"""The LocalIndex contract (``cases.py``, unchanged) on PgIndex against a real PostgreSQL with pgvector.

The cases look ``LocalIndex`` up as a module global when they run; a second copy of ``cases.py`` binds that name
to ``PgLocations``, which opens a ``PgIndex`` named after the location in the session's database (``pg_dsn``: a
private server, or ``CLINVEC_PG_DSN``), so the LocalIndex runs in the same process are untouched (the same way
RemoteIndex's backend does it). Cases that cannot hold for this engine by nature are skipped with the reason below.
"""

from __future__ import annotations

import types
import uuid
from pathlib import Path
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
    "failed_bulk_load_in_memory_writes_nothing": "a Store's snapshot written while the rows load into memory; "
    "PgIndex keeps no rows in memory",
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
    """``LocalIndex``'s static lifecycle calls, on PgIndex: a location is an index name in ``dsn``'s database."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def create(self, location: str, **kwargs: Any) -> PgIndex:
        return await PgIndex.create(self.dsn, location, **kwargs)

    async def open(self, location: str, **kwargs: Any) -> PgIndex:
        return await PgIndex.open(self.dsn, location, **kwargs)

    async def exists(self, location: str) -> bool:
        return await PgIndex.exists(self.dsn, location)

    async def drop(self, location: str) -> None:
        await PgIndex.drop(self.dsn, location)


def pg_cases(dsn: str) -> types.ModuleType:
    """A copy of ``cases.py`` whose ``LocalIndex`` is ``PgLocations(dsn)``."""
    module = types.ModuleType("clinvec_pg_cases")
    exec(compile(Path(cases.__file__).read_text(), cases.__file__, "exec"), module.__dict__)  # noqa: S102
    module.LocalIndex = PgLocations(dsn)  # type: ignore[attr-defined]
    return module


def new_name() -> str:
    return f"contract_{uuid.uuid4().hex[:16]}"


def run_on_pg(name: str, dsn: str) -> Any:
    if name in NOT_FOR_PG:
        pytest.skip(f"not for PgIndex: {NOT_FOR_PG[name]}")
    return run_sync(pg_cases(dsn).run_case(name, new_name))


@pytest.mark.parametrize("name", CASES)
def test_contract_case_on_pg(name: str, pg_dsn: str) -> None:
    """Every case holds on PgIndex; where its observation has no keyword scores, it equals LocalIndex's."""
    on_pg = run_on_pg(name, pg_dsn)
    if name in SAME_AS_LOCAL:
        local = run_sync(cases.run_case(name, lambda: f"memory://pgcmp-{uuid.uuid4().hex}"))
        assert cases.difference(on_pg, local) is None


def test_skips_name_real_cases() -> None:
    assert set(NOT_FOR_PG) <= set(CASES) and set(SAME_AS_LOCAL) <= set(CASES)
