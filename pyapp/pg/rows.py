"""Rows <-> items: what a write call's items become as table rows, and what a selected row becomes as an ``Item``.

Why one module: both directions must agree on the columns (``COLUMNS``), and every check a write needs runs
here before anything is sent (ids, metadata, texts, vectors: LocalIndex's own checks plus what PostgreSQL
cannot store), so a rejected call never reaches the database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from ..embed.base import Embedder, Progress
from ..errors import DimensionMismatch, DuplicateId, InvalidMetadata, InvalidVector
from ..kernels.base import VectorKernel
from ..metadata import validate_metadata
from ..staging import check_id, check_text, embed_missing
from ..types import Item
from .connect import Vec
from .values import jsonb_safe, no_nul, terms

COLUMNS = "id, embedding, metadata_json, text"  # what ``item`` reads, in this order
Row = tuple[str, Vec, str, str | None, str | None]  # (id, vector, metadata JSON, text, tsvector input)


def item(row: Sequence[Any]) -> Item:
    """An Item from ``(id, embedding, metadata_json, text)`` (``COLUMNS``)."""
    return Item._from_float32(row[0], row[1], json.loads(row[2]), row[3])


def check_metadata(item_id: str, metadata: Any) -> str:
    """The metadata's JSON text after LocalIndex's checks and the jsonb policy (``InvalidMetadata``)."""
    clean = validate_metadata(metadata)
    jsonb_safe(clean, f"metadata of {item_id!r}", InvalidMetadata)
    return json.dumps(clean)


async def prepare(
    entries: list[dict[str, Any]],
    kernel: VectorKernel,
    dims: int,
    embedder: Embedder | None,
    progress: Progress | None,
) -> list[Row]:
    """Checked rows ``(id, Vec, metadata_json, text, terms)``; nothing is sent before all are valid."""
    ids = [str(uuid.uuid4()) if e.get("id") is None else e.get("id") for e in entries]
    for item_id in ids:
        check_id(item_id)
        no_nul(item_id, "an id")
    once: set[str] = set()
    for item_id in ids:
        if item_id in once:
            raise DuplicateId(f"id {item_id!r} appears twice in one call")
        once.add(item_id)
    metadatas = [{} if e.get("metadata") is None else validate_metadata(e.get("metadata")) for e in entries]
    for item_id, metadata in zip(ids, metadatas):
        jsonb_safe(metadata, f"metadata of {item_id!r}", InvalidMetadata)
    texts = [check_text(e.get("text")) for e in entries]
    for text in texts:
        no_nul(text, "a text")
    raw = await vectors(entries, kernel, dims, embedder, progress)
    width = dims * 4
    return [
        (item_id, Vec(raw[n * width : (n + 1) * width], dims), json.dumps(meta), text, terms(text))
        for n, (item_id, meta, text) in enumerate(zip(ids, metadatas, texts))
    ]


async def vectors(
    entries: list[dict[str, Any]],
    kernel: VectorKernel,
    dims: int,
    embedder: Embedder | None,
    progress: Progress | None,
) -> bytes:
    """Prepared (finite, non-zero, L2-normalised float32) vectors, embedded from text where missing."""
    width = dims * 4
    given = [e.get("vector") for e in entries]
    missing = [n for n, v in enumerate(given) if v is None]
    parts: dict[int, bytes] = {}
    present = [n for n, v in enumerate(given) if v is not None]
    if present:
        packed = kernel.pack([given[n] for n in present])
        for j, n in enumerate(present):
            parts[n] = bytes(packed[j * width : (j + 1) * width])
    if missing:
        embedded = await embed_missing(embedder, entries, missing, progress)
        for j, n in enumerate(missing):
            parts[n] = bytes(embedded[j * width : (j + 1) * width])
    try:
        return bytes(kernel.prepare(b"".join(parts[n] for n in range(len(entries))), len(entries)))
    except (InvalidVector, DimensionMismatch) as exc:
        raise type(exc)(str(exc).replace("vector ", "item ", 1)) from None
