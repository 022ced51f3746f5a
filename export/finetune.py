"""``python -m export finetune``: train a BERT encoder plus a classification head on labelled texts, then
export it as an ONNX classifier bundle (fp32, and per-channel int8 when it validates) that declares its labels.

Why a plain PyTorch loop rather than ``transformers.Trainer``: the Trainer needs ``accelerate``, one more
dependency for a loop of a dozen lines; AdamW with linear warm-up and decay is what the Trainer would run.
The bundle follows the embedder bundles' conventions (manifest, sha256 per file, the pure-Python tokenizer's
settings, staging folder renamed into place only after validation) with ``task: text-classification``, so an
embedder never opens it by mistake. Its graph outputs ``logits``; the softmax is the runtime's (pure Python,
shared by the server and the page), so both builds turn the same float32 logits into the same probabilities.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyapp.embed.bundle import TASK_CLASSIFY, sha256_file

from .bundle_folder import Log, check_replaceable, log_to_stderr, staged_bundle
from .errors import ExportError, HubUnreachable, ValidationFailed
from .finetune_data import Examples
from .manifest import graph_opset, write_manifest
from .models import ModelSpec, fetch
from .thresholds import (
    MAX_FP32_CLASSIFIER_PROB_DIFF,
    MAX_INT8_CLASSIFIER_PROB_DIFF,
    MIN_INT8_CLASSIFIER_AGREEMENT,
)
from .tokenizer_settings import VOCAB_FILE, TokenizerSettings, decide

FP32_FILE = "classifier.onnx"
INT8_FILE = "classifier_int8.onnx"
LOGITS = "logits"
VALIDATION_TRAIN_TEXTS = 64  # training texts added to the fixed clinical sentences when validating the export


@dataclass(frozen=True)
class TrainOptions:
    """How to train: the defaults suit a small labelled set on a CPU (a few thousand short texts)."""

    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 5e-5
    warmup: float = 0.1  # share of the steps with a rising learning rate
    seed: int = 0
    max_length: int | None = None  # None: the base model's max_seq_length
    threads: int | None = None  # torch's CPU threads (None: torch's default, one per core)
    train_embeddings: bool = False  # also update the 30k x hidden word-embedding table


def finetune_bundle(
    spec: ModelSpec,
    examples: Examples,
    out_dir: Path,
    options: TrainOptions,
    *,
    train_file: Path | None = None,
    model_id: str | None = None,
    keep_checkpoint: Path | None = None,
    log: Log = log_to_stderr,
) -> dict[str, Any]:
    """Fine-tune ``spec`` on ``examples`` and write the classifier bundle to ``out_dir``; return its manifest."""
    out_dir = Path(out_dir).resolve()
    check_replaceable(out_dir)
    if keep_checkpoint is not None and Path(keep_checkpoint).exists() and any(Path(keep_checkpoint).iterdir()):
        raise ExportError(f"--keep-checkpoint {keep_checkpoint} exists and is not empty")
    started = time.perf_counter()
    try:
        folder, resolved = fetch(spec)
    except HubUnreachable:
        raise HubUnreachable(
            f"cannot reach the Hugging Face hub to fetch {spec.location}@{(spec.revision or 'main')[:12]} (and it "
            "is not cached); fine-tune the packaged model offline with --base minilm, or pass --base "
            "/path/to/a/local/hf-folder"
        ) from None
    settings = decide(folder, spec, None, options.max_length)
    for note in settings.notes:
        log(f"note: {note}")
    with staged_bundle(out_dir) as staging:
        with tempfile.TemporaryDirectory(prefix="clinvec-finetune-") as work:
            checkpoint = Path(work) / "hf"
            training = train(folder, settings, examples, options, checkpoint, log)
            body = export_classifier(checkpoint, staging, Path(work), settings, examples, options.seed, log)
            if keep_checkpoint is not None:
                shutil.copytree(checkpoint, keep_checkpoint, dirs_exist_ok=True)
        name = model_id or f"{spec.model_id}+finetuned"
        manifest = write_manifest(
            staging,
            {
                "task": TASK_CLASSIFY,
                "model": name,
                "revision": f"sha256:{sha256_file(staging / FP32_FILE)[:16]}",
                "base": {
                    "model": spec.model_id,
                    "revision": resolved or spec.revision,
                    "source": {"kind": spec.kind, "location": spec.location},
                },
                "training": {
                    **training,
                    "file": str(train_file) if train_file else None,
                    "file_sha256": sha256_file(train_file) if train_file else None,
                },
                **body,
            },
        )
    log(f"wrote {out_dir} in {time.perf_counter() - started:.1f} s")
    return manifest


def train(
    folder: Path, settings: TokenizerSettings, examples: Examples, options: TrainOptions, out: Path, log: Log
) -> dict[str, Any]:
    """Train ``folder``'s encoder plus a new classification head; save the result as an HF folder at ``out``."""
    import torch
    from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

    from .validate import reference_tokenizer

    torch.manual_seed(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    classes = examples.classes
    tokenizer = reference_tokenizer(folder / VOCAB_FILE, settings)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder),
            num_labels=len(classes),
            id2label={i: str(label) for i, label in enumerate(classes)},
            label2id={str(label): i for i, label in enumerate(classes)},
            dtype=torch.float32,
        )
    except (OSError, ValueError) as exc:
        raise ExportError(f"{folder} cannot be loaded as a BERT classifier: {str(exc).splitlines()[0]}") from None
    model.to(device).train()
    if not options.train_embeddings:
        # Why frozen by default: a few thousand texts touch a small share of the ~30k rows, AdamW would still
        # update (and decay) every row each step, and on a CPU that table is most of the optimizer's time.
        model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    ids = tokenizer(examples.texts, truncation=True, max_length=settings.max_seq_length)["input_ids"]
    targets = examples.targets()
    steps_per_epoch = -(-len(ids) // options.batch_size)
    total = steps_per_epoch * options.epochs
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=options.learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(options.warmup * total), total)
    order = torch.Generator().manual_seed(options.seed)
    log(
        f"fine-tuning on {len(ids)} texts, {len(classes)} labels: {options.epochs} epoch(s) of {steps_per_epoch} "
        f"steps (batch {options.batch_size}, max {settings.max_seq_length} tokens) on {device}"
    )
    tick = last = time.perf_counter()
    step, losses, correct = 0, [], 0
    for epoch in range(1, options.epochs + 1):
        correct = 0
        shuffled = _bucketed(torch.randperm(len(ids), generator=order).tolist(), ids, options.batch_size)
        for start in range(0, len(ids), options.batch_size):
            rows = shuffled[start : start + options.batch_size]
            batch = _pad([ids[i] for i in rows], settings, device)
            labels = torch.tensor([targets[i] for i in rows], device=device)
            result = model(**batch, labels=labels)
            result.loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            losses.append(float(result.loss))
            correct += int((result.logits.argmax(-1) == labels).sum())
            now = time.perf_counter()
            if now - last >= 10 or step == total:
                last = now
                recent = losses[-steps_per_epoch:]
                left = (now - tick) / step * (total - step)
                log(
                    f"  epoch {epoch}/{options.epochs}, step {step}/{total}: loss {sum(recent) / len(recent):.4f} "
                    f"[{now - tick:.0f} s, ~{left:.0f} s left]"
                )
    model.eval().to("cpu")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    last_epoch = losses[-steps_per_epoch:]
    return {
        "examples": len(ids),
        "label_counts": examples.counts(),
        "epochs": options.epochs,
        "steps": total,
        "batch_size": options.batch_size,
        "learning_rate": options.learning_rate,
        "warmup": options.warmup,
        "seed": options.seed,
        "word_embeddings_trained": options.train_embeddings,
        "device": device,
        "threads": torch.get_num_threads(),
        "seconds": round(time.perf_counter() - tick, 1),
        "last_epoch_loss": round(sum(last_epoch) / len(last_epoch), 6),
        "last_epoch_train_accuracy": round(correct / len(ids), 6),
    }


