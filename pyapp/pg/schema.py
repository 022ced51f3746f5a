"""Where a PgIndex lives in PostgreSQL: one table per index plus a shared catalogue of manifests.

Why one table per index: the HNSW index, the full-text GIN index and ``VACUUM`` then work per index, and
``DROP TABLE`` removes one at once. Names are checked against a strict pattern before they are quoted
into DDL (identifiers cannot be bound as parameters); every value is a parameter.
"""

from __future__ import annotations

import re

from ..errors import InvalidInput

CATALOGUE = "clinvec_indexes"
MAX_HNSW_DIMS = 2000  # pgvector's HNSW limit for the float32 ``vector`` type
_NAME = re.compile(r"[a-z0-9_]{1,48}\Z")


def check_name(name: object) -> str:
    """``InvalidInput`` unless ``name`` is 1-48 of ``a-z 0-9 _`` (it becomes part of table names)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"an index name is 1-48 characters of a-z, 0-9 and _, got {name!r}")
    return name


def table(name: str) -> str:
    """The quoted table of index ``name`` (checked)."""
    return f'"clinvec_{check_name(name)}"'


CREATE_CATALOGUE = f"""
CREATE TABLE IF NOT EXISTS {CATALOGUE} (
    name text PRIMARY KEY,
    manifest jsonb NOT NULL
)"""


def create_statements(name: str, dims: int) -> list[str]:
    """DDL of one index: rows, the insertion-order sequence, HNSW (cosine), full-text GIN and order indexes.

    ``metadata_json`` keeps the metadata's exact JSON text (what ``get`` returns: jsonb would turn -0.0 into
    0 and reorder keys); ``metadata`` is the jsonb the filters run on. ``terms`` is the text as
    ``pyapp.keyword.tokenize`` splits it, so keyword search sees the same words as LocalIndex's BM25."""
    t = table(name)
    seq = f'"clinvec_{name}_seq"'
    return [
        f"CREATE SEQUENCE {seq}",
        f"""CREATE TABLE {t} (
            id text COLLATE "C" PRIMARY KEY,
            seq bigint NOT NULL,
            embedding vector({int(dims)}) NOT NULL,
            metadata jsonb NOT NULL,
            metadata_json text NOT NULL,
            text text,
            terms tsvector
        )""",
        f"ALTER SEQUENCE {seq} OWNED BY {t}.seq",
        f'CREATE INDEX "clinvec_{name}_hnsw" ON {t} USING hnsw (embedding vector_cosine_ops)',
        f'CREATE INDEX "clinvec_{name}_terms" ON {t} USING gin (terms)',
        f'CREATE INDEX "clinvec_{name}_order" ON {t} (seq)',  # not UNIQUE: Citus allows unique only with the id
    ]


def sequence(name: str) -> str:
    """The quoted sequence that numbers inserts (insertion order), as a regclass literal for ``nextval``."""
    return f"clinvec_{check_name(name)}_seq"
