"""Connections to PostgreSQL: psycopg 3 imported lazily, pgvector's ``vector`` type adapted, errors mapped.

Why lazy: ``import pyapp`` must work without the ``pg`` extra (and in Pyodide); only opening a ``PgIndex``
needs psycopg. Vectors travel in pgvector's binary format (a 4-byte header and big-endian float32s), so a
float32 vector reaches the server bit-exact and no decimal formatting of hundreds of floats per row is paid;
they come back as text (``[0.1,...]``, shortest float32 decimals) and are parsed into float32 bytes, exact too.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import Any

from ..errors import ClinvecError, DuplicateId, InvalidInput, StorageError, StorageFull

MISSING_EXTRA = "PgIndex needs the pg extra: pip install 'clinvec[pg]' (psycopg 3)"


class Vec:
    """A prepared float32 vector (little-endian bytes, as the kernels make them) bound for a vector column."""

    __slots__ = ("payload",)

    def __init__(self, raw: bytes | memoryview, dims: int) -> None:
        values = array("f")
        values.frombytes(bytes(raw))
        if sys.byteorder == "little":
            values.byteswap()
        self.payload = struct.pack(">HH", dims, 0) + values.tobytes()


def parse_vector(text: str | bytes | memoryview) -> bytes:
    """pgvector's text output ``[a,b,...]`` as little-endian float32 bytes (exact: shortest float32 decimals)."""
    if not isinstance(text, str):
        text = bytes(text).decode("ascii")
    values = array("f", map(float, text[1:-1].split(",")))
    if sys.byteorder != "little":
        values.byteswap()
    return values.tobytes()


def load_psycopg() -> Any:
    """psycopg, or ``InvalidInput`` naming the extra to install."""
    try:
        import psycopg
    except ImportError:
        raise InvalidInput(MISSING_EXTRA) from None
    return psycopg


async def connect(dsn: str) -> Any:
    """An autocommit ``AsyncConnection`` with the ``vector`` type adapted (``StorageError`` when it fails).

    Autocommit: PgIndex issues ``BEGIN``/``COMMIT`` itself, so a batch is exactly one transaction."""
    psycopg = load_psycopg()
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    if not isinstance(dsn, str) or not dsn:
        raise InvalidInput("a PostgreSQL connection string (DSN) is needed, e.g. postgresql://user@host/db")
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        info = await TypeInfo.fetch(conn, "vector")
        if info is None:
            raise StorageError(
                "the pgvector extension is not installed in this database: run CREATE EXTENSION vector "
                "(as a role allowed to) and try again"
            )

        class VecDumper(Dumper):
            format = Format.BINARY
            oid = info.oid

            def dump(self, obj: Vec) -> bytes:
                return obj.payload

        class VecLoader(Loader):
            def load(self, data: Any) -> bytes:
                return parse_vector(data)

        conn.adapters.register_dumper(Vec, VecDumper)
        conn.adapters.register_loader(info.oid, VecLoader)
    except BaseException:
        await conn.close()
        raise
    return conn


def storage_error(exc: BaseException) -> ClinvecError:
    """The ClinvecError for a psycopg error (unique violation: ``DuplicateId``; disk full: ``StorageFull``)."""
    from psycopg import errors

    if isinstance(exc, errors.UniqueViolation):
        detail = exc.diag.message_detail or ""
        return DuplicateId(f"an id already exists; use upsert to replace it ({detail})")
    if isinstance(exc, (errors.DiskFull, errors.OutOfMemory)):
        return StorageFull(f"PostgreSQL: {exc}")
    return StorageError(f"PostgreSQL: {type(exc).__name__}: {exc}")
