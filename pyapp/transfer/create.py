"""Create a new index from a source (migration): dims and indexed fields come from the source.

Kept apart from the readers because it is the one part that needs ``LocalIndex`` itself; the rest of
``pyapp.transfer`` works on any open index through its public API.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..embed.base import Embedder, Progress
from ..errors import InvalidInput
from ..index import LocalIndex
from .importer import is_bundle, read_source, write_source
from .items import LineProgress, open_source


async def create_from(
    location: str,
    path: str,
    format: str | None = None,
    embedder: Embedder | None = None,
    indexed: Sequence[str] | None = None,
    progress: Progress | None = None,
    read_progress: LineProgress | None = None,
) -> LocalIndex:
    """A new index at ``location`` holding every item of the source, returned open.

    ``dims`` is the embedder's, else the source's vector length; ``indexed`` defaults to what the source
    records (a vectra folder's ``metadata_config.indexed``). A bundle brings its whole configuration (dims,
    indexed fields, BM25 parameters, model identity). If loading fails, the new index is removed
    again, so a failed migration leaves nothing behind.
    """
    if is_bundle(path, format):
        return await _create_from_bundle(location, path, embedder, indexed, progress)
    dims = embedder.dims if embedder is not None else None
    source = read_source(path, format, dims, read_progress)
    if source.dims is None and embedder is None:
        raise InvalidInput(f"{path!r} has no vectors to take dims from; give an embedder to embed its text")
    fields = list(indexed) if indexed is not None else source.indexed
    index = await LocalIndex.create(location, dims=source.dims, indexed=fields, embedder=embedder)
    try:
        await write_source(index, source, progress=progress)
    except BaseException:
        await index.close()
        await LocalIndex.drop(location)
        raise
    return index


async def _create_from_bundle(
    location: str, path: str, embedder: Embedder | None, indexed: Sequence[str] | None, progress: Progress | None
) -> LocalIndex:
    from ..bundle.restore import create_from_bundle

    with open_source(path) as handle:
        return await create_from_bundle(location, handle, embedder=embedder, indexed=indexed, progress=progress)
