"""The embedder interface: text in, L2-normalised float32 vectors out.

One implementation per environment: ``onnx.OnnxEmbedder`` (server, onnxruntime),
``pyapp.browser.web_embedder.WebEmbedder`` (browser, onnxruntime-web), and ``hashing.HashingEmbedder``
(the dependency-free twin for fast tests and the offline demo). Async because onnxruntime-web is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

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


def bundle_identity(manifest: dict[str, Any], variant: str, sha256: str, bundle: str) -> dict[str, Any]:
    """The identity of a model-bundle embedder, the same on the server and in the browser (``bundle`` is where
    it was loaded from: a folder or a URL, and is not compared)."""
    return {
        "model": manifest["model"],
        "revision": manifest.get("revision"),
        "variant": variant,
        "sha256": sha256,
        "bundle": bundle,
    }
