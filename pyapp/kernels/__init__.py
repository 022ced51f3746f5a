"""Vector kernels: pick the fastest one this runtime has."""

from __future__ import annotations

import os

from .base import VectorKernel

KERNEL_ENV = "CLINVEC_KERNEL"  # "numpy" forces the plain float32 kernel (benchmarks, comparisons)


def default_kernel(dims: int) -> VectorKernel:
    """The int8-pruned numpy kernel when simsimd is installed (the ``server`` extra), else plain numpy, else
    (Pyodide without numpy) the browser's JS typed-array kernel. All give the same answers."""
    try:
        from .numpy_kernel import NumpyKernel
    except ImportError:
        from .._platform import is_pyodide

        if not is_pyodide():
            raise
        from ..browser.js_kernel import JsKernel

        return JsKernel(dims)
    if os.environ.get(KERNEL_ENV, "").lower() != "numpy":
        try:
            from .int8_kernel import Int8Kernel
        except ImportError:
            pass
        else:
            return Int8Kernel(dims)
    return NumpyKernel(dims)


__all__ = ["KERNEL_ENV", "VectorKernel", "default_kernel"]
