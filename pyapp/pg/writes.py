"""The SQL of PgIndex's writes: insert/upsert of prepared rows, metadata updates and deletes.

Each call is one ``Transactions.write`` (a transaction, or a savepoint of the caller's batch); rows arrive
already checked (``rows.prepare``), so only PostgreSQL's own refusals (a taken id) can fail here.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .rows import Row
from .transactions import Transactions


class Writes:
    """Writes into one index's table (``table``, numbered by the sequence ``seq``)."""

    def __init__(self, tx: Transactions, table: str, seq: str) -> None:
        self._tx = tx
        self._table = table
        self._seq = seq

    async def put(self, rows: list[Row], replace: bool) -> list[str]:
        """Insert (``replace``: or overwrite, keeping the insertion order) every row in one transaction."""
        if not rows:
            return []
        sql = (
            f"INSERT INTO {self._table} (id, seq, embedding, metadata, metadata_json, text, terms) "
            f"VALUES (%s, nextval(%s::regclass), %b, %s::jsonb, %s, %s, %s::tsvector)"
        )
        if replace:
            sql += (
                " ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata,"
                " metadata_json = EXCLUDED.metadata_json, text = EXCLUDED.text, terms = EXCLUDED.terms"
            )
        params = [(i, self._seq, vec, meta, meta, text, terms) for i, vec, meta, text, terms in rows]

        async def work(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(sql, params)

        await self._tx.write(work)
        return [row[0] for row in rows]

    async def update_metadata(self, id: str, metadata_json: str) -> None:
        """Replace one item's metadata (``InvalidInput`` when the id is unknown)."""

        async def work(conn: Any) -> None:
            cur = await conn.execute(
                f"UPDATE {self._table} SET metadata = %s::jsonb, metadata_json = %s WHERE id = %s",
                [metadata_json, metadata_json, id],
            )
            if cur.rowcount == 0:
                raise InvalidInput(f"no item with id {id!r}")

        await self._tx.write(work)

    async def delete_ids(self, ids: list[str]) -> int:
        """Delete these ids; how many existed."""

        async def work(conn: Any) -> int:
            cur = await conn.execute(f"DELETE FROM {self._table} WHERE id = ANY(%s::text[])", [ids])
            return int(cur.rowcount)

        return await self._tx.write(work)

    async def delete_where(self, where: str, params: list[Any]) -> int:
        """Delete the rows a compiled filter selects; how many."""

        async def work(conn: Any) -> int:
            cur = await conn.execute(f"DELETE FROM {self._table} WHERE {where}", params)
            return int(cur.rowcount)

        return await self._tx.write(work)
