"""clinvec bundles: a whole index (or, later, a delta of it) in one gzip file, streamed both ways.

``write(index, fileobj)`` writes every item (ids, order, metadata, text, float32 vectors) with the index's
configuration and model identity; ``read(fileobj)`` gives ``(manifest, batches)``; ``restore(index, fileobj)``
applies a bundle all or nothing, after its sha256 check. Pure Python (gzip, hashlib, json, struct), so the
browser's worker writes and reads the very same bytes. The format is documented in docs/BUNDLE.md.
"""

from __future__ import annotations

from .format import EXTENSION, FORMAT, FORMAT_VERSION, MEDIA_TYPE, BundleError
from .reader import Batch, BundleReader, Summary, read, verify
from .restore import MODES, check_fits, create_from_bundle, plan, restore, restore_from
from .writer import write

__all__ = [
    "EXTENSION",
    "FORMAT",
    "FORMAT_VERSION",
    "MEDIA_TYPE",
    "MODES",
    "Batch",
    "BundleError",
    "BundleReader",
    "Summary",
    "check_fits",
    "create_from_bundle",
    "plan",
    "read",
    "restore",
    "restore_from",
    "verify",
    "write",
]