def _bucketed(order: list[int], ids: list[list[int]], batch_size: int) -> list[int]:
    """``order`` with each run of 8 batches sorted by length: batches of similar length pad less (random
    batches of short texts padded to their longest cost about twice the work), yet stay shuffled."""
    span = batch_size * 8
    out: list[int] = []
    for start in range(0, len(order), span):
        out += sorted(order[start : start + span], key=lambda i: len(ids[i]))
    batches = [out[i : i + batch_size] for i in range(0, len(out), batch_size)]
    random.Random(order[0] if order else 0).shuffle(batches)
    return [i for batch in batches for i in batch]


def _pad(rows: list[list[int]], settings: TokenizerSettings, device: str) -> dict[str, Any]:
    """One right-padded batch (the model's three int64 inputs)."""
    import torch

    width = max(len(r) for r in rows)
    pad = settings.special_token_ids()["pad"]
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "token_type_ids": torch.zeros_like(input_ids).to(device),
    }


def export_classifier(
    checkpoint: Path,
    bundle: Path,
    work: Path,
    settings: TokenizerSettings,
    examples: Examples,
    seed: int,
    log: Log,
) -> dict[str, Any]:
    """optimum export of ``checkpoint`` (text-classification), int8, validation; the manifest's body."""
    import onnx
    from optimum.exporters.onnx import main_export

    from . import validate
    from .quantize import quantize_int8

    tick = time.perf_counter()
    main_export(str(checkpoint), work / "raw", task="text-classification", library_name="transformers")
    shutil.move(str(work / "raw" / "model.onnx"), bundle / FP32_FILE)
    shutil.copyfile(checkpoint / VOCAB_FILE, bundle / VOCAB_FILE)
    graph = onnx.load(str(bundle / FP32_FILE), load_external_data=False)
    if LOGITS not in [o.name for o in graph.graph.output]:
        raise ExportError(f"the exported graph has no {LOGITS!r} output: {[o.name for o in graph.graph.output]}")
    opset = graph_opset(graph)
    del graph
    quantize_int8(bundle / FP32_FILE, bundle / INT8_FILE)
    log(f"ONNX export and int8 quantisation: {time.perf_counter() - tick:.1f} s")

    tick = time.perf_counter()
    texts = list(validate.SENTENCES)
    sample = random.Random(seed).sample(examples.texts, min(VALIDATION_TRAIN_TEXTS, len(examples.texts)))
    texts += sample
    tokenizer = validate.reference_tokenizer(bundle / VOCAB_FILE, settings)
    batch = validate.tokenize(tokenizer, texts, settings.max_seq_length)
    ref = _torch_probs(checkpoint, batch.rows)
    fp32 = _softmax(validate.onnx_run(bundle / FP32_FILE, batch.feeds(), LOGITS))
    int8 = _softmax(validate.onnx_run(bundle / INT8_FILE, batch.feeds(), LOGITS))
    fp32_stats, int8_stats = _agreement(fp32, ref), _agreement(int8, fp32)
    log(
        f"validation on {len(texts)} texts: fp32 vs torch labels {fp32_stats['label_agreement']:.3f}, max prob diff "
        f"{fp32_stats['max_prob_diff']:.2e}; int8 vs fp32 labels {int8_stats['label_agreement']:.3f}, max prob diff "
        f"{int8_stats['max_prob_diff']:.3f} [{time.perf_counter() - tick:.1f} s]"
    )
    if fp32_stats["label_agreement"] < 1.0 or not fp32_stats["max_prob_diff"] <= MAX_FP32_CLASSIFIER_PROB_DIFF:
        raise ValidationFailed(
            f"validation failed: the fp32 classifier disagrees with PyTorch (labels {fp32_stats['label_agreement']:.3f}"
            f", max probability difference {fp32_stats['max_prob_diff']:.3g} > {MAX_FP32_CLASSIFIER_PROB_DIFF}); "
            "nothing was written"
        )
    variants: dict[str, Any] = {"fp32": {"file": FP32_FILE}}
    int8_ok = (
        int8_stats["label_agreement"] >= MIN_INT8_CLASSIFIER_AGREEMENT
        and int8_stats["max_prob_diff"] <= MAX_INT8_CLASSIFIER_PROB_DIFF
    )
    if int8_ok:
        variants["int8"] = {"file": INT8_FILE, "quantization": "onnxruntime quantize_dynamic QInt8 per_channel"}
    else:
        (bundle / INT8_FILE).unlink()
        log("note: the int8 graph did not validate against fp32; the bundle ships fp32 only")
    parity = _runtime_parity(bundle / VOCAB_FILE, settings, texts, batch.rows)
    if parity is False:
        log("warning: pyapp.tokenizer gives other ids than the reference BERT tokenizer on the validation texts")
    return {
        "architecture": "bert",
        "dims": int(ref.shape[1]),
        "labels": examples.classes,
        "max_seq_length": settings.max_seq_length,
        "max_position_embeddings": settings.max_position_embeddings,
        **settings.manifest_fields(),
        "output": LOGITS,
        "probabilities": "softmax",
        "opset": opset,
        "default_variant": "fp32",
        "variants": variants,
        "validation": {
            "texts": len(texts),
            "training_texts": len(sample),
            "truncated": batch.truncated,
            "fp32_vs_torch": fp32_stats,
            "int8_vs_fp32": int8_stats,
            "int8_vs_torch": _agreement(int8, ref),
            "int8_kept": int8_ok,
            "thresholds": {
                "fp32_label_agreement": 1.0,
                "fp32_max_prob_diff": MAX_FP32_CLASSIFIER_PROB_DIFF,
                "int8_min_label_agreement": MIN_INT8_CLASSIFIER_AGREEMENT,
                "int8_max_prob_diff": MAX_INT8_CLASSIFIER_PROB_DIFF,
            },
            "runtime_tokenizer_matches_reference": parity,
        },
    }


