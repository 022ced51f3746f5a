"""Write a full bundle of an index, batch by batch, through the public ``iter_items`` API only.

Why through ``iter_items``: it works on every store and kernel (and on a ``DocumentIndex``'s chunk items),
and memory stays bounded by one rows frame however large the index is. Vectors are written as the float32
values the index stores, so a restore is bit-exact.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from array import array
from typing import IO, TYPE_CHECKING, Any

from .format import (
    ENCODING_FLOAT32,
    FRAME_DELETES,
    FRAME_MANIFEST,
    FRAME_ROWS,
    FRAME_TARGET,
    FRAME_TRAILER,
    MAGIC,
    ROWS_HEAD,
    TRAILER,
    BundleError,
    build_manifest,
    dump_json,
    frame,
)

if TYPE_CHECKING:
    from ..embed.base import Progress
    from ..index import LocalIndex
    from ..types import Item

BATCH_SIZE = 1024
COMPRESS_LEVEL = 6  # float32 vectors barely compress; higher levels cost CPU (in Pyodide too) for little


class FrameWriter:
    """Frames into a gzip stream, hashing every byte before the trailer (the integrity check readers run)."""

    def __init__(self, fileobj: IO[bytes], level: int = COMPRESS_LEVEL) -> None:
        # filename="" and mtime=0: the gzip header then carries neither a local path nor a time
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=fileobj, compresslevel=level, mtime=0)
        self._hash = hashlib.sha256()
        self.rows = 0
        self.deletes = 0
        self._put(MAGIC)

    def _put(self, data: bytes) -> None:
        self._hash.update(data)
        self._gz.write(data)

    def manifest(self, manifest: dict[str, Any]) -> None:
        self._put(frame(FRAME_MANIFEST, dump_json(manifest)))

    def rows_frame(self, encoded_rows: list[bytes], vectors: bytes) -> None:
        """One rows frame: ``encoded_rows`` are JSON objects (bytes), ``vectors`` their float32 values."""
        body = b"[" + b",".join(encoded_rows) + b"]"
        self._put(frame(FRAME_ROWS, ROWS_HEAD.pack(ENCODING_FLOAT32, len(encoded_rows), len(body)) + body + vectors))
        self.rows += len(encoded_rows)

    def deletes_frame(self, tombstones: list[dict[str, Any]]) -> None:
        """Reserved for delta bundles: ids deleted since the bundle's ``since`` position."""
        self._put(frame(FRAME_DELETES, dump_json(tombstones)))
        self.deletes += len(tombstones)

    def finish(self) -> None:
        """The trailer (sha256 of everything so far, counts), then the gzip end; the caller's file stays open."""
        trailer = TRAILER.pack(self._hash.digest(), self.rows, self.deletes)
        self._gz.write(frame(FRAME_TRAILER, trailer))
        self._gz.close()


def float32_bytes(item: Item) -> bytes:
    """The item's vector as little-endian float32 (exact: the index stores float32)."""
    values = array("f", item.vector)
    if sys.byteorder != "little":
        values.byteswap()
    return values.tobytes()


def encode_row(item: Item, seq: int) -> bytes:
    """One row object; an item whose text or metadata is not UTF-8 JSON is an error naming it."""
    try:
        return dump_json({"id": item.id, "metadata": item.metadata, "text": item.text, "seq": seq})
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise BundleError(f"item {ascii(item.id)} cannot be written: a lone surrogate {bad!r} is not UTF-8") from None
    except ValueError as exc:
        raise BundleError(f"item {ascii(item.id)} cannot be written: {exc}") from None


async def write(
    index: LocalIndex,
    fileobj: IO[bytes],
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Write every committed item of ``index`` to ``fileobj`` as a full bundle; returns how many.

    ``progress(done, total)`` is called after every batch. Items keep their insertion order (row ``seq`` is
    the position in the bundle). ``fileobj`` is written to and left open."""
    from .. import __version__

    total = await index.count()
    out = FrameWriter(fileobj)
    out.manifest(build_manifest(index.manifest, total, f"clinvec {__version__}"))
    encoded: list[bytes] = []
    vectors: list[bytes] = []
    size = 0
    done = 0
    if progress is not None:
        progress(0, total)
    async for batch in index.iter_items(batch_size):
        for item in batch:
            row = encode_row(item, done)
            vector = float32_bytes(item)
            if encoded and (len(encoded) >= batch_size or size + len(row) + len(vector) > FRAME_TARGET):
                out.rows_frame(encoded, b"".join(vectors))
                encoded, vectors, size = [], [], 0
            encoded.append(row)
            vectors.append(vector)
            size += len(row) + len(vector) + 1
            done += 1
        if progress is not None:
            progress(done, max(total, done))
    if encoded:
        out.rows_frame(encoded, b"".join(vectors))
    out.finish()
    return done
