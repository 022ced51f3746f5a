"""The export pipeline: HF folder -> optimum ONNX -> pooled fp32 graph -> int8 -> validation -> bundle.

Everything is written into a hidden sibling folder and renamed into place only after validation passed and
the manifest was written, so a failed or interrupted export never leaves a half-written bundle behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .bundle_folder import Log, check_replaceable, log_to_stderr, staged_bundle
from .manifest import graph_opset, write_manifest
from .models import ModelSpec, fetch
from .thresholds import MIN_FP32_COSINE, MIN_INT8_COSINE
from .tokenizer_settings import VOCAB_FILE, TokenizerSettings, decide
from .validate import SENTENCES

FP32_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"


def export_bundle(
    spec: ModelSpec,
    out_dir: Path,
    *,
    with_mlm: bool = False,
    do_lower_case: bool | None = None,
    max_seq_length: int | None = None,
    min_fp32_cosine: float = MIN_FP32_COSINE,
    min_int8_cosine: float = MIN_INT8_COSINE,
    log: Log = log_to_stderr,
) -> dict[str, Any]:
    """Export ``spec`` into ``out_dir`` (replacing an older bundle there) and return the manifest."""
    out_dir = Path(out_dir).resolve()
    check_replaceable(out_dir)
    started = time.perf_counter()
    folder, resolved = fetch(spec)
    settings = decide(folder, spec, do_lower_case, max_seq_length)
    if with_mlm:
        from .mlm import require_mlm_head

        require_mlm_head(folder, spec.model_id)
    for note in settings.notes:
        log(f"note: {note}")
    log(
        f"exporting {spec.model_id}@{(resolved or '-')[:12]} from {folder} "
        f"(do_lower_case={settings.do_lower_case}, max_seq_length={settings.max_seq_length})"
    )

    with staged_bundle(out_dir) as staging:
        with tempfile.TemporaryDirectory(prefix="clinvec-export-") as work:
            body = _build(folder, staging, Path(work), settings, with_mlm, min_fp32_cosine, min_int8_cosine, log)
        manifest = write_manifest(
            staging,
            {
                "model": spec.model_id,
                "revision": resolved or spec.revision,
                "source": {"kind": spec.kind, "location": spec.location, "requested_revision": spec.revision},
                **body,
            },
        )
    log(f"wrote {out_dir} in {time.perf_counter() - started:.1f} s")
    return manifest


def _build(
    folder: Path,
    bundle: Path,
    work: Path,
    settings: TokenizerSettings,
    with_mlm: bool,
    min_fp32: float,
    min_int8: float,
    log: Log,
) -> dict[str, Any]:
    import onnx
    from optimum.exporters.onnx import main_export

    from . import validate
    from .pooling import EMBEDDING_OUTPUT, append_mean_pooling
    from .quantize import quantize_int8

    tick = time.perf_counter()
    main_export(str(folder), work / "raw", task="feature-extraction", library_name="transformers", do_validation=False)
    graph = append_mean_pooling(onnx.load(str(work / "raw" / FP32_FILE)))
    opset = graph_opset(graph)
    dims = int(graph.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
    onnx.save(graph, str(bundle / FP32_FILE))
    del graph
    shutil.copyfile(folder / VOCAB_FILE, bundle / VOCAB_FILE)
    log(f"fp32 graph with pooling: {time.perf_counter() - tick:.1f} s")

    tick = time.perf_counter()
    quantize_int8(bundle / FP32_FILE, bundle / INT8_FILE)
    log(f"int8 quantisation: {time.perf_counter() - tick:.1f} s")

    tick = time.perf_counter()
    tokenizer = validate.reference_tokenizer(bundle / VOCAB_FILE, settings)
    batch = validate.tokenize(tokenizer, SENTENCES, settings.max_seq_length)
    ref = validate.torch_embeddings(folder, batch)
    fp32 = validate.onnx_run(bundle / FP32_FILE, batch.feeds())
    int8 = validate.onnx_run(bundle / INT8_FILE, batch.feeds())
    fp32_stats, int8_stats = validate.compare(fp32, ref), validate.compare(int8, fp32)
    log(
        f"validation on {len(SENTENCES)} sentences: fp32 vs torch min cos {fp32_stats.min_cosine:.7f}, "
        f"int8 vs fp32 min cos {int8_stats.min_cosine:.5f} (mean {int8_stats.mean_cosine:.5f}) "
        f"[{time.perf_counter() - tick:.1f} s]"
    )
    validate.check("fp32 vs PyTorch", fp32_stats, min_fp32)
    validate.check("int8 vs fp32", int8_stats, min_int8)
    parity = validate.runtime_tokenizer_parity(bundle, settings, batch)
    if parity is False:
        log("warning: pyapp.tokenizer gives other ids than the reference BERT tokenizer on the validation set")

    ids = settings.special_token_ids()
    body: dict[str, Any] = {
        "architecture": "bert",
        "dims": dims,
        "max_seq_length": settings.max_seq_length,
        "max_position_embeddings": settings.max_position_embeddings,
        "pooling": "mean",
        "normalized": True,
        **settings.manifest_fields(),
        "output": EMBEDDING_OUTPUT,
        "opset": opset,
        "variants": {
            "fp32": {"file": FP32_FILE},
            "int8": {"file": INT8_FILE, "quantization": "onnxruntime quantize_dynamic QInt8 per_channel"},
        },
        "validation": {
            "sentences": len(SENTENCES),
            "truncated": batch.truncated,
            "max_tokens": max(batch.lengths),
            "fp32_vs_torch": fp32_stats.as_dict(),
            "int8_vs_fp32": int8_stats.as_dict(),
            "int8_vs_torch": validate.compare(int8, ref).as_dict(),
            "thresholds": {"fp32_vs_torch_min_cosine": min_fp32, "int8_vs_fp32_min_cosine": min_int8},
            "runtime_tokenizer_matches_reference": parity,
        },
    }
    if with_mlm:
        from .mlm import export_mlm

        tick = time.perf_counter()
        body["mlm"] = export_mlm(folder, bundle, work, tokenizer, settings.max_seq_length, ids["mask"])
        log(
            f"masked-LM head: fp32 top-5 agreement {body['mlm']['validation']['top5_agreement']:.2f}, "
            f"int8 vs fp32 min cos {body['mlm']['validation']['int8_logits_vs_fp32']['min_cosine']:.5f} "
            f"[{time.perf_counter() - tick:.1f} s]"
        )
    return body
