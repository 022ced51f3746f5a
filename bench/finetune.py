"""Fine-tuned MiniLM classifier, measured on the label models' set: ICD-10-CM chapter from a code's description.

Why the same set and split as ``bench/labels.py``: the fine-tuned encoder is compared with the majority class
and with ``pyapp.LabelModel`` on frozen MiniLM embeddings trained on exactly the same examples (that script's
rows at the same count per class). Split (fixed, seeded, from ``bench/labels.py``): per chapter, the first 50
shuffled codes are the test set (21 x 50 = 1,050), the next ``--per-class`` the training set.

Runs ``python -m export finetune --base minilm`` (the real CLI, packaged MiniLM, CPU here) into a temporary
folder, then classifies the test set with ``pyapp.embed.TextClassifier`` (fp32 and, when shipped, int8), so the
figures are those of the exported bundle, not of the PyTorch model. Prints one JSON line and a table row.

    python bench/finetune.py [--per-class 100] [--epochs 2] [--learning-rate 1e-4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from labels import SEED, TEST_PER_CLASS, labelled_codes, scores  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100, help="training examples per chapter (<= 350)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64, help="ICD-10-CM descriptions are far shorter")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 beats 2 on the shared 2-core VM)")
    parser.add_argument("--keep", type=Path, default=None, help="write the bundle here instead of a temp folder")
    parser.add_argument("--reuse", action="store_true", help="measure the bundle already at --keep (no training)")
    args = parser.parse_args()

    data = labelled_codes()
    train = [(desc, ch) for ch, codes in data.items() for _, desc in codes[TEST_PER_CLASS:][: args.per_class]]
    test = [(desc, ch) for ch, codes in data.items() for _, desc in codes[:TEST_PER_CLASS]]
    with tempfile.TemporaryDirectory(prefix="clinvec-bench-ft-") as work:
        train_file = Path(work) / "train.jsonl"
        train_file.write_text("".join(json.dumps({"text": t, "label": c}) + "\n" for t, c in train), encoding="utf-8")
        out = args.keep or Path(work) / "bundle"
        command = [
            sys.executable,
            "-m",
            "export",
            "finetune",
            "--train",
            str(train_file),
            "--base",
            "minilm",
            "--out",
            str(out),
            "--epochs",
            str(args.epochs),
            "--learning-rate",
            str(args.learning_rate),
            "--batch-size",
            str(args.batch_size),
            "--max-length",
            str(args.max_length),
            "--threads",
            str(args.threads),
        ]
        load_before = os.getloadavg()
        started = time.perf_counter()
        if not (args.reuse and args.keep):
            subprocess.run(command, cwd=ROOT, check=True)
        finetune_s = time.perf_counter() - started
        load_after = os.getloadavg()

        from pyapp.embed import TextClassifier

        manifest = json.loads((out / "manifest.json").read_text())
        texts, truth = [t for t, _ in test], [c for _, c in test]
        results = {}
        for variant in ("fp32", "int8"):
            if variant not in manifest["variants"]:
                continue
            classifier = TextClassifier(out, quantized=variant == "int8")
            started = time.perf_counter()
            predicted = [label for label, _ in classifier.predict(texts)]
            results[variant] = {**scores(truth, predicted), "predict_s": round(time.perf_counter() - started, 1)}
    majority = sorted({c for _, c in train}, key=int)[0]  # balanced classes: the first label, as bench/labels.py
    line = {
        "set": "icd10cm-chapter",
        "classes": len(data),
        "seed": SEED,
        "test": len(test),
        "train_per_class": args.per_class,
        "train": len(train),
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "threads": args.threads,
        "majority": scores(truth, [majority] * len(truth)),
        "finetuned": results,
        "finetune_s": round(finetune_s, 1),
        "train_s": manifest["training"]["seconds"],
        "last_epoch_loss": manifest["training"]["last_epoch_loss"],
        "validation": manifest["validation"]["int8_vs_fp32"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "command": " ".join(["python", "bench/finetune.py", *sys.argv[1:]]),
    }
    print(json.dumps(line))
    fp32 = results["fp32"]
    print(
        f"| {args.per_class} | {args.epochs} | {fp32['accuracy']:.3f} | {fp32['macro_f1']:.3f} | "
        f"{line['train_s']:.0f} s | {finetune_s:.0f} s |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
