"""The public surface: what users import from ``pyapp`` and ``pyapp.embed``, with and without optional deps.

Why subprocesses: whether ``import pyapp`` works without numpy or onnxruntime (Pyodide without numpy) can only
be seen in a fresh interpreter where an import hook makes them unimportable.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pyapp
import pyapp.errors

REPO = Path(__file__).resolve().parent.parent

_WITHOUT = """
import json, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, Blocker())
out = {}
import pyapp
import pyapp.embed
from pyapp import DocumentIndex, Item, LocalIndex, Result
from pyapp.embed import Embedder, HashingEmbedder
out["hashing_dims"] = len(HashingEmbedder(dims=8).embed_one("chest pain"))
try:
    pyapp.embed.OnnxEmbedder
    out["onnx"] = "importable"
except ImportError as exc:
    out["onnx"] = [type(exc).__name__, str(exc)]
try:
    from pyapp.embed import OnnxEmbedder
    out["from_import"] = "importable"
except ImportError as exc:
    out["from_import"] = [type(exc).__name__, str(exc)]
out["numpy_loaded"] = "numpy" in sys.modules
print(json.dumps(out))
"""


def _run_without(*modules: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT, ",".join(modules)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_top_level_names_users_need() -> None:
    from pyapp import DocumentIndex, Item, LocalIndex, Result
    from pyapp.documents import DocumentIndex as documents_class
    from pyapp.index import LocalIndex as index_class

    assert DocumentIndex is documents_class and LocalIndex is index_class
    assert {"DocumentIndex", "Item", "LocalIndex", "Result"} <= set(pyapp.__all__)
    assert Item.__module__ == Result.__module__ == "pyapp.types"


def test_every_error_class_is_exported_from_pyapp() -> None:
    errors = {
        name
        for name, value in vars(pyapp.errors).items()
        if inspect.isclass(value) and issubclass(value, pyapp.errors.ClinvecError)
    }
    assert {"ClinvecError", "StorageError", "StorageFull", "ModelBundleError", "InvalidMetadata"} <= errors
    for name in errors:
        assert getattr(pyapp, name) is getattr(pyapp.errors, name), name
        assert name in pyapp.__all__, name
    for name in pyapp.__all__:
        assert hasattr(pyapp, name), name


def test_embedders_from_pyapp_embed() -> None:
    import pyapp.embed
    from pyapp.embed import Embedder, HashingEmbedder, OnnxEmbedder
    from pyapp.embed.onnx import OnnxEmbedder as onnx_class

    assert OnnxEmbedder is onnx_class and issubclass(OnnxEmbedder, Embedder)
    assert issubclass(HashingEmbedder, Embedder)
    assert {"Embedder", "HashingEmbedder", "OnnxEmbedder"} <= set(pyapp.embed.__all__) <= set(dir(pyapp.embed))


def test_import_works_without_numpy_and_onnxruntime() -> None:
    out = _run_without("numpy", "onnxruntime")
    assert out["hashing_dims"] == 8  # the hashing embedder is pure Python
    assert out["numpy_loaded"] is False
    for key in ("onnx", "from_import"):
        kind, message = out[key]
        assert kind == "ImportError"
        assert "numpy and onnxruntime" in message and "clinvec[server]" in message and "WebEmbedder" in message


def test_onnx_embedder_names_only_what_is_missing() -> None:
    out = _run_without("onnxruntime")
    kind, message = out["onnx"]
    assert kind == "ImportError" and "needs onnxruntime (the server extra)" in message


def test_onnx_embedder_is_importable_with_its_runtime() -> None:
    out = _run_without("a_module_nobody_has")
    assert out["onnx"] == out["from_import"] == "importable"
