"""clinvec: an offline-first vector + keyword index for clinical text, one async API in browser and server."""

from __future__ import annotations

from .documents import DocumentIndex
from .errors import (
    ClinvecError,
    CorruptIndex,
    DimensionMismatch,
    DuplicateId,
    IndexClosed,
    IndexExists,
    IndexLocked,
    IndexNotFound,
    InvalidFilter,
    InvalidInput,
    InvalidMetadata,
    InvalidVector,
    ModelBundleError,
    NoEmbedder,
    NoUpdateInProgress,
    ReadOnlyIndex,
    StorageError,
    StorageFull,
    Unauthorized,
    UpdateInProgress,
)
from .index import LocalIndex
from .labels import LabelModel, LabelModelError
from .remote import RemoteIndex
from .types import Item, Result

__version__ = "0.1.0"


def __getattr__(name: str) -> type:
    """``pyapp.PgIndex`` (PostgreSQL + pgvector, server only) is imported on first use, never by the page."""
    if name == "PgIndex":
        from .pg import PgIndex

        return PgIndex
    raise AttributeError(f"module 'pyapp' has no attribute {name!r}")


__all__ = [
    "ClinvecError",
    "CorruptIndex",
    "DimensionMismatch",
    "DocumentIndex",
    "DuplicateId",
    "IndexClosed",
    "IndexExists",
    "IndexLocked",
    "IndexNotFound",
    "InvalidFilter",
    "InvalidInput",
    "InvalidMetadata",
    "InvalidVector",
    "Item",
    "LabelModel",
    "LabelModelError",
    "LocalIndex",
    "ModelBundleError",
    "NoEmbedder",
    "NoUpdateInProgress",
    "PgIndex",
    "ReadOnlyIndex",
    "RemoteIndex",
    "Result",
    "StorageError",
    "StorageFull",
    "Unauthorized",
    "UpdateInProgress",
    "__version__",
]
