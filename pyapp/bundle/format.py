"""The clinvec bundle's bytes: magic, frames, manifest, trailer (docs/BUNDLE.md says it byte by byte).

Why frames: a bundle is read and written batch by batch in bounded memory (gzip streams both ways), so
every part is a self-delimiting ``type:u8 length:u32le payload`` frame that a reader can take one at a time.
Pure stdlib (struct, json) so the same code runs in Pyodide without numpy.
"""

from __future__ import annotations

import json
import math
import struct
import time
from typing import Any

from ..errors import InvalidInput
from ..metadata import parse_json

FORMAT = "clinvec-bundle"
FORMAT_VERSION = 1
MAGIC = b"CLINVECB"
EXTENSION = ".clinvec"
MEDIA_TYPE = "application/vnd.clinvec.bundle+gzip"

FRAME_MANIFEST = ord("M")
FRAME_ROWS = ord("R")
FRAME_DELETES = ord("D")
FRAME_TRAILER = ord("T")
FRAME_HEAD = struct.Struct("<BI")  # type, payload length
ROWS_HEAD = struct.Struct("<BII")  # vector encoding, row count, JSON length
TRAILER = struct.Struct("<32sQQ")  # sha256 of everything before the trailer frame, rows, deletes

ENCODING_FLOAT32 = 0
ENCODING_INT8 = 1  # one float32 scale per row, then int8 components (docs/BUNDLE.md)
ENCODINGS = {"float32": ENCODING_FLOAT32, "int8": ENCODING_INT8}

KINDS = ("full", "delta")  # "delta": the rows and deletes of the commits after ``since`` (sync)
MAX_FRAME = 256 * 1024 * 1024  # a reader refuses longer frames instead of allocating what a header claims
MAX_DIMS = 65_536
FRAME_TARGET = 8 * 1024 * 1024  # a writer starts a new rows frame past this many bytes


class BundleError(InvalidInput):
    """A bundle is malformed, truncated, altered (sha256), or does not fit the index it is applied to;
    nothing was changed."""


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def frame(kind: int, payload: bytes) -> bytes:
    """One frame: its header then its payload."""
    if len(payload) > MAX_FRAME:
        raise BundleError(f"a bundle frame of {len(payload)} bytes exceeds the {MAX_FRAME}-byte limit")
    return FRAME_HEAD.pack(kind, len(payload)) + payload


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII text kept as UTF-8; NaN refused: it is not JSON)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def build_manifest(
    index_manifest: dict[str, Any],
    items: int,
    generator: str,
    since: int | None = None,
    position: int | None = None,
    encoding: str = "float32",
) -> dict[str, Any]:
    """The manifest of a bundle of an index whose stored manifest is ``index_manifest``: full when ``since``
    is None, else a delta of the commits after ``since``; ``position`` is the newest commit it reflects."""
    bm25 = index_manifest.get("bm25") or {}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "full" if since is None else "delta",
        "since": since,
        "position": position,
        "created": utc_now(),
        "generator": generator,
        "items": items,
        "index": {
            "dims": index_manifest["dims"],
            "metric": index_manifest.get("metric", "cosine"),
            "indexed": list(index_manifest.get("indexed", [])),
            "bm25": {"k1": bm25.get("k1", 0.9), "b": bm25.get("b", 0.4)},
            "embedder": index_manifest.get("embedder"),
            "created": index_manifest.get("created"),
        },
        "vectors": {"encoding": encoding, "byte_order": "little"},
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def parse_manifest(payload: bytes) -> dict[str, Any]:
    """The manifest frame, checked: a newer format version, an unknown kind or a bad index config is an error.

    Keys a version does not know are ignored (later versions may add some); keys it relies on are checked."""
    manifest = parse_json(payload, "bundle manifest", BundleError)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("not a clinvec bundle: the manifest does not name the format 'clinvec-bundle'")
    version = manifest.get("format_version")
    if not _is_int(version) or version < 1:
        raise BundleError(f"bundle manifest: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"this bundle has format version {version}; this clinvec reads up to version {FORMAT_VERSION}: upgrade it"
        )
    if manifest.get("kind") not in KINDS:
        raise BundleError(f"bundle manifest: kind must be one of {KINDS}, got {manifest.get('kind')!r}")
    since = manifest.get("since")
    if since is not None and not _is_int(since):
        raise BundleError("bundle manifest: since must be an integer or null")
    if manifest["kind"] == "delta" and since is None:
        raise BundleError("bundle manifest: a delta bundle needs 'since'")
    position = manifest.get("position")
    if position is not None and not _is_int(position):
        raise BundleError("bundle manifest: position must be an integer or null")
    items = manifest.get("items")
    if not _is_int(items) or items < 0:
        raise BundleError("bundle manifest: items must be a non-negative integer")
    _check_index_config(manifest.get("index"))
    vectors = manifest.get("vectors")
    if not isinstance(vectors, dict) or vectors.get("encoding") not in ENCODINGS:
        raise BundleError(f"bundle manifest: vectors.encoding must be one of {sorted(ENCODINGS)}")
    if vectors.get("byte_order", "little") != "little":
        raise BundleError("bundle manifest: vectors.byte_order must be 'little'")
    return manifest


def _check_index_config(config: Any) -> None:
    if not isinstance(config, dict):
        raise BundleError("bundle manifest: 'index' must be an object")
    dims = config.get("dims")
    if not _is_int(dims) or not 1 <= dims <= MAX_DIMS:
        raise BundleError(f"bundle manifest: index.dims must be an integer in 1..{MAX_DIMS}, got {dims!r}")
    if config.get("metric", "cosine") != "cosine":
        raise BundleError(f"bundle manifest: metric {config.get('metric')!r} is not supported (only 'cosine')")
    indexed = config.get("indexed", [])
    if not isinstance(indexed, list) or not all(isinstance(f, str) and f for f in indexed):
        raise BundleError("bundle manifest: index.indexed must be a list of field names")
    bm25 = config.get("bm25", {})
    if not isinstance(bm25, dict) or not all(_is_number(bm25.get(k, 0.5)) for k in ("k1", "b")):
        raise BundleError("bundle manifest: index.bm25 must hold numbers k1 and b")
    embedder = config.get("embedder")
    if embedder is not None and not isinstance(embedder, dict):
        raise BundleError("bundle manifest: index.embedder must be an object or null")
