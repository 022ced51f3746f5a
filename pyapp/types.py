"""The two value types the API hands back: a stored item and a scored query hit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = Any  # str | int | float | bool | None | list[JSON] | dict[str, JSON]


@dataclass(frozen=True)
class Item:
    """One stored entry. ``vector`` is the L2-normalised float32 vector as a list of floats."""

    id: str
    vector: list[float]
    metadata: dict[str, JSON] = field(default_factory=dict)
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "vector": self.vector, "metadata": self.metadata, "text": self.text}


@dataclass(frozen=True)
class Result:
    """One query hit. ``score`` is the ranking score; the per-leg scores say where it came from.

    ``vector_score`` is the cosine similarity (None when the vector leg did not score it),
    ``keyword_score`` the BM25 score (None when the keyword leg did not match it).
    """

    item: Item
    score: float
    vector_score: float | None = None
    keyword_score: float | None = None

    @property
    def id(self) -> str:
        return self.item.id
