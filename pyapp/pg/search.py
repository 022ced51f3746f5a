"""PgIndex's query path: the vector leg (exact scan or HNSW), the keyword leg (full text), hybrid fusion.

Why these rules: below ``exact_below`` rows (or with ``exact=True``) an ordered scan is as fast as HNSW and
exact; above it HNSW answers with ``hnsw.ef_search`` = max(``ef_search``, k) and strict-order iterative
scans, so a filtered query still fills ``top_k``. A filter matching fewer than ``exact_matches_below`` rows
(counted up to that bound first) is answered by scoring those rows exactly, since the graph walk would pass
over every row the filter drops; when the walk still cannot fill ``top_k``, the exact scan answers. Ties break
by insertion order (``seq``) in every leg, as in LocalIndex. ``keyword_score`` is PostgreSQL's ``ts_rank``
(term frequency, no length normalisation), not BM25: rankings are alike, scores are not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ..fusion import reciprocal_rank_fusion, weighted_fusion
from ..planner import HYBRID_DEPTH, QueryPlan
from ..types import Item, Result
from . import rows
from .connect import Vec
from .session import Session
from .values import tsquery

SIZE_TTL = 2.0  # seconds a table-size estimate is reused (it only decides exact scan vs HNSW)
# The HNSW query's planner settings. Strict-order iterative scans: a filtered query still fills top_k. No
# sequential scan and no sort: vectors of more than ~500 dims live in TOAST, so the planner costs reading the
# rows and sorting them by distance as cheaper than the graph walk. Without a sequential scan it did that at low
# ef_search (seen at 20k x 768, ef_search 40: a 300-1,000 ms exact scan instead of a 2 ms walk); without a sort it
# still did it through an indexed field's index (200k x 768, a 10 % filter: 20,000 rows read and sorted, 242 ms).
# The exact path below is the place for exact answers, and a filter matching few rows goes there first.
HNSW_SETTINGS = {"hnsw.iterative_scan": "strict_order", "enable_seqscan": "off", "enable_sort": "off"}
Where = Callable[[Any], tuple[str, list[Any]]]


def cut(results: list[Result], min_score: float | None) -> list[Result]:
    return results if min_score is None else [r for r in results if r.score >= min_score]


class Search:
    """Queries over one index's table; ``where`` turns a filter into SQL (``PgIndex._where``)."""

    def __init__(self, session: Session, table: str, where: Where) -> None:
        self._session = session
        self._table = table
        self._where = where
        self._was_small, self._size_checked, self._size_for = True, -math.inf, -1  # see small()

    async def run(
        self, p: QueryPlan, q: Vec | None, exact_below: int, ef_search: int, exact_matches_below: int = 0
    ) -> list[Result]:
        """Answer a checked plan (``q``: the prepared query vector of a vector or hybrid query)."""
        read, columns = self._session.read, rows.COLUMNS
        exact = True if p.exact else None
        bounds = (exact_below, ef_search, exact_matches_below)
        if p.mode == "vector":
            assert q is not None
            hits = await self.vector_leg(q, p, p.top_k, exact, *bounds, full=True)
            return cut([Result(rows.item(r[3:]), r[2], vector_score=r[2]) for r in hits], p.min_score)
        if p.mode == "keyword":
            found = await self.keyword_leg(p, p.top_k)
            items = await self.items([h[0] for h in found])  # a row deleted meanwhile is left out
            return cut([Result(items[i], s, keyword_score=s) for i, _, s in found if i in items], p.min_score)
        assert q is not None
        depth = max(p.top_k, HYBRID_DEPTH)
        vector_leg = await self.vector_leg(q, p, depth, exact, *bounds)
        keyword_leg = await self.keyword_leg(p, depth)
        seqs = {i: s for i, s, _ in vector_leg} | {i: s for i, s, _ in keyword_leg}
        if p.fusion == "rrf":
            ranked = [[i for i, _, _ in vector_leg], [i for i, _, _ in keyword_leg]]
            fused = reciprocal_rank_fusion(ranked, k=p.rrf_k, weights=list(p.weights))
        else:
            fused = weighted_fusion([[(i, s) for i, _, s in leg] for leg in (vector_leg, keyword_leg)], list(p.weights))
        fused.sort(key=lambda h: (-h[1], seqs[h[0]]))
        fused = fused[: p.top_k]
        keyword_scores = {i: s for i, _, s in keyword_leg}
        ids = [i for i, _ in fused]
        got = await read(
            f"SELECT {columns}, 1 - (embedding <=> %b) FROM {self._table} WHERE id = ANY(%s::text[])", [q, ids]
        )
        found_rows = {r[0]: (rows.item(r), float(r[4])) for r in got}
        results = [
            Result(found_rows[i][0], s, vector_score=found_rows[i][1], keyword_score=keyword_scores.get(i))
            for i, s in fused
            if i in found_rows
        ]
        return cut(results, p.min_score)

    async def items(self, ids: list[str]) -> dict[str, Item]:
        if not ids:
            return {}
        got = await self._session.read(f"SELECT {rows.COLUMNS} FROM {self._table} WHERE id = ANY(%s::text[])", [ids])
        return {r[0]: rows.item(r) for r in got}

    async def small(self, exact_below: int) -> bool:
        """Whether the table is small enough to scan exactly: the planner's row estimate (a bounded count
        before the first ANALYZE), looked up at most every ``SIZE_TTL`` seconds."""
        now = time.monotonic()
        if now < self._size_checked + SIZE_TTL and self._size_for == exact_below:
            return self._was_small
        read = self._session.read
        got = await read("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [self._table])
        estimate = got[0][0] if got else -1
        if estimate is None or estimate < 0:
            estimate = await self._count_up_to(exact_below)
        self._was_small, self._size_checked, self._size_for = estimate < exact_below, now, exact_below
        return self._was_small

    async def _count_up_to(self, bound: int, where: str = "TRUE", params: list[Any] | None = None) -> int:
        """How many rows match ``where``, counting no further than ``bound`` (reads at most that many)."""
        got = await self._session.read(
            f"SELECT count(*) FROM (SELECT 1 FROM {self._table} WHERE {where} LIMIT %s) AS s", [*(params or ()), bound]
        )
        return int(got[0][0])

    async def vector_leg(
        self,
        q: Vec,
        p: QueryPlan,
        k: int,
        exact: bool | None,
        exact_below: int,
        ef_search: int,
        exact_matches_below: int = 0,
        full: bool = False,
    ) -> list[tuple[Any, ...]]:
        """``(id, seq, cosine)`` best first, ties by insertion order; with ``full`` also the item's
        ``(id, embedding, metadata_json, text)``, so a vector query is one round trip. ``exact`` None:
        exact below ``exact_below`` rows, or when the filter matches fewer than ``exact_matches_below``."""
        where, params = self._where(p.filter)
        columns = f"id, seq, 1 - (embedding <=> %b){', ' + rows.COLUMNS if full else ''}"
        read = self._session.read
        if exact is None:
            exact = await self.small(exact_below)
            if not exact and p.filter is not None and exact_matches_below > 0:
                exact = await self._count_up_to(exact_matches_below, where, params) < exact_matches_below
        if not exact:
            ef = str(min(max(ef_search, k), 1000))
            got = await read(
                f"SELECT {columns} FROM {self._table} WHERE {where} ORDER BY embedding <=> %b LIMIT %s",
                [q, *params, q, k],
                {"hnsw.ef_search": ef, **HNSW_SETTINGS},
            )
            if len(got) == k or p.filter is None:
                hits = [(r[0], r[1], float(r[2]), *r[3:]) for r in got]
                hits.sort(key=lambda h: (-h[2], h[1]))
                return hits
        # exact: "+ 0" keeps the planner off the HNSW index, so every matching row is scored
        got = await read(
            f"SELECT {columns} FROM {self._table} WHERE {where} ORDER BY (embedding <=> %b) + 0, seq LIMIT %s",
            [q, *params, q, k],
        )
        return [(r[0], r[1], float(r[2]), *r[3:]) for r in got]

    async def keyword_leg(self, p: QueryPlan, k: int) -> list[tuple[str, int, float]]:
        """``(id, seq, ts_rank)`` for rows holding any query word, best first, ties by insertion order."""
        query = tsquery(p.keyword_text or p.text or "")
        if query is None:
            return []
        where, params = self._where(p.filter)
        got = await self._session.read(
            f"SELECT id, seq, ts_rank(terms, %s::tsquery) AS rank FROM {self._table} "
            f"WHERE terms @@ %s::tsquery AND {where} ORDER BY rank DESC, seq LIMIT %s",
            [query, query, *params, k],
        )
        return [(r[0], r[1], float(r[2])) for r in got]
