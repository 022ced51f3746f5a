"""The catalogue of PgIndex manifests (``clinvec_indexes``): create, look up and drop whole indexes.

Why a module: these are the only operations that change which indexes exist; each is one transaction on a
connection of its own, and creation holds an advisory lock so two processes creating the same name at once
get one index and one ``IndexExists``.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import IndexExists
from . import schema
from .connect import connect, load_psycopg, storage_error


async def create(dsn: str, name: str, manifest: dict[str, Any]) -> None:
    """Create index ``name``'s table, sequence and indexes and record its manifest (``IndexExists``)."""
    psycopg = load_psycopg()

    conn = await connect(dsn)
    try:
        await conn.execute("BEGIN")
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('clinvec_catalogue'))")
        await conn.execute(schema.CREATE_CATALOGUE)
        cur = await conn.execute(f"SELECT 1 FROM {schema.CATALOGUE} WHERE name = %s", [name])
        if await cur.fetchone() is not None:
            raise IndexExists(f"an index named {name!r} already exists in this database")
        for statement in schema.create_statements(name, manifest["dims"], manifest["indexed"]):
            await conn.execute(statement)
        await conn.execute(
            f"INSERT INTO {schema.CATALOGUE} (name, manifest) VALUES (%s, %s::jsonb)", [name, json.dumps(manifest)]
        )
        await conn.execute("COMMIT")
    except BaseException as exc:
        await conn.execute("ROLLBACK")
        if isinstance(exc, psycopg.Error):
            raise storage_error(exc) from None
        raise
    finally:
        await conn.close()


async def manifest_of(dsn: str, name: str) -> dict[str, Any] | None:
    """Index ``name``'s manifest, or None when there is no such index."""
    psycopg = load_psycopg()

    conn = await connect(dsn)
    try:
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [schema.CATALOGUE])
        row = await cur.fetchone()
        if not row[0]:
            return None
        cur = await conn.execute(f"SELECT manifest FROM {schema.CATALOGUE} WHERE name = %s", [name])
        row = await cur.fetchone()
        return None if row is None else row[0]
    except psycopg.Error as exc:
        raise storage_error(exc) from None
    finally:
        await conn.close()


async def drop(dsn: str, name: str) -> None:
    """Delete index ``name``: its manifest, and its table with every index on it (no error when absent)."""
    psycopg = load_psycopg()

    conn = await connect(dsn)
    try:
        await conn.execute("BEGIN")
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [schema.CATALOGUE])
        if (await cur.fetchone())[0]:
            await conn.execute(f"DELETE FROM {schema.CATALOGUE} WHERE name = %s", [name])
        await conn.execute(f"DROP TABLE IF EXISTS {schema.table(name)}")
        await conn.execute("COMMIT")
    except psycopg.Error as exc:
        await conn.execute("ROLLBACK")
        raise storage_error(exc) from None
    finally:
        await conn.close()
