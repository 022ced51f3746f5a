"""Dynamic int8 weights (per channel): a quarter of the size, and faster in onnxruntime-web's wasm.

Per channel, not per tensor: per-tensor scales cost too much accuracy (measured in docs/BENCHMARKS.md).
"""

from __future__ import annotations

from pathlib import Path


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Write the QInt8 per-channel dynamic quantisation of ``fp32_path`` to ``int8_path``."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime logs a pre-processing hint per call
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.getLogger().setLevel(quiet)
