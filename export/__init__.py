"""Model export: a Hugging Face BERT folder -> ONNX bundle (pooled fp32 + int8, vocab, manifest).

Build-time tool, not part of the runtime: it needs torch, transformers and optimum-onnx; the bundles it
writes are read by ``pyapp.embed.onnx`` (server) and the browser embedder with onnxruntime alone.
Run ``python -m export --help``.
"""

from __future__ import annotations

from .errors import ExportError, HubUnreachable, ValidationFailed

__all__ = ["ExportError", "HubUnreachable", "ValidationFailed"]
