"""The web app's icons, drawn at build time (numpy + zlib PNG): no image files in the repository.

Why generated: an icon is a few shapes; drawing them from signed distances keeps them sharp at every size
and lets the build write exactly the sizes the manifest names. ``any`` icons are a rounded square;
``maskable`` ones fill the square and keep the glyph inside the central safe circle (radius 40 %), so a
launcher may crop them to any shape.

The glyph: a magnifying lens with a clinical cross inside (search over clinical notes).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

BACKGROUND = (0x1D, 0x5F, 0xBF)  # the page's accent colour; white on it has a contrast of 6.3:1
FOREGROUND = (0xFF, 0xFF, 0xFF)
SIZES = (192, 512)
PURPOSES = ("any", "maskable")


def png(rgba: np.ndarray) -> bytes:
    """An 8-bit RGBA PNG of an ``(h, w, 4)`` uint8 array."""
    height, width, _ = rgba.shape
    raw = np.zeros((height, width * 4 + 1), dtype=np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = rgba.reshape(height, width * 4)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def _rounded_box(x: np.ndarray, y: np.ndarray, half: float, radius: float) -> np.ndarray:
    """Signed distance to a square of half-size ``half`` centred at 0 with corner ``radius``."""
    qx = np.abs(x) - half + radius
    qy = np.abs(y) - half + radius
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - radius


def _segment(x: np.ndarray, y: np.ndarray, a: tuple[float, float], b: tuple[float, float], width: float) -> np.ndarray:
    """Signed distance to a capsule (segment ``a``-``b`` of thickness ``width``)."""
    ax, ay = a
    bx, by = b
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    t = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(px - t * dx, py - t * dy) - width / 2


def _glyph(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance to the glyph, in coordinates where it spans about [-1, 1]."""
    cx, cy, r, ring = -0.18, -0.18, 0.62, 0.17
    lens = np.abs(np.hypot(x - cx, y - cy) - r) - ring / 2
    handle = _segment(x, y, (cx + 0.72 * r, cy + 0.72 * r), (0.86, 0.86), 0.26)
    arm, bar = 0.34, 0.11  # the cross: two bars, each 2 * arm long and 2 * bar thick
    dx, dy = np.abs(x - cx), np.abs(y - cy)
    cross = np.minimum(np.maximum(dx - bar, dy - arm), np.maximum(dx - arm, dy - bar))
    return np.minimum(np.minimum(lens, handle), cross)


def icon(size: int, purpose: str) -> np.ndarray:
    """One icon as an ``(size, size, 4)`` uint8 RGBA array (anti-aliased from signed distances)."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    centres = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    x, y = np.meshgrid(centres, centres)
    px = 2 / size  # one pixel in these coordinates
    if purpose == "maskable":
        background = np.ones_like(x)
        scale = 0.52  # glyph within the safe circle (radius 0.8 in these coordinates)
    else:
        background = np.clip(0.5 - _rounded_box(x, y, 0.92, 0.36) / px, 0, 1)
        scale = 0.6
    glyph = np.clip(0.5 - _glyph(x / scale, y / scale) * scale / px, 0, 1) * background
    rgba = np.empty((size, size, 4), dtype=np.float64)
    for channel in range(3):
        rgba[..., channel] = BACKGROUND[channel] * (1 - glyph) + FOREGROUND[channel] * glyph
    rgba[..., 3] = background * 255
    return np.round(rgba).astype(np.uint8)


def write_icons(folder: Path) -> list[Path]:
    """Write ``icon-<size>.png`` and ``icon-maskable-<size>.png`` for every size; only changed files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for purpose in PURPOSES:
        for size in SIZES:
            name = f"icon-{size}.png" if purpose == "any" else f"icon-maskable-{size}.png"
            path = folder / name
            data = png(icon(size, purpose))
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
            written.append(path)
    return written
