"""Which onnxruntime execution providers a server embedder asks for (CUDA when present, else CPU).

Why a module of its own: the choice is pure logic over onnxruntime's ``get_available_providers()`` list, so
it is tested with the real list here (CPU only) and with a given list for a CUDA machine, without a GPU.
The provider never enters an embedder's ``identity`` (the compatibility key recorded in an index): the same
bundle variant gives the same vectors within float32 rounding on any provider, so an index built on a CPU
opens on a CUDA machine and the reverse. It is reported beside the identity (``OnnxEmbedder.runtime``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import InvalidInput

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# Short names accepted from callers and the command line.
ALIASES = {"cpu": CPU, "cuda": CUDA}
# Comma-separated provider names for embedders built without ``providers=`` (the CLI, ingest, a server).
ENV = "CLINVEC_ORT_PROVIDERS"
# Tried in this order when the caller names none: accelerators first, CPU always last (the safety net).
PREFERRED = (CUDA, CPU)


def available_providers() -> list[str]:
    """onnxruntime's own list for this machine (``onnxruntime-gpu`` adds CUDA; plain ``onnxruntime`` has not)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def requested_from_env() -> list[str] | None:
    """``CLINVEC_ORT_PROVIDERS`` as a list (``"cpu"`` -> ``["cpu"]``), or None when unset or blank."""
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    return names or None


def choose_providers(requested: Sequence[str] | str | None, available: Sequence[str]) -> list[str]:
    """The provider list for ``InferenceSession``: ``requested`` as given (short names ``cpu``/``cuda``
    allowed), each one checked against ``available``; or, when ``None``, CUDA then CPU when CUDA is
    available, CPU alone otherwise. ``InvalidInput`` for an empty, unknown or unavailable request."""
    if requested is None:
        return [p for p in PREFERRED if p in available] or [CPU]
    names = [requested] if isinstance(requested, str) else list(requested)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidInput(f"providers must be a non-empty list of provider names, got {requested!r}")
    chosen = []
    for name in names:
        full = ALIASES.get(name.lower(), name)
        if full not in available:
            raise InvalidInput(
                f"onnxruntime here has no {full} (available: {', '.join(available)}); "
                + ('install the "gpu" extra (onnxruntime-gpu) for CUDA' if full == CUDA else "check the name")
            )
        if full not in chosen:
            chosen.append(full)
    return chosen


__all__ = ["ALIASES", "CPU", "CUDA", "ENV", "available_providers", "choose_providers", "requested_from_env"]
