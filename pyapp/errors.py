"""Every error clinvec raises on purpose: one base class so callers can catch them all."""

from __future__ import annotations

import reprlib
from typing import Any

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 60, 60, 40


def describe(value: Any) -> str:
    """A short, always printable form of a user's value for an error message (deep nesting, 5,000-digit
    integers and huge strings would make ``repr`` fail or flood the message)."""
    try:
        return _SHORT.repr(value)
    except (ValueError, RecursionError, TypeError):
        return f"a {type(value).__name__}"


class ClinvecError(Exception):
    """Base of every deliberate clinvec error; a failed call that raises one changed nothing."""


class IndexNotFound(ClinvecError):
    """No index exists at the location given to ``open``."""


class IndexExists(ClinvecError):
    """``create`` was asked for a location that already holds an index (and ``exist_ok`` is False)."""


class DimensionMismatch(ClinvecError):
    """A vector's length differs from the index's ``dims``."""


class InvalidVector(ClinvecError):
    """A vector holds NaN/inf, is all zeros, or is not a flat list of numbers."""


class DuplicateId(ClinvecError):
    """``insert`` was given an id that is already taken (use ``upsert`` to replace)."""


class InvalidFilter(ClinvecError):
    """A metadata filter uses an unknown operator or is malformed."""


class InvalidMetadata(ClinvecError):
    """Metadata is not JSON (str, number, bool, null, lists, objects with string keys)."""


class IndexLocked(ClinvecError):
    """Another writer holds the index; open it ``read_only=True`` or try later."""


class ReadOnlyIndex(ClinvecError):
    """A write was attempted on an index opened with ``read_only=True``."""


class CorruptIndex(ClinvecError):
    """Stored files fail their checksums or cannot be parsed."""


class UpdateInProgress(ClinvecError):
    """``begin_update``/``batch`` was called while an update is already open."""


class NoUpdateInProgress(ClinvecError):
    """``end_update``/``cancel_update`` was called with no open update."""


class IndexClosed(ClinvecError):
    """The index was closed; open it again to use it."""


class StorageError(ClinvecError):
    """The store failed to read or write (I/O error, read-only file system, quota); the stored index is unchanged."""


class StorageFull(StorageError):
    """The storage quota or disk is full; the stored index is unchanged."""


class NoEmbedder(ClinvecError):
    """Text was given where a vector is needed, but the index has no embedder."""


class InvalidInput(ClinvecError):
    """An argument is malformed (bad id, bad top_k, unknown mode or format, malformed import file)."""


class ModelBundleError(ClinvecError):
    """A model bundle is missing, incomplete, or fails its sha256 check."""


class Unauthorized(ClinvecError):
    """A server refused the request's bearer token (missing or wrong); nothing was read or changed."""
