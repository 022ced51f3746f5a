"""Crossing the Python/JS bridge cheaply: bulk data as typed arrays, control data as JSON.

Why: converting element by element is what makes pure-Python vector code orders of magnitude slower; one
``Uint8Array`` copy per call is the whole cost here.
"""

from __future__ import annotations

import importlib
from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException  # type: ignore[import-not-found]

Buffer = bytes | bytearray | memoryview


def js_module(name: str) -> Any:
    """The ES module registered as ``name``.

    PyScript registers ``js_modules.worker`` entries under ``polyscript.js_modules``; a plain Pyodide
    host registers them with ``pyodide.registerJsModule(name, module)``. Either works.
    """
    try:
        from polyscript import js_modules  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        module = getattr(js_modules, name, None)
        if module is not None:
            return module
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"JS module {name!r} is not registered (PyScript js_modules or registerJsModule)") from exc


def to_u8(data: Buffer) -> Any:
    """A fresh JS ``Uint8Array`` holding a copy of ``data`` (offset 0, so float32 views are aligned)."""
    view = memoryview(data).cast("B")
    arr = js.Uint8Array.new(view.nbytes)
    if view.nbytes:
        arr.assign(view)
    return arr


def to_i32(values: Any) -> Any:
    """Row numbers as a JS ``Int32Array`` (one C-level conversion, no per-element bridge calls)."""
    from array import array

    packed = array("i", values)
    arr = js.Int32Array.new(len(packed))
    if len(packed):
        arr.assign(packed)
    return arr


def js_error_name(exc: BaseException) -> str:
    """The JS error's ``name`` (e.g. ``QuotaExceededError``), or '' for a non-JS error."""
    if isinstance(exc, JsException):
        name = getattr(exc, "name", None)
        if isinstance(name, str) and name:
            return name
        text = str(exc)
        return text.split(":", 1)[0].strip() if ":" in text else ""
    return ""