def _torch_probs(checkpoint: Path, rows: list[list[int]]) -> Any:
    """PyTorch's class probabilities, each text run alone (no padding): the reference for the graph."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row], dtype=torch.long)
            out.append(
                model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
                .logits[0]
                .numpy()
            )
    return _softmax(np.stack(out))


def _softmax(logits: Any) -> Any:
    import numpy as np

    x = logits.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _agreement(a: Any, b: Any) -> dict[str, float]:
    """Share of rows with the same most likely class, and the largest probability difference."""
    import numpy as np

    return {
        "label_agreement": float(np.mean(a.argmax(1) == b.argmax(1))),
        "max_prob_diff": float(np.abs(a - b).max()),
    }


def _runtime_parity(vocab: Path, settings: TokenizerSettings, texts: list[str], rows: list[list[int]]) -> bool | None:
    """Whether pyapp.tokenizer (what the runtimes use) gives the reference ids for every validation text."""
    try:
        from pyapp.embed.base import token_rows
        from pyapp.tokenizer import WordPieceTokenizer
    except ImportError:
        return None
    tok = WordPieceTokenizer(str(vocab), do_lower_case=settings.do_lower_case, max_length=settings.max_seq_length)
    return [ids for ids, _ in token_rows(tok, texts, settings.max_seq_length)] == rows
