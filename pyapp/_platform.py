"""One tiny runtime check: are we inside Pyodide (the browser build) or on CPython?"""

from __future__ import annotations

import sys


def is_pyodide() -> bool:
    """True inside Pyodide/PyScript (Emscripten), where `js` and IndexedDB exist and files do not persist."""
    return sys.platform == "emscripten"


def has_numpy() -> bool:
    """True when numpy imports; the browser falls back to the JS kernel when it does not."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True
