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
        *(FIELD_FUNCTIONS if indexed else []),
        *(sql for k, field in enumerate(indexed) for sql in field_indexes(name, k, field)),
    ]


def hnsw_index(name: str) -> str:
    """The quoted name of index ``name``'s HNSW index."""
    return f'"clinvec_{check_name(name)}_hnsw"'


def create_hnsw(name: str) -> str:
    """``CREATE INDEX`` of the HNSW graph (cosine) over index ``name``'s vectors."""
    return f"CREATE INDEX {hnsw_index(name)} ON {table(name)} USING hnsw (embedding vector_cosine_ops)"


# The largest and smallest number at a jsonb value: the value itself, or over a list's number elements (NULL when
# there is none). A range condition on a field holds for some element exactly when it holds for one of these two
# ($gt/$gte: the largest, $lt/$lte: the smallest), so ``sqlfilter`` compiles a range on an indexed field to a
# comparison of one of them, which a B-tree over the same expression answers. IMMUTABLE: index expressions need it;
# never inlined (a sub-select), so the planner matches the call as written. Shared by all indexes, kept on drop.
FIELD_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION clinvec_num_{fn}(v jsonb) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE jsonb_typeof(v) WHEN 'number' THEN v::numeric::float8
    WHEN 'array' THEN (SELECT {fn}(e.x::numeric::float8) FROM jsonb_array_elements(v) AS e(x)
    WHERE jsonb_typeof(e.x) = 'number') END $$"""
    for fn in ("max", "min")
]


def path_literal(segments: Sequence[str], placeholders: bool) -> str:
    """A metadata path as a SQL constant (``ARRAY['a','b']::text[]``), so that a filter on an indexed field
    is the same expression as the index's (a bound parameter would not match it). ``placeholders``: the SQL
    also carries ``%s`` parameters, so a ``%`` is doubled for psycopg."""
    quoted = ["'" + s.replace("'", "''") + "'" for s in segments]
    text = f"ARRAY[{','.join(quoted)}]::text[]"
    return text.replace("%", "%%") if placeholders else text


def field_indexes(name: str, k: int, field: str) -> list[str]:
    """The indexes of indexed field number ``k``: a GIN index over its value (``$eq``/``$in`` on scalars
    compile to ``@>``, which is true for the value itself or one element of a list, Mongo's rule) and B-trees
    over its largest and smallest number (ranges). Dropped with the table."""
    value = f"(metadata #> {path_literal(split_path(field), placeholders=False)})"
    t, prefix = table(name), f"clinvec_{check_name(name)}_f{k}"
    return [
        f'CREATE INDEX "{prefix}_eq" ON {t} USING gin ({value})',
        f'CREATE INDEX "{prefix}_hi" ON {t} (clinvec_num_max{value})',
        f'CREATE INDEX "{prefix}_lo" ON {t} (clinvec_num_min{value})',
    ]


def sequence(name: str) -> str:
    """The quoted sequence that numbers inserts (insertion order), as a regclass literal for ``nextval``."""
    return f"clinvec_{check_name(name)}_seq"
