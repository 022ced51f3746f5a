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
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any

from ..stores import Row
from .format import (
    ENCODING_FLOAT32,
    ENCODING_INT8,
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
from .int8 import quantize

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

    def rows_frame(self, encoded_rows: list[bytes], vectors: bytes, encoding: int = ENCODING_FLOAT32) -> None:
        """One rows frame: ``encoded_rows`` are JSON objects (bytes), ``vectors`` their float32 values
        (``ENCODING_INT8``: their scales and int8 components, ``int8.quantize``)."""
        body = b"[" + b",".join(encoded_rows) + b"]"
        self._put(frame(FRAME_ROWS, ROWS_HEAD.pack(encoding, len(encoded_rows), len(body)) + body + vectors))
        self.rows += len(encoded_rows)

    def deletes_frame(self, tombstones: list[dict[str, Any]]) -> None:
        """Delta bundles: ``{"id", "seq", "time"}`` of the ids deleted after the bundle's ``since``."""
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


def encode_row(item: Item | Row, seq: int) -> bytes:
    """One row object (with its sync stamps when it is a stored ``Row``); an item whose text or metadata is
    not UTF-8 JSON is an error naming it."""
    record = {"id": item.id, "metadata": item.metadata, "text": item.text, "seq": seq}
    if isinstance(item, Row):
        record["commit"], record["time"] = item.commit, item.time
    try:
        return dump_json(record)
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        raise BundleError(f"item {ascii(item.id)} cannot be written: a lone surrogate {bad!r} is not UTF-8") from None
    except ValueError as exc:
        raise BundleError(f"item {ascii(item.id)} cannot be written: {exc}") from None


async def _records(index: LocalIndex, since: int | None, batch_size: int) -> AsyncIterator[list[tuple[Any, bytes]]]:
    """``(row or item, float32 bytes)`` batches: stored rows with their stamps when the index can say what
    changed (``LocalIndex.changes``), else every item through ``iter_items`` (a full bundle only)."""
    if hasattr(index, "changes"):
        async for rows in index.changes(since, batch_size):
            yield rows
        return
    if since is not None:
        raise BundleError("this index cannot say what changed after a commit: write a full bundle")
    async for items in index.iter_items(batch_size):
        yield [(item, float32_bytes(item)) for item in items]


async def write(
    index: LocalIndex,
    fileobj: IO[bytes],
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    since: int | None = None,
    int8: bool = False,
) -> int:
    """Write the committed items of ``index`` to ``fileobj``; returns how many rows.

    ``since`` None: a full bundle (every item; row ``seq`` is the position in the bundle). ``since`` N: a
    delta, the rows written after commit N (``seq`` their insertion order) and the ids deleted after it.
    The manifest's ``position`` is the newest commit reflected, read before any row: a row written while the
    bundle is streamed may come again in the next delta, never be missed. ``int8``: vectors as per-row
    scales + int8 (a quarter of the bytes; restores close to, not equal to, the stored vectors).
    ``progress(done, total)`` is called after every batch. ``fileobj`` is written to and left open."""
    from .. import __version__

    position = getattr(index, "position", None)
    total = await index.count()
    out = FrameWriter(fileobj)
    encoding = ENCODING_INT8 if int8 else ENCODING_FLOAT32
    manifest = build_manifest(
        index.manifest, total, f"clinvec {__version__}", since, position, "int8" if int8 else "float32"
    )
    out.manifest(manifest)
    encoded: list[bytes] = []
    vectors: list[bytes] = []
    size = 0
    done = 0
    dims = index.manifest["dims"]

    def flush() -> None:
        blob = b"".join(vectors)
        out.rows_frame(encoded, quantize(blob, len(encoded), dims) if int8 else blob, encoding)

    if progress is not None:
        progress(0, total)
    async for batch in _records(index, since, batch_size):
        for record, vector in batch:
            row = encode_row(record, done if since is None else record.seq)
            if encoded and (len(encoded) >= batch_size or size + len(row) + len(vector) > FRAME_TARGET):
                flush()
                encoded, vectors, size = [], [], 0
            encoded.append(row)
            vectors.append(vector)
            size += len(row) + len(vector) + 1
            done += 1
        if progress is not None:
            progress(done, max(total, done))
    if encoded:
        flush()
    if since is not None:
        tombstones = index.tombstones(since)
        for start in range(0, len(tombstones), batch_size):
            chunk = tombstones[start : start + batch_size]
            out.deletes_frame([{"id": t.id, "seq": t.commit, "time": t.time} for t in chunk])
    out.finish()
    return done
