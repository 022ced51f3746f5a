"""Bytes for commits and snapshot rows, shared by the file store and the browser's IndexedDB store.

Pure Python (``json`` + ``struct``), no numpy: the same bytes must be produced and read in Pyodide.
Row fields travel as JSON (``ensure_ascii`` so lone surrogates and any unicode round-trip exactly). Where
``orjson`` is installed (the ``server`` extra) it writes the JSON, an order of magnitude faster than ``json``;
its bytes are valid JSON for every reader, and anything it refuses (lone surrogates, integers beyond 64 bits)
or would change (it writes inf and NaN as null) falls back to ``json``. Reading stays ``json``: ``orjson.loads``
turns integers beyond 64 bits into floats. Vectors stay raw little-endian float32 bytes, never converted, so they
round-trip bit for bit.
Malformed input raises ``CorruptIndex``: these bytes only ever come from storage.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # Pyodide, or a server without the extra: the stdlib writes the same JSON values
    _orjson = None  # type: ignore[assignment]

from .._gc import paused_gc
from ..errors import CorruptIndex
from .base import Delete, Op, Put, Row

COMMIT_VERSION = 2  # 2: ops carry their sync stamps (commit, time); version 1 records are still read
# Rows version 2: "commit" and "time" columns (version 1 rows read with zero stamps), and an optional ``ivf``
# object (the partitioning of pyapp.kernels.ivf: centroids and row assignments, base64 binary inside the JSON).
ROWS_VERSION = 2
_READ_VERSIONS = (1, 2)
# version byte, then the length of the JSON header; the vectors follow the header.
_COMMIT_HEAD = struct.Struct("<BQ")
_PUT = "p"
_DELETE = "d"


def _all_finite(value: Any) -> bool:
    """True when no float nested in ``value`` (dicts and lists) is inf or NaN: one iterative walk, no recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        for item in node.values() if type(node) is dict else node:
            kind = type(item)
            if kind is float:
                if item - item != 0.0:  # NaN for inf and NaN
                    return False
            elif kind is dict or kind is list or kind is tuple:
                stack.append(item)
    return True


def _dumps(value: Any) -> bytes:
    """Compact JSON, exact for every JSON value and for any Python str (lone surrogates included)."""
    if _orjson is not None and _all_finite(value):
        try:
            return _orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate, an integer beyond 64 bits
            pass
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _loads(data: bytes | memoryview, what: str) -> Any:
    try:
        return json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptIndex(f"{what} is not valid JSON: {exc}") from exc


def encode_commit(ops: Sequence[Op]) -> bytes:
    """One commit as bytes: a JSON header listing the ops, then every Put's vector bytes in order."""
    header: list[list[Any]] = []
    vectors: list[bytes] = []
    for op in ops:
        if isinstance(op, Put):
            row = op.row
            header.append([_PUT, row.id, row.metadata, row.text, row.seq, len(op.vector), row.commit, row.time])
            vectors.append(op.vector)  # bytes or memoryview: joined below without a copy each
        elif isinstance(op, Delete):
            header.append([_DELETE, op.id, op.commit, op.time])
        else:
            raise TypeError(f"not a store op: {op!r}")
    head = _dumps(header)
    return b"".join([_COMMIT_HEAD.pack(COMMIT_VERSION, len(head)), head, *vectors])


def decode_commit(data: bytes | memoryview) -> list[Op]:
    """Inverse of ``encode_commit``; raises ``CorruptIndex`` when the bytes do not parse exactly."""
    view = memoryview(data)
    if len(view) < _COMMIT_HEAD.size:
        raise CorruptIndex("commit record is shorter than its header")
    version, head_len = _COMMIT_HEAD.unpack_from(view)
    if version not in _READ_VERSIONS:
        raise CorruptIndex(f"commit record has unknown version {version}")
    start = _COMMIT_HEAD.size
    if start + head_len > len(view):
        raise CorruptIndex("commit record header runs past its end")
    header = _loads(view[start : start + head_len], "commit header")
    pos = start + head_len
    ops: list[Op] = []
    try:
        for entry in header:
            if entry[0] == _PUT:
                _, id_, metadata, text, seq, nbytes, *stamps = entry
                if not isinstance(nbytes, int) or nbytes < 0 or pos + nbytes > len(view):
                    raise CorruptIndex("commit record vectors run past its end")
                ops.append(Put(Row(id_, metadata, text, seq, *stamps[:2]), bytes(view[pos : pos + nbytes])))
                pos += nbytes
            elif entry[0] == _DELETE:
                ops.append(Delete(*entry[1:4]))
            else:
                raise CorruptIndex(f"commit record holds an unknown op {entry[0]!r}")
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise CorruptIndex(f"commit header is malformed: {exc}") from exc
    if pos != len(view):
        raise CorruptIndex(f"commit record has {len(view) - pos} stray bytes after its vectors")
    return ops


