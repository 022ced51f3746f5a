"""Label models on embeddings: few-shot classification of notes from the vectors the index already holds."""

from __future__ import annotations

from .model import FORMAT, FORMAT_VERSION, LabelModel, LabelModelError

__all__ = ["FORMAT", "FORMAT_VERSION", "LabelModel", "LabelModelError"]
