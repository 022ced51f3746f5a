"""How closely an export must agree with its reference to be written (see docs/BENCHMARKS.md for measured values).

Kept apart from ``validate`` (numpy, onnxruntime) so ``python -m export --help`` imports nothing heavy.
"""

from __future__ import annotations

MIN_FP32_COSINE = 0.9999  # ONNX fp32 vs PyTorch: the same arithmetic, so only rounding may differ
MIN_INT8_COSINE = 0.98  # per-channel int8 vs fp32: quantisation error, bounded well below any ranking change
# Fill-mask graph, int8 vs fp32: cosine of the logits at the [MASK] positions. A 30k-way softmax is where int8
# hurts most (top-5 order may change among close candidates), so fp32 stays the default for fill-mask.
MIN_MLM_INT8_COSINE = 0.98
