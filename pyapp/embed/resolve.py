"""Pick an embedder from command-line choices or from what an index recorded (server side)."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import InvalidInput
from .base import Embedder

DEFAULT_BUNDLES = ("web/models/bio-clinicalbert", "web/models/minilm")


def _notice(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"clinvec: {message}", file=sys.stderr)


def find_bundle() -> str | None:
    """The first exported model bundle found in the default places (Bio_ClinicalBERT before MiniLM)."""
    roots = [os.getcwd(), os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    for root in roots:
        for bundle in DEFAULT_BUNDLES:
            path = os.path.join(root, bundle)
            if os.path.exists(os.path.join(path, "manifest.json")):
                return path
    return None


def embedder_from_identity(identity: dict[str, Any] | None, quiet: bool = False) -> Embedder | None:
    """Rebuild the embedder an index recorded, when it can be found here."""
    if not identity:
        return None
    if identity.get("model") == "hashing":
        from .hashing import HashingEmbedder

        return HashingEmbedder.from_identity(identity)
    bundle = identity.get("bundle")
    if bundle and os.path.exists(os.path.join(bundle, "manifest.json")):
        from .onnx import OnnxEmbedder

        return OnnxEmbedder(bundle, quantized=identity.get("variant") == "int8")
    _notice(f"the model that embedded this index ({identity.get('model')}) was not found; pass --model DIR", quiet)
    return None


def resolve_embedder(model: str | None, hashing: int | None, quiet: bool = False) -> Embedder | None:
    """``--model DIR`` -> OnnxEmbedder, ``--hashing DIMS`` -> HashingEmbedder, neither -> None."""
    if model and hashing:
        raise InvalidInput("choose --model or --hashing, not both")
    if hashing:
        from .hashing import HashingEmbedder

        return HashingEmbedder(dims=hashing)
    if model:
        if not os.path.exists(os.path.join(model, "manifest.json")):
            raise InvalidInput(
                f"{model!r} is not a model bundle (no manifest.json); export one with `python -m export`"
            )
        from .onnx import OnnxEmbedder

        return OnnxEmbedder(model)
    return None
