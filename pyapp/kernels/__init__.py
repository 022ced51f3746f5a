"""Vector kernels: pick the fastest one this runtime has."""

from __future__ import annotations

from .base import VectorKernel


def default_kernel(dims: int) -> VectorKernel:
    """numpy when it imports (server, or Pyodide with numpy), else the browser's JS typed-array kernel."""
    try:
        from .numpy_kernel import NumpyKernel
    except ImportError:
        from .._platform import is_pyodide

        if not is_pyodide():
            raise
        from ..browser.js_kernel import JsKernel

        return JsKernel(dims)
    return NumpyKernel(dims)


__all__ = ["VectorKernel", "default_kernel"]
