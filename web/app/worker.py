"""The page's Python entry point, run by PyScript inside a Web Worker.

Why a worker: importing pyapp, reopening an index or embedding text takes hundreds of
milliseconds to seconds; on the main thread that would freeze the page. The main thread calls the
functions in ``__export__`` through PyScript's ``sync`` channel and gets JSON strings back.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import sys
import traceback
from typing import Any

if os.getcwd() not in sys.path:  # pyapp.zip is unpacked into the working directory by the config
    sys.path.insert(0, os.getcwd())

_BOOTED: dict[str, Any] = {}


def _build_info() -> dict[str, Any]:
    try:
        with open("clinvec_build.json") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


async def _load_numpy(build: dict[str, Any]) -> bool:
    """Load numpy only when the build vendored its wheel; otherwise the JS kernel runs."""
    if not build.get("numpy"):
        return False
    try:
        import pyodide_js  # type: ignore[import-not-found]

        await pyodide_js.loadPackage("numpy")
        import numpy  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - fall back to the JS kernel, but say why
        print(f"clinvec: numpy did not load ({exc}); using the JS kernel", file=sys.stderr)
        return False
    return True


async def boot() -> str:
    """Import pyapp and report the runtime (JSON): kernel, versions, or the error that stopped it."""
    if _BOOTED:
        return json.dumps(_BOOTED)
    try:
        import pyodide  # type: ignore[import-not-found]

        build = _build_info()
        await _load_numpy(build)
        import pyapp
        from pyapp.kernels import default_kernel

        kernel = type(default_kernel(4)).__name__
        _BOOTED.update({
            "kernel": "numpy" if kernel == "NumpyKernel" else "js",
            "kernel_class": kernel,
            "python": sys.version.split()[0],
            "pyodide": pyodide.__version__,
            "pyapp": pyapp.__version__,
            "build": {k: build.get(k) for k in ("versions", "numpy", "wheels")},
        })
    except Exception as exc:  # noqa: BLE001 - the page shows this message
        traceback.print_exc()
        return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
    return json.dumps(_BOOTED)


async def run_python(code: str) -> str:
    """Test hook: run ``code`` (top-level ``await`` allowed); returns JSON of its ``result`` variable.

    The page exposes this only when opened with ``?test`` (tests/browser/ drive the worker with it).
    """
    namespace = {"__name__": "__clinvec_test__"}
    try:
        compiled = compile(code, "<test>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        outcome = eval(compiled, namespace)  # noqa: S307 - test hook, code comes from the test suite
        if inspect.iscoroutine(outcome):
            await outcome
        return json.dumps({"ok": True, "result": namespace.get("result")})
    except BaseException as exc:  # noqa: BLE001 - report everything to the test
        return json.dumps({
            "ok": False,
            "error": type(exc).__name__,
            "module": type(exc).__module__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        })


__export__ = ["boot", "run_python"]
