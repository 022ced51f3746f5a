"""The two value types the API hands back: a stored item and a scored query hit."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

JSON = Any  # str | int | float | bool | None | list[JSON] | dict[str, JSON]


class Item:
    """One stored entry. ``vector`` is the L2-normalised float32 vector as a list of floats.

    Immutable. Items coming out of the index hold their vector as float32 bytes copied at read time and
    build the list on first access: building a list of hundreds of Python floats per hit would make ten
    hits spend more on vectors nobody reads than on the search itself.
    """

    __slots__ = ("id", "_vector", "_raw", "metadata", "text")
    id: str
    metadata: dict[str, JSON]
    text: str | None

    def __init__(
        self, id: str, vector: Sequence[float], metadata: dict[str, JSON] | None = None, text: str | None = None
    ) -> None:
        _set = object.__setattr__
        _set(self, "id", id)
        _set(self, "_vector", vector)
        _set(self, "_raw", None)
        _set(self, "metadata", {} if metadata is None else metadata)
        _set(self, "text", text)

    @classmethod
    def _from_float32(cls, id: str, raw: bytes, metadata: dict[str, JSON], text: str | None) -> Item:
        """An item whose vector stays float32 bytes until ``vector`` is read."""
        item = cls(id, [], metadata, text)
        object.__setattr__(item, "_vector", None)
        object.__setattr__(item, "_raw", raw)
        return item

    @property
    def vector(self) -> list[float]:
        if self._vector is None:
            values = array("f")
            values.frombytes(self._raw)
            object.__setattr__(self, "_vector", values.tolist())
            object.__setattr__(self, "_raw", None)
        return self._vector  # type: ignore[return-value]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Item is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Item is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Item):
            return NotImplemented
        return (self.id, self.metadata, self.text, self.vector) == (other.id, other.metadata, other.text, other.vector)

    __hash__ = None  # type: ignore[assignment]  # holds a list and a dict, like the dataclass it replaces

    def __repr__(self) -> str:
        return f"Item(id={self.id!r}, vector={self.vector!r}, metadata={self.metadata!r}, text={self.text!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy go through the constructor
        return (Item, (self.id, self.vector, self.metadata, self.text))

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
