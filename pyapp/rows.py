"""The aligned in-memory state of one index: rows, vectors, metadata columns and BM25 kept in step.

Row ``r`` is ``rows[r]`` (id, metadata, text, seq), vector ``r`` of the kernel and row ``r`` of the metadata
table. Only durable ops reach ``apply``; the state never holds anything the store does not. Deletes move the
last row into the hole (O(dims)), so row numbers are not insertion order: ``seq`` is, and every tie between
equal scores is broken by it, in every leg (vector, keyword, fused), live or reloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from ._gc import paused_gc
from .kernels import VectorKernel
from .kernels.ivf import DEFAULT_THRESHOLD, IvfMath, Partitions, default_math, nlist_for
from .keyword import KeywordIndex
from .metadata import copy_stored
from .metadata_table import MetadataTable
from .stores import Op, Put, Row
from .types import Item

ROW_ID, ROW_METADATA, ROW_TEXT, ROW_SEQ = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)
ROW_COMMIT = itemgetter(4)

Tombstones = dict[str, tuple[int, int]]  # id -> (commit, time) of the delete that removed it (pyapp.sync)


class IndexRows:
    """Rows + kernel + metadata table + (lazily built) BM25, changed only together."""

    def __init__(
        self,
        kernel: VectorKernel,
        indexed: Sequence[str],
        bm25: tuple[float, float],
        ivf_threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.kernel = kernel
        # IVF partitions (pyapp.kernels.ivf): None below the threshold, or until a writer trains them
        self.ivf: Partitions | None = None
        self.ivf_threshold = ivf_threshold
        self._ivf_math: IvfMath | None = None
        self.table = MetadataTable(indexed)
        self.rows: list[Row] = []
        self.row_of: dict[str, int] = {}
        self.next_seq = 0
        self.next_commit = 1  # the sync stamp of the next commit (pyapp.sync); 0 marks rows from before stamps
        self.tombstones: Tombstones = {}  # deletes, remembered so "what changed after commit N" can name them
        self.texts = 0  # rows with a non-empty text: stats() reports it without building BM25
        self._bm25 = bm25
        self._keyword: KeywordIndex | None = KeywordIndex(*bm25)

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ loading and applying ops
    def load(
        self, rows: list[Row], vectors: bytes | memoryview, tombstones: Any = None, ivf: dict[str, Any] | None = None
    ) -> None:
        """Replace everything with a snapshot's rows, vector matrix, tombstones (``[[id, commit, time]]``) and
        partitioning (if saved)."""
        self.tombstones = {t[0]: (t[1], t[2]) for t in tombstones or ()}
        newest = max((c for c, _ in self.tombstones.values()), default=0)
        with paused_gc(len(rows)):
            self.kernel.load(vectors, len(rows))
            math_ = self.ivf_math() if ivf is not None else None
            self.ivf = None if math_ is None else Partitions.restore(ivf, math_, self.kernel.dims, len(rows))
            self.rows = list(rows)
            # Row is a NamedTuple: itemgetter + map keep these 50k-item passes in C
            self.row_of = dict(zip(map(ROW_ID, rows), range(len(rows))))
            self.table.load(list(map(ROW_METADATA, rows)))
            self.texts = sum(map(bool, map(ROW_TEXT, rows)))
            self._keyword = None  # built on the first text query: opening stays fast
            self.next_seq = max(map(ROW_SEQ, rows), default=-1) + 1
            self.next_commit = max(max(map(ROW_COMMIT, rows), default=0), newest) + 1

    def apply(self, ops: Sequence[Op]) -> None:
        """Apply durable ops. Runs of new ids are appended to the kernel in one call."""
        pending_rows: list[Row] = []
        pending_vectors: list[bytes | memoryview] = []
        pending_ids: set[str] = set()
        if ops:  # every op of one commit carries that commit's stamp
            last = ops[-1]
            self.next_commit = max(self.next_commit, (last.row.commit if isinstance(last, Put) else last.commit) + 1)
        tombstones = self.tombstones

        def flush() -> None:
            if pending_rows:
                start = len(self.rows)
                block = b"".join(pending_vectors)
                self.kernel.append(block, len(pending_rows))
                if self.ivf is not None:
                    self.ivf.add(start, block, len(pending_rows))
                self.rows.extend(pending_rows)
                self.row_of.update({row.id: start + offset for offset, row in enumerate(pending_rows)})
                append_metadata = self.table.append
                for row in pending_rows:
                    append_metadata(row.metadata)
                    if row.text:
                        self.texts += 1
                        if self._keyword is not None:
                            self._keyword.add(row.id, row.text, row.seq)
                pending_rows.clear()
                pending_vectors.clear()
                pending_ids.clear()

        for op in ops:
            if isinstance(op, Put):
                row = op.row
                if tombstones:
                    tombstones.pop(row.id, None)
                if row.id in pending_ids:
                    flush()
                existing = self.row_of.get(row.id)
                if existing is None:
                    pending_rows.append(row)
                    pending_vectors.append(op.vector)
                    pending_ids.add(row.id)
                else:
                    self.kernel.set_row(existing, op.vector)
                    if self.ivf is not None:
                        self.ivf.update(existing, op.vector)
                    self.table.set(existing, row.metadata)
                    self.texts += bool(row.text) - bool(self.rows[existing].text)
                    self.rows[existing] = row
                    if self._keyword is not None:
                        self._keyword.replace(row.id, row.text, row.seq)
                self.next_seq = max(self.next_seq, row.seq + 1)
            else:
                flush()
                self._remove(op.id)
                tombstones[op.id] = (op.commit, op.time)
        flush()

    def _remove(self, item_id: str) -> None:
        row = self.row_of.pop(item_id, None)
        if row is None:
            return
        self.kernel.swap_remove(row)
        if self.ivf is not None:
            self.ivf.swap_remove(row)
        self.table.swap_remove(row)
        removed = self.rows[row]
        moved = self.rows.pop()
        if row != len(self.rows):
            self.rows[row] = moved
            self.row_of[moved.id] = row
        self.texts -= bool(removed.text)
        if self._keyword is not None:
            self._keyword.remove(item_id)

    # ------------------------------------------------------------------ reads
    def keyword(self) -> KeywordIndex:
        """BM25 over the texts, built on first use and kept up to date per op after that."""
        if self._keyword is None:
            keyword = KeywordIndex(*self._bm25)
            keyword.load((row.id, row.text, row.seq) for row in self.rows if row.text)
            self._keyword = keyword
        return self._keyword

    @property
    def keyword_built(self) -> bool:
        return self._keyword is not None

    def seq(self, row: int) -> int:
        return self.rows[row].seq

    def in_order(self, rows: Sequence[int] | None = None) -> list[int]:
        """Row numbers (all, or the given ones) in insertion order."""
        candidates = range(len(self.rows)) if rows is None else [int(r) for r in rows]
        rows_ = self.rows
        return sorted(candidates, key=lambda r: rows_[r].seq)

    def items(self, rows: Sequence[int]) -> list[Item]:
        """Items for many rows with one kernel call (one bridge crossing in the browser)."""
        if not rows:
            return []
        blob = self.kernel.get_rows(rows)
        width = self.kernel.dims * 4
        out = []
        for offset, r in enumerate(rows):
            row = self.rows[r]
            vector = blob[offset * width : (offset + 1) * width]
            out.append(Item._from_float32(row.id, vector, copy_stored(row.metadata), row.text))
        return out

    def item(self, row: int) -> Item:
        return self.items([row])[0]

    def vector_of(self, item_id: str) -> bytes:
        return self.kernel.get_row(self.row_of[item_id])

    def tombstone_list(self) -> list[list[Any]]:
        """The tombstones as a snapshot stores them: ``[[id, commit, time], ...]``."""
        return [[item_id, commit, time] for item_id, (commit, time) in self.tombstones.items()]

    def snapshot_parts(self, vectors: Any = None) -> tuple[list[Row], Any, dict[str, Any] | None]:
        """What a snapshot holds: the rows, the vector matrix (row order) and the partitioning state.
        ``vectors``: a buffer equal to the kernel's matrix, used instead of a copy out of the kernel."""
        if vectors is None:
            vectors = self.kernel.to_bytes()
        return list(self.rows), vectors, None if self.ivf is None else self.ivf.state()

    # ------------------------------------------------------------------ partitions (IVF)
    def ivf_math(self) -> IvfMath | None:
        if self._ivf_math is None:
            self._ivf_math = default_math()
        return self._ivf_math

    def ivf_due(self) -> str | None:
        """Why the partitioning should change now: build (past the threshold), drop (below half of it, with
        hysteresis so an index at the threshold does not flip), or retrain (``Partitions.drift``); else None."""
        n = len(self.rows)
        if self.ivf is None:
            return "threshold" if n >= self.ivf_threshold and self.ivf_math() is not None else None
        if n * 2 < self.ivf_threshold:
            return "drop"
        return self.ivf.drift()

    def train_ivf(self, seed: int = 0, vectors: Any = None) -> None:
        """(Re)build the partitioning over every row now (k-means, then every row assigned). ``vectors``: a
        buffer equal to the kernel's matrix (a bulk load's), assigned instead of a copy out of the kernel."""
        math_ = self.ivf_math()
        n = len(self.rows)
        if math_ is None or n < self.ivf_threshold // 2 or n == 0:
            self.ivf = None
            return
        with paused_gc(n):
            parts = Partitions(math_.train(self.kernel, nlist_for(n), seed))
            parts.add(0, self.kernel.to_bytes() if vectors is None else vectors, n)
            parts.calibrate(self.kernel, math_, seed)  # this index's own probe depth (pyapp.kernels.ivf)
        self.ivf = parts
