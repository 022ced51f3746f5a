"""Optional masked-LM export (``--with-mlm``): ``model_mlm.onnx`` with ``logits`` for fill-in-the-[MASK].

Refuses checkpoints without trained MLM weights (sentence-transformers models such as MiniLM): transformers
would silently initialise a random head and the predictions would be noise.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError
from .thresholds import MIN_FP32_COSINE
from .validate import MASKED_SENTENCES, check, compare, mlm_top_k, onnx_run, tokenize

MLM_FILE = "model_mlm.onnx"
MLM_OUTPUT = "logits"
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
    """Export the fill-mask graph into ``bundle_dir`` and return its validation figures."""
    import torch
    from optimum.exporters.onnx import main_export
    from transformers import AutoModelForMaskedLM

    model, info = AutoModelForMaskedLM.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    untrained = [key for key in info.get("missing_keys", []) if key.startswith("cls.") and "bias" not in key]
    if untrained:
        raise ExportError(f"{folder.name} has no trained masked-LM head (missing {untrained[0]}); drop --with-mlm")
    model.eval()

    out = work_dir / "mlm"
    main_export(str(folder), out, task="fill-mask", library_name="transformers", do_validation=False)
    shutil.move(str(out / "model.onnx"), bundle_dir / MLM_FILE)

    batch = tokenize(tokenizer, MASKED_SENTENCES, max_length)
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in batch.feeds().items()}).logits.numpy()
    got = onnx_run(bundle_dir / MLM_FILE, batch.feeds(), MLM_OUTPUT)
    masked = batch.input_ids == mask_id
    stats = compare(got[masked], ref[masked])
    check("MLM logits fp32 vs PyTorch", stats, MIN_FP32_COSINE)
    ref_top = mlm_top_k(ref, batch.input_ids, mask_id)
    got_top = mlm_top_k(got, batch.input_ids, mask_id)
    return {
        "file": MLM_FILE,
        "output": MLM_OUTPUT,
        "validation": {
            "masks": int(masked.sum()),
            "logits_vs_torch": stats.as_dict(),
            "top5_agreement": float(np.mean([a == b for a, b in zip(ref_top, got_top, strict=True)])),
        },
    }
