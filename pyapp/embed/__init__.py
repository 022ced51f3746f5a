"""Embedders: text to vectors, one implementation per runtime.

``OnnxEmbedder``, ``MaskedLM`` (fill-mask) and ``TextClassifier`` (fine-tuned classifier bundles) are loaded
lazily (module ``__getattr__``): they need onnxruntime and numpy (the ``server`` extra), which Pyodide does not
have, and ``import pyapp.embed`` must work there.
``HashingEmbedder`` is pure Python and always importable. The browser's twins are
``pyapp.browser.web_embedder.WebEmbedder``, ``pyapp.browser.web_masked_lm.WebMaskedLM`` and
``pyapp.browser.web_text_classifier.WebTextClassifier``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Embedder, Progress
from .hashing import HashingEmbedder

if TYPE_CHECKING:
    from .masked_lm import MaskedLM
    from .onnx import OnnxEmbedder
    from .text_classifier import TextClassifier

__all__ = ["Embedder", "HashingEmbedder", "MaskedLM", "OnnxEmbedder", "Progress", "TextClassifier"]


def __getattr__(name: str) -> Any:
    if name == "OnnxEmbedder":
        from .onnx import OnnxEmbedder, require_runtime

        require_runtime()
        return OnnxEmbedder
    if name == "MaskedLM":  # fill-mask on onnxruntime; the browser's twin is pyapp.browser.web_masked_lm
        from .masked_lm import MaskedLM
        from .onnx import require_runtime

        require_runtime()
        return MaskedLM
    if name == "TextClassifier":  # classifier bundles on onnxruntime; the browser's twin is web_text_classifier
        from .onnx import require_runtime
        from .text_classifier import TextClassifier

        require_runtime()
        return TextClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
