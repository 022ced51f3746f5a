"""Embedders: text to vectors, one implementation per runtime.

``OnnxEmbedder`` is loaded lazily (module ``__getattr__``): it needs onnxruntime and numpy (the ``server``
extra), which Pyodide does not have, and ``import pyapp.embed`` must work there. ``HashingEmbedder`` is pure
Python and always importable. The browser's embedder is ``pyapp.browser.web_embedder.WebEmbedder``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Embedder, Progress
from .hashing import HashingEmbedder

if TYPE_CHECKING:
    from .onnx import OnnxEmbedder

__all__ = ["Embedder", "HashingEmbedder", "OnnxEmbedder", "Progress"]


def __getattr__(name: str) -> Any:
    if name == "OnnxEmbedder":
        from .onnx import OnnxEmbedder, require_runtime

        require_runtime()
        return OnnxEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
