"""Where a PgIndex lives in PostgreSQL: one table per index plus a shared catalogue of manifests.

Why one table per index: the HNSW index, the full-text GIN index and ``VACUUM`` then work per index, and
``DROP TABLE`` removes one at once. Names are checked against a strict pattern before they are quoted
into DDL (identifiers cannot be bound as parameters); every value is a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import InvalidInput
from ..metadata import split_path

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


def create_statements(name: str, dims: int, indexed: Sequence[str] = ()) -> list[str]:
    """DDL of one index: rows, the insertion-order sequence, HNSW (cosine), full-text GIN and order indexes,
    and for each ``indexed`` field the indexes its compiled filters can use (``field_indexes``).

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
        create_hnsw(name),
        f'CREATE INDEX "clinvec_{name}_terms" ON {t} USING gin (terms)',
        f'CREATE INDEX "clinvec_{name}_order" ON {t} (seq)',  # not UNIQUE: Citus allows unique only with the id
        *(sql for k, field in enumerate(indexed) for sql in field_indexes(name, k, field)),
    ]


def hnsw_index(name: str) -> str:
    """The quoted name of index ``name``'s HNSW index."""
    return f'"clinvec_{check_name(name)}_hnsw"'


def create_hnsw(name: str) -> str:
    """``CREATE INDEX`` of the HNSW graph (cosine) over index ``name``'s vectors."""
    return f"CREATE INDEX {hnsw_index(name)} ON {table(name)} USING hnsw (embedding vector_cosine_ops)"


def typed_value(value: str, kind: str) -> str:
    """A jsonb value as a SQL ``float8`` (``kind`` "number") or ``text COLLATE "C"`` ("string"), NULL when it is
    not one: the expression of an indexed field's range B-trees, and what ``sqlfilter`` compares on such a field
    (the same text, so the planner matches it to the index)."""
    if kind == "number":
        return f"(CASE WHEN jsonb_typeof({value}) = 'number' THEN ({value})::numeric::float8 END)"
    return f"""(CASE WHEN jsonb_typeof({value}) = 'string' THEN (({value}) #>> '{{}}') COLLATE "C" END)"""


def path_literal(segments: Sequence[str], placeholders: bool) -> str:
    """A metadata path as a SQL constant (``ARRAY['a','b']::text[]``), so that a filter on an indexed field
    is the same expression as the index's (a bound parameter would not match it). ``placeholders``: the SQL
    also carries ``%s`` parameters, so a ``%`` is doubled for psycopg."""
    quoted = ["'" + s.replace("'", "''") + "'" for s in segments]
    text = f"ARRAY[{','.join(quoted)}]::text[]"
    return text.replace("%", "%%") if placeholders else text


def field_indexes(name: str, k: int, field: str) -> list[str]:
    """The indexes of indexed field number ``k``, dropped with the table: a GIN index over its value
    (``$eq``/``$in`` of a scalar compile to ``@>``, true for the value itself or one element of a list,
    Mongo's rule), B-trees over its value as a number and as a string (ranges on a plain value), and a
    partial index of the rows where it is a list (a range on those is checked element by element; the
    index is empty while the field holds no lists)."""
    value = f"(metadata #> {path_literal(split_path(field), placeholders=False)})"
    t, prefix = table(name), f"clinvec_{check_name(name)}_f{k}"
    return [
        f'CREATE INDEX "{prefix}_eq" ON {t} USING gin ({value})',
        f'CREATE INDEX "{prefix}_num" ON {t} ({typed_value(value, "number")})',
        f'CREATE INDEX "{prefix}_str" ON {t} ({typed_value(value, "string")})',
        f"CREATE INDEX \"{prefix}_list\" ON {t} (seq) WHERE jsonb_typeof({value}) = 'array'",
    ]


def sequence(name: str) -> str:
    """The quoted sequence that numbers inserts (insertion order), as a regclass literal for ``nextval``."""
    return f"clinvec_{check_name(name)}_seq"
