"""Read a bundle frame by frame, checking everything; the sha256 in the trailer is checked at the end.

Why the check comes last: the writer streams, so the hash can only follow the data. Callers that apply a
bundle therefore stage every batch and commit only after the iterator has finished without error (see
``restore.py``): a truncated or altered bundle changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import ClinvecError
from ..metadata import parse_json
from ..staging import check_id
from .format import (
    ENCODING_INT8,
    ENCODINGS,
    FRAME_DELETES,
    FRAME_HEAD,
    FRAME_MANIFEST,
    FRAME_ROWS,
    FRAME_TRAILER,
    MAGIC,
    MAX_FRAME,
    ROWS_HEAD,
    TRAILER,
    BundleError,
    parse_manifest,
)
from .int8 import dequantize, int8_size


@dataclass
class Batch:
    """One frame's worth of records: rows (``id``, ``metadata``, ``text``, ``seq``) with their float32
    vectors back to back, or deleted ids (delta bundles)."""

    dims: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    vectors: bytes = b""
    deletes: list[str] = field(default_factory=list)
    # delta bundles: each deleted id's tombstone (``{"id", "seq", "time"}``; seq is the deleting commit)
    tombstones: list[dict[str, Any]] = field(default_factory=list)

    def items(self) -> list[dict[str, Any]]:
        """The rows as ``insert_many``/``upsert_many`` items (vectors as float32 arrays: exact values)."""
        values = array("f")
        values.frombytes(self.vectors)
        if sys.byteorder != "little":
            values.byteswap()
        d = self.dims
        return [
            {"id": row["id"], "vector": values[i * d : (i + 1) * d], "metadata": row["metadata"], "text": row["text"]}
            for i, row in enumerate(self.rows)
        ]


@dataclass
class Summary:
    """What a fully read (and verified) bundle held."""

    manifest: dict[str, Any]
    rows: int = 0
    deletes: int = 0
    ids: list[str] = field(default_factory=list)


class BundleReader:
    """``BundleReader(fileobj).manifest``, then ``batches()`` once; raises ``BundleError`` on any defect."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._gz = gzip.GzipFile(filename="", mode="rb", fileobj=fileobj)
        self._hash = hashlib.sha256()
        self._used = False
        self._started = False  # before the first bytes, a gzip error means "not gzip at all"
        magic = self._read(len(MAGIC), "its magic bytes")
        self._started = True
        if magic != MAGIC:
            raise BundleError("not a clinvec bundle: it is gzip data, but not a bundle (wrong magic bytes)")
        self._hash.update(magic)
        kind, payload = self._frame()
        if kind != FRAME_MANIFEST:
            raise BundleError("bundle is malformed: the first frame is not the manifest")
        self.manifest = parse_manifest(payload)
        self.dims: int = self.manifest["index"]["dims"]
        self.encoding = ENCODINGS[self.manifest["vectors"]["encoding"]]

    # ------------------------------------------------------------------ raw reads
    def _read(self, n: int, what: str) -> bytes:
        try:
            data = self._gz.read(n)
        except gzip.BadGzipFile as exc:
            if not self._started:
                raise BundleError(f"not a clinvec bundle (not gzip data: {exc})") from None
            raise BundleError(f"the bundle is damaged while reading {what} (gzip: {exc})") from None
        except (EOFError, zlib.error, OSError) as exc:
            raise BundleError(f"the bundle is truncated or damaged while reading {what} ({exc})") from None
        if len(data) != n:
            raise BundleError(f"the bundle is truncated: it ends inside {what}")
        return data

    def _frame(self) -> tuple[int, bytes]:
        """The next frame; its bytes join the hash unless it is the trailer."""
        head = self._read(FRAME_HEAD.size, "a frame header")
        kind, length = FRAME_HEAD.unpack(head)
        if length > MAX_FRAME:
            raise BundleError(f"bundle is malformed: a frame claims {length} bytes (the limit is {MAX_FRAME})")
        payload = self._read(length, f"a frame of type {chr(kind)!r}" if 32 < kind < 127 else "a frame")
        if kind != FRAME_TRAILER:
            self._hash.update(head)
            self._hash.update(payload)
        return kind, payload

    def _at_end(self) -> bool:
        try:
            return self._gz.read(1) == b""
        except (EOFError, zlib.error, OSError) as exc:  # BadGzipFile (e.g. a CRC mismatch) is an OSError
            raise BundleError(f"the bundle is damaged after its trailer ({exc})") from None

    # ------------------------------------------------------------------ records
    def batches(self) -> Iterator[Batch]:
        """Every rows/deletes frame as a ``Batch``; the trailer (counts and sha256) is checked after the last.

        A caller must read to the end before acting on what it read: only then is the bundle verified."""
        if self._used:
            raise BundleError("a bundle's batches can be read only once")
        self._used = True
        seen: set[str] = set()
        last_seq = -1
        rows = deletes = 0
        while True:
            kind, payload = self._frame()
            if kind == FRAME_ROWS:
                batch, last_seq = self._rows(payload, seen, last_seq)
                rows += len(batch.rows)
                yield batch
            elif kind == FRAME_DELETES:
                batch = self._deletes(payload, seen)
                deletes += len(batch.deletes)
                yield batch
            elif kind == FRAME_TRAILER:
                self._trailer(payload, rows, deletes)
                return
            elif kind == FRAME_MANIFEST:
                raise BundleError("bundle is malformed: a second manifest frame")
            else:
                raise BundleError(f"bundle is malformed: unknown frame type {kind}")

    def _rows(self, payload: bytes, seen: set[str], last_seq: int) -> tuple[Batch, int]:
        if len(payload) < ROWS_HEAD.size:
            raise BundleError("bundle is malformed: a rows frame is shorter than its header")
        encoding, n, json_len = ROWS_HEAD.unpack_from(payload)
        if encoding != self.encoding:
            raise BundleError(f"bundle is malformed: rows frame vector encoding {encoding} is not the manifest's")
        start = ROWS_HEAD.size
        int8 = self.encoding == ENCODING_INT8
        vector_bytes = int8_size(n, self.dims) if int8 else n * self.dims * 4
        if len(payload) != start + json_len + vector_bytes:
            raise BundleError(
                f"bundle is malformed: a rows frame of {n} rows should be {start + json_len + vector_bytes} bytes, "
                f"it is {len(payload)}"
            )
        records = parse_json(payload[start : start + json_len], "bundle rows", BundleError)
        if not isinstance(records, list) or len(records) != n:
            raise BundleError(f"bundle is malformed: a rows frame announces {n} rows but does not hold them")
        rows = []
        for record in records:
            row = self._row(record, seen, last_seq)
            last_seq = row["seq"]
            rows.append(row)
        vectors = payload[start + json_len :]
        if int8:  # the index takes float32: value = byte x its row's scale (re-normalised when staged)
            vectors = dequantize(vectors, n, self.dims)
        return Batch(self.dims, rows=rows, vectors=vectors), last_seq

    @staticmethod
    def _row(record: Any, seen: set[str], last_seq: int) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise BundleError("bundle is malformed: a row is not an object")
        item_id = _checked_id(record.get("id"))
        where = f"bundle row {ascii(item_id)}"
        if item_id in seen:
            raise BundleError(f"{where}: the id occurs twice in the bundle")
        seen.add(item_id)
        metadata, text, seq = record.get("metadata", {}), record.get("text"), record.get("seq")
        if not isinstance(metadata, dict):
            raise BundleError(f"{where}: metadata must be an object")
        if text is not None and not isinstance(text, str):
            raise BundleError(f"{where}: text must be a string or null")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq <= last_seq:
            raise BundleError(f"{where}: seq must be an integer greater than the previous row's ({last_seq})")
        return {"id": item_id, "metadata": metadata, "text": text, "seq": seq, "time": _stamp(record, "time", where)}

    def _deletes(self, payload: bytes, seen: set[str]) -> Batch:
        records = parse_json(payload, "bundle deletes", BundleError)
        if not isinstance(records, list):
            raise BundleError("bundle is malformed: a deletes frame is not a list")
        ids = []
        tombstones = []
        for record in records:
            item_id = _checked_id(record.get("id") if isinstance(record, dict) else None)
            if item_id in seen:
                raise BundleError(f"bundle delete {ascii(item_id)}: the id occurs twice in the bundle")
            seen.add(item_id)
            ids.append(item_id)
            where = f"bundle delete {ascii(item_id)}"
            tombstones.append(
                {"id": item_id, "seq": _stamp(record, "seq", where), "time": _stamp(record, "time", where)}
            )
        return Batch(self.dims, deletes=ids, tombstones=tombstones)

    def _trailer(self, payload: bytes, rows: int, deletes: int) -> None:
        if len(payload) != TRAILER.size:
            raise BundleError("bundle is malformed: the trailer has the wrong size")
        digest, want_rows, want_deletes = TRAILER.unpack(payload)
        if digest != self._hash.digest():
            raise BundleError("the bundle fails its sha256 check: it was altered or damaged after it was written")
        if (want_rows, want_deletes) != (rows, deletes):
            raise BundleError(f"bundle is malformed: the trailer counts {want_rows} rows, the bundle holds {rows}")
        if not self._at_end():
            raise BundleError("bundle is malformed: data follows the trailer")


def _stamp(record: dict[str, Any], key: str, where: str) -> int:
    """A sync stamp (a non-negative integer; 0 when the record has none, as bundles before sync)."""
    value = record.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(f"{where}: {key} must be a non-negative integer")
    return value


def _checked_id(value: Any) -> str:
    try:
        return check_id(value)
    except ClinvecError as exc:
        raise BundleError(f"bundle is malformed: {exc}") from None


def read(fileobj: IO[bytes]) -> tuple[dict[str, Any], Iterator[Batch]]:
    """``(manifest, batches)``: the manifest is checked now, each batch as it is read, the sha256 after the
    last one. Act on the batches only once the iterator has ended without ``BundleError``."""
    reader = BundleReader(fileobj)
    return reader.manifest, reader.batches()


def verify(fileobj: IO[bytes]) -> Summary:
    """Read the whole bundle and check it (bounded memory: one frame at a time plus the ids)."""
    reader = BundleReader(fileobj)
    summary = Summary(reader.manifest)
    for batch in reader.batches():
        summary.rows += len(batch.rows)
        summary.deletes += len(batch.deletes)
        summary.ids.extend(row["id"] for row in batch.rows)
    return summary
