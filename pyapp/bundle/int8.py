"""int8 vectors for bundles: one float32 scale per row, then one signed byte per component.

Why: a quarter of float32's bytes for a pull over a slow link. Symmetric per-row scaling (``max|v| / 127``)
keeps every component within half a step of its value; the index re-normalises on restore, so a restored
vector is close to, not equal to, the original (a float32 bundle stays the exact one). numpy when present
(server, and the page's Pyodide when it loads numpy), the stdlib ``array`` otherwise: the same bytes either way.
"""

from __future__ import annotations

import struct
import sys
from array import array

try:
    import numpy as _np
except ImportError:  # pragma: no cover - Pyodide without numpy
    _np = None  # type: ignore[assignment]


def quantize(vectors: bytes, n: int, dims: int) -> bytes:
    """``n`` rows of float32 (little-endian) -> ``n`` float32 scales then ``n x dims`` int8 bytes."""
    if _np is not None:
        m = _np.frombuffer(vectors, dtype="<f4").reshape(n, dims)
        scales = (_np.abs(m).max(axis=1) / 127.0).astype("<f4") if n else _np.zeros(0, "<f4")
        safe = _np.where(scales > 0, scales, 1.0).astype("<f4")
        q = _np.clip(_np.rint(m / safe[:, None]), -127, 127).astype("i1")
        return scales.tobytes() + q.tobytes()
    values = array("f", vectors)
    if sys.byteorder != "little":
        values.byteswap()
    scales = array("f")
    data = array("b")
    for r in range(n):
        row = values[r * dims : (r + 1) * dims]
        scale = array("f", [max(map(abs, row), default=0.0) / 127.0])[0]  # rounded to float32 like numpy's
        scales.append(scale)
        step = scale if scale > 0 else 1.0
        data.extend(max(-127, min(127, round(v / step))) for v in row)
    if sys.byteorder != "little":
        scales.byteswap()
    return scales.tobytes() + data.tobytes()


def dequantize(payload: bytes, n: int, dims: int) -> bytes:
    """Inverse of ``quantize`` up to rounding: little-endian float32 bytes, ``value = byte x scale``."""
    if _np is not None:
        scales = _np.frombuffer(payload, dtype="<f4", count=n)
        q = _np.frombuffer(payload, dtype="i1", offset=4 * n).reshape(n, dims)
        return (q.astype("<f4") * scales[:, None]).astype("<f4").tobytes()
    scales = struct.unpack(f"<{n}f", payload[: 4 * n])
    data = array("b", payload[4 * n :])
    out = array("f", (data[i] * scales[i // dims] for i in range(n * dims)) if dims else ())
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def int8_size(n: int, dims: int) -> int:
    """Bytes of ``n`` int8 rows of ``dims`` components in a rows frame."""
    return 4 * n + n * dims
