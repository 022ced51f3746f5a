"""PgIndex maintenance: statistics, VACUUM, and the HNSW index dropped before and rebuilt after a bulk load.

Why a module: these run outside any transaction on the autocommit reader connection (``VACUUM`` and a
parallel ``CREATE INDEX`` cannot run inside one) and never touch rows.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from . import schema
from .session import Session


class Admin:
    """Maintenance of index ``name``'s table."""

    def __init__(self, session: Session, name: str) -> None:
        self._session = session
        self._name = name
        self._table = schema.table(name)

    async def facts(self) -> dict[str, Any]:
        """Counts and PostgreSQL facts: items, texts, bytes on disk, server and pgvector versions."""
        got = await self._session.read(
            f"SELECT count(*), count(text), pg_total_relation_size(%s::regclass), current_setting('server_version'),"
            f" (SELECT extversion FROM pg_extension WHERE extname = 'vector') FROM {self._table}",
            [self._table],
        )
        items, texts, size, server, pgvector = got[0]
        return {"items": int(items), "texts": int(texts), "bytes": int(size), "server": server, "pgvector": pgvector}

    async def vacuum(self) -> None:
        await self._session.admin(f"VACUUM (ANALYZE) {self._table}")

    async def drop_vector_index(self) -> None:
        await self._session.admin(f"DROP INDEX IF EXISTS {schema.hnsw_index(self._name)}")

    async def build_vector_index(self, maintenance_work_mem: str, workers: int) -> None:
        """(Re)build the HNSW index with ``workers`` parallel maintenance workers (0: the leader alone)."""
        if not isinstance(workers, int) or isinstance(workers, bool) or not 0 <= workers <= 64:
            raise InvalidInput(f"workers must be an integer in 0..64, got {workers!r}")
        admin = self._session.admin
        await admin("SELECT set_config('maintenance_work_mem', %s, false)", [str(maintenance_work_mem)])
        await admin("SELECT set_config('max_parallel_maintenance_workers', %s, false)", [str(workers)])
        await admin(f"DROP INDEX IF EXISTS {schema.hnsw_index(self._name)}")
        await admin(schema.create_hnsw(self._name))
