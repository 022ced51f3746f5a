"""PostgreSQL + pgvector engine (server only): ``PgIndex``, LocalIndex's API executed by PostgreSQL.

psycopg is imported only when an index is opened, so ``import pyapp`` needs neither it nor a server.
"""

from __future__ import annotations

from .index import PgIndex

__all__ = ["PgIndex"]
