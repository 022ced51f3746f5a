"""Apply a bundle to an index, all or nothing; check first that its vectors fit the index at all.

Why one ``batch()``: every rows frame is staged, and the commit happens only after the reader has checked
the trailer's sha256, so a truncated, altered or refused bundle leaves the index exactly as it was. Built on
the public ``LocalIndex`` API (``batch``, ``insert_many``/``upsert_many``, ``delete_many``, ``ids``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from ..embed.base import Embedder, Progress
from ..errors import ClinvecError, NoEmbedder
from .format import BundleError
from .reader import BundleReader, verify

if TYPE_CHECKING:
    from ..index import LocalIndex

MODES = ("insert", "upsert", "replace")
"""``insert``: new ids only (an id the index holds is ``DuplicateId``); ``upsert``: merge, the bundle's
version of an id wins and keeps that id's place; ``replace``: the index ends holding exactly the bundle."""

IDENTITY_KEYS = ("model", "variant")  # what LocalIndex compares when an embedder is attached


def describe(identity: dict[str, Any] | None) -> str:
    if not identity:
        return "an unrecorded model"
    return f"{identity.get('model')!r} ({identity.get('variant')})"


def check_fits(index_manifest: dict[str, Any], bundle_manifest: dict[str, Any]) -> None:
    """``BundleError`` unless the bundle's vectors compare with the index's: same dims, same model.

    The model check: when the index records an embedder, the bundle must record the same ``model`` and
    ``variant`` (and the same weights' ``sha256`` when both record one); vectors of another model would be
    stored but never match a query. An index without a recorded embedder takes any bundle of its dims."""
    config = bundle_manifest["index"]
    if config["dims"] != index_manifest["dims"]:
        raise BundleError(f"the bundle holds {config['dims']}-d vectors; this index holds {index_manifest['dims']}-d")
    mine, theirs = index_manifest.get("embedder"), config.get("embedder")
    if not mine:
        return
    if not theirs:
        raise BundleError(
            f"the bundle does not record which model made its vectors; this index's come from {describe(mine)}"
        )
    keys = IDENTITY_KEYS + (("sha256",) if mine.get("sha256") and theirs.get("sha256") else ())
    if any(mine.get(k) != theirs.get(k) for k in keys):
        raise BundleError(
            f"the bundle's vectors come from {describe(theirs)}; this index's come from {describe(mine)}: "
            "they would not compare (export from, or restore into, an index of the same model)"
        )


async def restore_from(
    index: LocalIndex, reader: BundleReader, mode: str = "insert", progress: Progress | None = None
) -> dict[str, int]:
    """Apply an opened bundle in one commit; returns ``{"restored", "deleted", "removed"}`` counts."""
    if mode not in MODES:
        raise BundleError(f"restore mode must be one of {MODES}, got {mode!r}")
    check_fits(index.manifest, reader.manifest)
    total = reader.manifest["items"]
    restored = deleted = removed = 0
    write = index.upsert_many if mode == "upsert" else index.insert_many
    batches = reader.batches()
    async with index.batch():
        if mode == "replace":
            removed = await index.delete_many(await index.ids())
        if progress is not None:
            progress(0, total)
        for batch in batches:
            try:
                if batch.deletes:
                    deleted += await index.delete_many(batch.deletes)
                if batch.rows:
                    restored += len(await write(batch.items()))
            except ClinvecError:
                _drain(batches)  # damage later in the bundle explains a bad vector better than the vector does
                raise
            if progress is not None:
                progress(restored, max(total, restored))
    return {"restored": restored, "deleted": deleted, "removed": removed}


def _drain(batches: Iterator[Any]) -> None:
    """Read the rest of a bundle; raises its ``BundleError`` if it has one (the sha256 check is at its end)."""
    for _ in batches:
        pass


async def restore(
    index: LocalIndex, fileobj: IO[bytes], mode: str = "insert", progress: Progress | None = None
) -> dict[str, int]:
    """Apply the bundle in ``fileobj`` to ``index`` in one commit (see ``MODES``); nothing changes on error."""
    return await restore_from(index, BundleReader(fileobj), mode, progress)


async def plan(index: LocalIndex, fileobj: IO[bytes]) -> dict[str, Any]:
    """Read and verify the whole bundle, check it fits ``index``, and say what a restore would do:
    ``items`` in the bundle, how many are ``new`` and how many would ``overwrite`` notes with the same id,
    how many of the index's items the bundle does not hold (``kept`` by upsert, removed by replace)."""
    summary = verify(fileobj)
    check_fits(index.manifest, summary.manifest)
    have = set(await index.ids())
    overwrite = sum(1 for i in summary.ids if i in have)
    return {
        "items": summary.rows,
        "deletes": summary.deletes,
        "new": summary.rows - overwrite,
        "overwrite": overwrite,
        "kept": len(have) - overwrite,
        "created": summary.manifest.get("created"),
        "embedder": summary.manifest["index"].get("embedder"),
        "kind": summary.manifest["kind"],
    }


class RecordedModel(Embedder):
    """Stands for the model a bundle records while an index is created from it: the new index records the
    same identity, so later text queries must use that model. It embeds nothing."""

    def __init__(self, identity: dict[str, Any], dims: int) -> None:
        self._identity = dict(identity)
        self.dims = dims

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self._identity)

    async def embed_raw(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        raise NoEmbedder(f"{describe(self._identity)} is recorded, not loaded: open the index with that model")


async def create_from_bundle(
    location: str,
    fileobj: IO[bytes],
    embedder: Embedder | None = None,
    indexed: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> LocalIndex:
    """A new index at ``location`` with the bundle's configuration (dims, indexed fields, BM25, model) and
    items, returned open. A failed restore removes the new index again."""
    from ..index import LocalIndex

    reader = BundleReader(fileobj)
    config = reader.manifest["index"]
    recorded = config.get("embedder")
    model = embedder or (RecordedModel(recorded, config["dims"]) if recorded else None)
    bm25 = config.get("bm25", {})
    index = await LocalIndex.create(
        location,
        dims=config["dims"],
        indexed=list(config.get("indexed", [])) if indexed is None else list(indexed),
        embedder=model,
        bm25_k1=bm25.get("k1", 0.9),
        bm25_b=bm25.get("b", 0.4),
    )
    try:
        if embedder is None:
            index.use_embedder(None)
        await restore_from(index, reader, "insert", progress)
    except BaseException:
        await index.close()
        await LocalIndex.drop(location)
        raise
    return index
