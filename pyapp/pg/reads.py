"""PgIndex's plain reads (no ranking): one item, counts, pages and batches in insertion order, distinct values.

All on the reader connection, so they see committed data only, as LocalIndex's reads do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ..filters import compile_filter, scalar_key
from ..types import Item
from . import rows
from .search import Where
from .session import Session
from .sqlfilter import to_sql


class Reads:
    """Reads of one index's table; ``where`` turns a filter into SQL (``PgIndex._where``)."""

    def __init__(self, session: Session, table: str, where: Where) -> None:
        self._session = session
        self._table = table
        self._where = where

    async def get(self, id: str) -> Item | None:
        got = await self._session.read(f"SELECT {rows.COLUMNS} FROM {self._table} WHERE id = %s", [id])
        return rows.item(got[0]) if got else None

    async def count(self, filter: Any) -> int:
        where, params = self._where(filter)
        got = await self._session.read(f"SELECT count(*) FROM {self._table} WHERE {where}", params)
        return int(got[0][0])

    async def page(self, filter: Any, limit: int | None, offset: int) -> list[Item]:
        where, params = self._where(filter)
        got = await self._session.read(
            f"SELECT {rows.COLUMNS} FROM {self._table} WHERE {where} ORDER BY seq LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [rows.item(r) for r in got]

    async def ids(self) -> list[str]:
        return [r[0] for r in await self._session.read(f"SELECT id FROM {self._table} ORDER BY seq")]

    async def batches(self, batch_size: int, filter: Any) -> AsyncIterator[list[Item]]:
        """Pages by insertion order, so items committed meanwhile after the current page are included."""
        where, params = self._where(filter)
        last = -1
        while True:
            got = await self._session.read(
                f"SELECT {rows.COLUMNS}, seq FROM {self._table} WHERE seq > %s AND {where} ORDER BY seq LIMIT %s",
                [last, *params, batch_size],
            )
            if not got:
                return
            last = got[-1][4]
            yield [rows.item(r) for r in got]
            if len(got) < batch_size:
                return

    async def distinct(self, segments: tuple[str, ...], field: str) -> list[Any]:
        """The distinct scalar values at a path, sorted as LocalIndex sorts them."""
        where, params = to_sql(compile_filter({field: {"$exists": True}}))
        value = "metadata #> %s::text[]"
        got = await self._session.read(
            f"SELECT DISTINCT ({value})::text FROM {self._table} WHERE {where} "
            f"AND jsonb_typeof({value}) NOT IN ('array', 'object')",
            [list(segments), *params, list(segments)],
        )
        seen: dict[Any, Any] = {}
        for (text,) in got:
            v = json.loads(text)
            seen.setdefault(scalar_key(v), v)
        return sorted(seen.values(), key=lambda v: (type(v).__name__, v))
