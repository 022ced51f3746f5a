"""How closely an export must agree with its reference to be written (see docs/BENCHMARKS.md for measured values).

Kept apart from ``validate`` (numpy, onnxruntime) so ``python -m export --help`` imports nothing heavy.
"""

from __future__ import annotations

MIN_FP32_COSINE = 0.9999  # ONNX fp32 vs PyTorch: the same arithmetic, so only rounding may differ
MIN_INT8_COSINE = 0.98  # per-channel int8 vs fp32: quantisation error, bounded well below any ranking change
# Fill-mask graph, int8 vs fp32: cosine of the logits at the [MASK] positions. A 30k-way softmax is where int8
# hurts most (top-5 order may change among close candidates), so fp32 stays the default for fill-mask.
MIN_MLM_INT8_COSINE = 0.98
# Fine-tuned classifiers (``python -m export finetune``): the fp32 graph must give PyTorch's label for every
# validation text and its probabilities within this; int8 is kept only when it gives fp32's label for at least
# this share of the texts with probabilities within ``MAX_INT8_CLASSIFIER_PROB_DIFF``, else it is left out.
MAX_FP32_CLASSIFIER_PROB_DIFF = 1e-4
MIN_INT8_CLASSIFIER_AGREEMENT = 0.95
MAX_INT8_CLASSIFIER_PROB_DIFF = 0.1
