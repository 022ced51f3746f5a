"""A PgIndex's two connections: the reader (autocommit, sees committed data only) and the writer.

Why two: writes run in explicit transactions (``transactions.py``), and a batch may stay open for a while;
reads on their own connection never see its uncommitted rows and never wait for it, as LocalIndex's reads
see committed state only. A connection the server closed (restart, terminated backend) is reopened on the
next call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .connect import connect, load_psycopg, storage_error

# Planner switches a query may turn off for itself (``search.HNSW_SETTINGS``), at their PostgreSQL defaults.
BASE_SETTINGS = {"enable_seqscan": "on"}


class Session:
    """The reader and (unless read-only) writer connections of one PgIndex, with the reader's settings."""

    def __init__(self, dsn: str, reader: Any, writer: Any) -> None:
        self.dsn = dsn
        self.reader = reader
        self.writer = writer
        self._read_lock = asyncio.Lock()
        self._settings: dict[str, str] = dict(BASE_SETTINGS)  # what the reader's session has (defaults first)

    @classmethod
    async def open(cls, dsn: str, read_only: bool) -> Session:
        reader = await connect(dsn)
        try:
            writer = None if read_only else await connect(dsn)
        except BaseException:
            await reader.close()
            raise
        return cls(dsn, reader, writer)

    async def writer_conn(self) -> Any:
        """The writer connection, reopened when it was lost (only between transactions: callers know)."""
        if self.writer.closed:
            self.writer = await connect(self.dsn)
        return self.writer

    async def read(self, sql: str, params: Sequence[Any] = (), settings: dict[str, str] | None = None) -> list[Any]:
        """Rows of one query on the reader connection. ``settings`` (such as ``hnsw.ef_search``) are set for
        the reader's session, only when they differ from what it has: one round trip for most queries.
        ``BASE_SETTINGS`` apply unless ``settings`` names them, so a planner switch one query turned off is on
        again for the next."""
        psycopg = load_psycopg()

        async with self._read_lock:
            if self.reader.closed:  # the server or a network cut closed it: the next read reconnects
                self.reader = await connect(self.dsn)
                self._settings = dict(BASE_SETTINGS)
            conn = self.reader
            try:
                wanted = BASE_SETTINGS if not settings else {**BASE_SETTINGS, **settings}
                changed = {k: v for k, v in wanted.items() if self._settings.get(k) != v}
                if changed:
                    calls = ", ".join("set_config(%s, %s, false)" for _ in changed)
                    await conn.execute(f"SELECT {calls}", [x for kv in changed.items() for x in kv])
                    self._settings.update(changed)
                cur = await conn.execute(sql, params)
                return await cur.fetchall()
            except psycopg.Error as exc:
                raise storage_error(exc) from None

    async def admin(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement on the (autocommit) reader connection, outside any transaction (VACUUM needs that)."""
        psycopg = load_psycopg()

        async with self._read_lock:
            try:
                await self.reader.execute(sql, params)
            except psycopg.Error as exc:
                raise storage_error(exc) from None

    async def close(self) -> None:
        for conn in (self.writer, self.reader):
            if conn is not None:
                await conn.close()  # closing rolls back an open transaction