def commit_size(prefix: bytes | memoryview) -> int | None:
    """Length of the whole encoded commit that ``prefix`` begins with, read from the commit's own header.

    None while the header itself is cut short. Lets a log reader tell a record that was cut short (a
    torn append) from a whole record whose framing is damaged. ``CorruptIndex`` when ``prefix`` cannot
    begin any commit (unknown version, a whole header that does not parse).
    """
    view = memoryview(prefix).cast("B")
    if len(view) and view[0] not in _READ_VERSIONS:
        raise CorruptIndex(f"commit record has unknown version {view[0]}")
    if len(view) < _COMMIT_HEAD.size:
        return None
    _, head_len = _COMMIT_HEAD.unpack_from(view)
    start = _COMMIT_HEAD.size
    if start + head_len > len(view):
        return None
    header = _loads(view[start : start + head_len], "commit header")
    try:
        vector_bytes = sum(entry[5] for entry in header if entry[0] == _PUT)
    except (TypeError, IndexError, KeyError) as exc:
        raise CorruptIndex(f"commit header is malformed: {exc}") from exc
    if not isinstance(vector_bytes, int) or vector_bytes < 0:
        raise CorruptIndex("commit header gives impossible vector sizes")
    return start + head_len + vector_bytes


def encode_rows(rows: Sequence[Row], ivf: dict[str, Any] | None = None) -> bytes:
    """Snapshot rows as one columnar JSON object: a single ``json.loads`` reads them back fast.

    ``ivf``: the index's partitioning state (JSON-able), stored beside the rows so centroids and assignments
    are written and replaced atomically with the rows they describe; None writes no ``ivf`` key."""
    obj: dict[str, Any] = {
        "version": ROWS_VERSION,
        "id": [r.id for r in rows],
        "metadata": [r.metadata for r in rows],
        "text": [r.text for r in rows],
        "seq": [r.seq for r in rows],
        "commit": [r.commit for r in rows],
        "time": [r.time for r in rows],
    }
    if ivf is not None:
        obj["ivf"] = ivf
    return _dumps(obj)


def decode_rows(data: bytes | memoryview) -> list[Row]:
    """Inverse of ``encode_rows`` (the rows only); raises ``CorruptIndex`` on anything malformed."""
    return decode_snapshot_rows(data)[0]


def decode_snapshot_rows(data: bytes | memoryview) -> tuple[list[Row], dict[str, Any] | None]:
    """Inverse of ``encode_rows``: the rows and the ``ivf`` state (None in version 1 snapshots)."""
    with paused_gc():  # 50k rows allocate 50k+ dicts: collector passes would add a large share to the decode
        return _decode_rows(data)


def _decode_rows(data: bytes | memoryview) -> tuple[list[Row], dict[str, Any] | None]:
    obj = _loads(data, "snapshot rows")
    try:
        if obj["version"] not in _READ_VERSIONS:
            raise CorruptIndex(f"snapshot rows have unknown version {obj['version']!r}")
        ids, metadata, texts, seqs = obj["id"], obj["metadata"], obj["text"], obj["seq"]
        if obj["version"] == 1:
            rows = _checked_rows(ids, metadata, texts, seqs)
            ivf = None
        else:
            rows = _checked_rows(ids, metadata, texts, seqs, obj["commit"], obj["time"])
            ivf = obj.get("ivf")
    except (TypeError, KeyError, AttributeError) as exc:
        raise CorruptIndex(f"snapshot rows are malformed: {exc!r}") from exc
    if ivf is not None and not isinstance(ivf, dict):
        raise CorruptIndex("snapshot partitioning (ivf) is not an object")
    return rows, ivf


def _checked_rows(*columns: list[Any]) -> list[Row]:
    if len({len(column) for column in columns}) > 1:
        raise CorruptIndex("snapshot row columns differ in length")
    return list(map(Row, *columns))


__all__ = [
    "commit_size",
    "decode_commit",
    "decode_rows",
    "decode_snapshot_rows",
    "encode_commit",
    "encode_rows",
]
