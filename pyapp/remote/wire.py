"""The JSON wire format shared by the HTTP server (``pyapp.server``) and ``RemoteIndex``: pure stdlib, so the
page's worker (Pyodide) speaks it too.

Why vectors travel as base64 float32 and not as JSON number lists: the index stores float32, so the bytes are
exact, and a result page of 10 hits x 768 dims is 7,680 floats that the stdlib's ``json`` would spend most of a
query's time writing and reading. Little-endian, as on every platform clinvec runs on (x86, ARM, WebAssembly).
"""

from __future__ import annotations

import base64
import json
import sys
from array import array
from typing import Any

from .. import errors
from ..types import Item, Result

if sys.byteorder != "little":  # pragma: no cover - no supported platform is big-endian
    raise ImportError("the clinvec wire format needs a little-endian platform")

try:  # orjson (the server extra) writes JSON ~10x faster; the stdlib writes what orjson refuses
    import orjson as _orjson
except ImportError:  # pragma: no cover - the page and minimal installs
    _orjson = None


def dumps(value: Any) -> bytes:
    """Compact JSON bytes for a request. NaN/Infinity are written as the stdlib writes them (``NaN``), so that the
    server reads them back and refuses them exactly as ``LocalIndex`` does (orjson would silently write null)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


def dumps_fast(value: Any) -> bytes:
    """Compact JSON bytes for a response (which never holds NaN): orjson when installed, else the stdlib."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value)
        except TypeError:  # integers beyond 64 bits, lone surrogates: the stdlib writes them
            pass
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def loads(body: bytes | str) -> Any:
    """The stdlib reader: it keeps integers of any size and NaN tokens (orjson turns big integers into floats)."""
    return json.loads(body)


def f32_bytes(item: Item) -> bytes:
    """An item's vector as float32 bytes, without building a list of Python floats when the item has its bytes."""
    raw = item._raw  # noqa: SLF001 - Item keeps the bytes it was read with precisely so they can be passed on
    return raw if raw is not None else array("f", item.vector).tobytes()


def f32_vector(data: Any) -> Any:
    """A ``vector_f32`` field (base64 float32) as a float32 numpy array when numpy is there, else a list."""
    from ..errors import InvalidVector

    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) % 4:
        raise InvalidVector("vector_f32 must be base64 of little-endian float32 values")
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - the server always has numpy
        values = array("f")
        values.frombytes(raw)
        return values.tolist()
    return np.frombuffer(raw, dtype="<f4")


def f32_field(vector: Any) -> str | None:
    """base64 float32 for a vector that already is float32 (``array('f')``, a float32 numpy array), else None:
    lists go as JSON so that the server checks their values exactly as ``LocalIndex`` does."""
    if isinstance(vector, array) and vector.typecode == "f":
        return base64.b64encode(vector.tobytes()).decode("ascii")
    dtype = getattr(vector, "dtype", None)
    if dtype is not None and str(dtype) == "float32" and getattr(vector, "ndim", 0) == 1:
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return None


def query_args(body: dict[str, Any]) -> dict[str, Any]:
    """``LocalIndex.query``'s arguments from a query body (``vector_f32`` decoded into ``vector``)."""
    from ..errors import InvalidInput

    if "vector_f32" in body:
        body = dict(body)
        packed = body.pop("vector_f32")
        if packed is not None:
            if body.get("vector") is not None:
                raise InvalidInput("give vector or vector_f32, not both")
            body["vector"] = f32_vector(packed)
    return body


def item_to_wire(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "vector": base64.b64encode(f32_bytes(item)).decode("ascii"),
        "metadata": item.metadata,
        "text": item.text,
    }


def item_from_wire(data: dict[str, Any]) -> Item:
    return Item._from_float32(data["id"], base64.b64decode(data["vector"]), data["metadata"], data["text"])  # noqa: SLF001


def result_to_wire(result: Result) -> dict[str, Any]:
    return {
        "item": item_to_wire(result.item),
        "score": result.score,
        "vector_score": result.vector_score,
        "keyword_score": result.keyword_score,
    }


def result_from_wire(data: dict[str, Any]) -> Result:
    return Result(item_from_wire(data["item"]), data["score"], data["vector_score"], data["keyword_score"])


def error_class(name: Any) -> type[errors.ClinvecError]:
    """The exception class a server's ``{"error": name}`` names; ``ClinvecError`` for names this client lacks."""
    found = getattr(errors, name, None) if isinstance(name, str) else None
    if isinstance(found, type) and issubclass(found, errors.ClinvecError):
        return found
    return errors.ClinvecError
