"""Optional masked-LM export (``--with-mlm``): ``model_mlm.onnx`` (fp32) and ``model_mlm_int8.onnx`` (per-channel
int8, as the encoder) with ``logits`` for fill-in-the-[MASK]; file names come from ``pyapp.embed.bundle``.

Refuses checkpoints without trained MLM weights (sentence-transformers models such as MiniLM): transformers
would silently initialise a random head and the predictions would be noise.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pyapp.embed.bundle import MLM_OUTPUT, MLM_VARIANT_FILES

from .errors import ExportError, ValidationFailed
from .thresholds import MIN_FP32_COSINE, MIN_MLM_INT8_COSINE
from .validate import MASKED_SENTENCES, check, compare, mlm_top_k, onnx_run, tokenize

MLM_FILE = MLM_VARIANT_FILES["fp32"]
MLM_INT8_FILE = MLM_VARIANT_FILES["int8"]
_HEAD_KEY = "predictions.transform.dense.weight"  # present in BertForMaskedLM / BertForPreTraining checkpoints


def require_mlm_head(folder: Path, name: str) -> None:
    """Fail before any export work when the checkpoint carries no masked-LM head (reads tensor names only)."""
    if not any(key.endswith(_HEAD_KEY) for key in _weight_names(folder)):
        raise ExportError(f"{name} has no trained masked-LM head (no cls.{_HEAD_KEY}); drop --with-mlm")


def _weight_names(folder: Path) -> list[str]:
    if (folder / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), framework="np") as handle:
            return list(handle.keys())
    import torch

    path = str(folder / "pytorch_model.bin")
    try:
        return list(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
    except RuntimeError:  # legacy (non-zip) pickles cannot be memory-mapped
        return list(torch.load(path, map_location="cpu", weights_only=True))


def export_mlm(
    folder: Path, bundle_dir: Path, work_dir: Path, tokenizer: Any, max_length: int, mask_id: int
) -> dict[str, Any]:
    """Export the fill-mask graph (fp32 + per-channel int8) into ``bundle_dir``; return its manifest entry.

    fp32 must give PyTorch's top-5 tokens at every [MASK] of the validation sentences; int8 must keep the
    masked logits within ``MIN_MLM_INT8_COSINE`` of fp32 (its top-k agreement is recorded, not required).
    """
    import torch
    from optimum.exporters.onnx import main_export
    from transformers import AutoModelForMaskedLM

    from .quantize import quantize_int8

    model, info = AutoModelForMaskedLM.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    untrained = [key for key in info.get("missing_keys", []) if key.startswith("cls.") and "bias" not in key]
    if untrained:
        raise ExportError(f"{folder.name} has no trained masked-LM head (missing {untrained[0]}); drop --with-mlm")
    model.eval()

    out = work_dir / "mlm"
    main_export(str(folder), out, task="fill-mask", library_name="transformers", do_validation=False)
    shutil.move(str(out / "model.onnx"), bundle_dir / MLM_FILE)
    quantize_int8(bundle_dir / MLM_FILE, bundle_dir / MLM_INT8_FILE)

    batch = tokenize(tokenizer, MASKED_SENTENCES, max_length)
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in batch.feeds().items()}).logits.numpy()
    fp32 = onnx_run(bundle_dir / MLM_FILE, batch.feeds(), MLM_OUTPUT)
    int8 = onnx_run(bundle_dir / MLM_INT8_FILE, batch.feeds(), MLM_OUTPUT)
    masked = batch.input_ids == mask_id
    fp32_stats, int8_stats = compare(fp32[masked], ref[masked]), compare(int8[masked], fp32[masked])
    check("MLM logits fp32 vs PyTorch", fp32_stats, MIN_FP32_COSINE)
    check("MLM logits int8 vs fp32", int8_stats, MIN_MLM_INT8_COSINE)
    ref_top = mlm_top_k(ref, batch.input_ids, mask_id)
    fp32_top = mlm_top_k(fp32, batch.input_ids, mask_id)
    int8_top = mlm_top_k(int8, batch.input_ids, mask_id)
    if fp32_top != ref_top:
        raise ValidationFailed(
            f"validation failed: the fp32 fill-mask graph's top-5 tokens differ from PyTorch's "
            f"({fp32_top} vs {ref_top}); nothing was written"
        )
    return {
        "file": MLM_FILE,  # the fp32 graph, as bundles before the int8 variant recorded it
        "output": MLM_OUTPUT,
        "default_variant": "fp32",
        "variants": {
            "fp32": {"file": MLM_FILE},
            "int8": {"file": MLM_INT8_FILE, "quantization": "onnxruntime quantize_dynamic QInt8 per_channel"},
        },
        "validation": {
            "sentences": len(MASKED_SENTENCES),
            "masks": int(masked.sum()),
            "logits_vs_torch": fp32_stats.as_dict(),
            "top5_agreement": float(np.mean([a == b for a, b in zip(ref_top, fp32_top, strict=True)])),
            "int8_logits_vs_fp32": int8_stats.as_dict(),
            "int8_top1_agreement": float(np.mean([a[0] == b[0] for a, b in zip(fp32_top, int8_top, strict=True)])),
            "int8_top5_overlap": float(
                np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(fp32_top, int8_top, strict=True)])
            ),
            "int8_max_probability_diff": _max_probability_diff(int8[masked], fp32[masked]),
            "thresholds": {
                "fp32_vs_torch_min_cosine": MIN_FP32_COSINE,
                "fp32_top5_equal_to_torch": True,
                "int8_vs_fp32_min_cosine": MIN_MLM_INT8_COSINE,
            },
        },
    }


def _max_probability_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference of the softmax probabilities of two sets of logit rows."""

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return float(np.abs(softmax(a) - softmax(b)).max())
