"""Whether the export toolchain (the ``export`` extra) is installed, and the one error that says how to get it.

Why: the runtime (``pyapp``) needs none of torch, transformers, optimum or onnx, so a plain install lacks them;
``python -m export`` must then explain the fix in one line (exit 2) instead of a ``ModuleNotFoundError``.
Checked with ``importlib.util.find_spec``, which locates a module without importing it (importing torch is slow).
"""

from __future__ import annotations

import importlib.util

from .errors import ExportError

# Top-level modules the export pipeline imports (optimum-onnx[onnxruntime] brings them all).
EXTRA_MODULES = ("torch", "transformers", "optimum", "onnx", "onnxruntime")
INSTALL_HINT = 'pip install -e ".[export]" in a clinvec checkout (or pip install "clinvec[export]")'


class MissingExtra(ExportError):
    """The export extra is not installed; exit code 2."""


def missing_modules(names: tuple[str, ...] = EXTRA_MODULES) -> list[str]:
    """The modules of ``names`` that cannot be imported here (absent, or blocked by an import hook)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_extra(what: str, names: tuple[str, ...] = EXTRA_MODULES) -> None:
    """``MissingExtra`` naming the absent modules and the install command unless all of ``names`` are here."""
    missing = missing_modules(names)
    if missing:
        names_missing = ", ".join(missing)
        raise MissingExtra(f"{what} needs the export extra (missing: {names_missing}); install it with {INSTALL_HINT}")


def missing_extra_error(exc: ModuleNotFoundError, what: str) -> MissingExtra | None:
    """The ``MissingExtra`` for an import that failed mid-run on a module of the extra, else None."""
    root = (exc.name or "").split(".")[0]
    if root in EXTRA_MODULES or root == "onnxscript":
        return MissingExtra(f"{what} needs the export extra (missing: {root}); install it with {INSTALL_HINT}")
    return None
