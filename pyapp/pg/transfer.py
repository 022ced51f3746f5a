"""Moving data between LocalIndex and PostgreSQL through the ``.clinvec`` bundle (docs/BUNDLE.md).

A bundle written by ``python -m pyapp bundle export`` (or the page's backup) loads into a PgIndex in one
transaction after its sha256 check (``pyapp.bundle.restore_from``: all or nothing); a PgIndex, or the
part of it matching a filter, is written as a full bundle that a LocalIndex or the page restores. Both
reuse the bundle module unchanged: PgIndex offers the calls it uses (``manifest``, ``count``,
``iter_items``, ``batch``, ``insert_many``...).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import IO, Any

from ..bundle import BundleReader, write
from ..bundle.restore import RecordedModel, restore_from
from ..embed.base import Progress
from ..filters import compile_filter
from ..types import Item
from .index import PgIndex


async def load_bundle(
    dsn: str,
    name: str,
    fileobj: IO[bytes],
    mode: str = "insert",
    indexed: Sequence[str] | None = None,
    progress: Progress | None = None,
    maintenance_work_mem: str = "1GB",
) -> dict[str, Any]:
    """Apply a bundle to PgIndex ``name``, creating it with the bundle's configuration (dims, indexed
    fields, model identity) when absent; returns the restore counts plus ``created``. A failed load into
    a new index drops it again. A new index is loaded first and its HNSW graph built once afterwards
    (``maintenance_work_mem`` for the build), the fast way to bulk-load pgvector."""
    reader = BundleReader(fileobj)
    config = reader.manifest["index"]
    created = not await PgIndex.exists(dsn, name)
    if created:
        recorded = config.get("embedder")
        model = RecordedModel(recorded, config["dims"]) if recorded else None
        fields = list(config.get("indexed", [])) if indexed is None else list(indexed)
        index = await PgIndex.create(dsn, name, dims=config["dims"], indexed=fields, embedder=model)
        index.use_embedder(None)
    else:
        index = await PgIndex.open(dsn, name)
    try:
        if created:
            await index.drop_vector_index()
        counts = await restore_from(index, reader, mode, progress)  # type: ignore[arg-type]
        if created:
            await index.build_vector_index(maintenance_work_mem)
    except BaseException:
        await index.close()
        if created:
            await PgIndex.drop(dsn, name)
        raise
    await index.close()
    return {**counts, "created": created}


class _Subset:
    """A PgIndex seen through a filter: what ``pyapp.bundle.write`` reads (manifest, count, iter_items)."""

    def __init__(self, index: PgIndex, filter: dict[str, Any] | None) -> None:
        self._index = index
        self._filter = None if filter is None else compile_filter(filter).spec

    @property
    def manifest(self) -> dict[str, Any]:
        return self._index.manifest

    async def count(self) -> int:
        return await self._index.count(self._filter)

    async def iter_items(self, batch_size: int = 1024) -> AsyncIterator[list[Item]]:
        async for batch in self._index.iter_items(batch_size, filter=self._filter):
            yield batch


async def export_bundle(
    index: PgIndex, fileobj: IO[bytes], filter: dict[str, Any] | None = None, progress: Progress | None = None
) -> int:
    """Write the items of ``index`` matching ``filter`` (all when None), in insertion order, as a full
    bundle; returns how many. The bundle records the index's dims, indexed fields and model identity, so
    ``restore``/``create_from_bundle`` (and the page's restore) accept it as any backup."""
    return await write(_Subset(index, filter), fileobj, progress)  # type: ignore[arg-type]
