"""One tiny runtime check: are we inside Pyodide (the browser build) or on CPython?"""

from __future__ import annotations

import sys


def is_pyodide() -> bool:
    """True inside Pyodide/PyScript (Emscripten), where `js` and IndexedDB exist and files do not persist."""
    return sys.platform == "emscripten"
