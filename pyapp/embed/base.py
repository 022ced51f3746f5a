"""The embedder interface: text in, L2-normalised float32 vectors out.

One implementation per environment: ``onnx.OnnxEmbedder`` (server, onnxruntime),
``pyapp.browser.web_embedder.WebEmbedder`` (browser, onnxruntime-web), and ``hashing.HashingEmbedder``
(the dependency-free twin for fast tests and the offline demo). Async because onnxruntime-web is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import InvalidInput

Progress = Callable[[int, int], None]  # (done, total)


class Embedder(ABC):
    """Turns texts into vectors the index can store."""

    dims: int

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What produced the vectors (model id, revision, variant); recorded in the index manifest so
        queries are embedded by the same model and variant as the stored items."""

    @abstractmethod
    async def embed_raw(self, texts: Sequence[str], progress: Progress | None = None) -> bytes:
        """Embed ``texts``; returns ``len(texts) * dims`` little-endian float32 values, L2-normalised."""


# ---------------------------------------------------------------------- shared by the model-bundle embedders
TokenRow = tuple[list[int], list[int]]  # token ids, token type ids


def check_texts(texts: Any, call: str) -> None:
    """``InvalidInput`` unless ``texts`` is a sequence of strings (a lone string is a common slip)."""
    if isinstance(texts, str):
        raise InvalidInput(f"{call} takes a sequence of texts, not one string")
    for text in texts:
        if not isinstance(text, str):
            raise InvalidInput(f"texts must be strings, got {type(text).__name__}")


def token_rows(tokenizer: Any, texts: Sequence[str], max_seq_length: int) -> list[TokenRow]:
    """Token and type ids of each text, cut to ``max_seq_length`` keeping the final [SEP] even if the
    tokenizer did not: the server and the browser feed their sessions exactly the same rows."""
    rows = []
    for text in texts:
        enc = tokenizer.encode(text)
        ids, types = list(enc.input_ids), list(enc.token_type_ids)
        if len(ids) > max_seq_length:
            ids = ids[: max_seq_length - 1] + ids[-1:]
            types = types[:max_seq_length]
        rows.append((ids, types))
    return rows


def length_batches(rows: Sequence[TokenRow], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar token count (shortest first), so padding stays small."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
