"""``python -m export.throughput BUNDLE``: texts/s of a bundle's fp32 and int8 graphs vs PyTorch on one text set.

Why: the int8 graph is a quarter of the size, but whether it is faster depends on the CPU; this measures it
on the machine at hand (figures in docs/BENCHMARKS.md). All three paths sort by length, batch alike and use the
same thread count.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ExportError
from .extra import require_extra
from .validate import SENTENCES


def sample_texts(n: int = 200, seed: int = 0) -> list[str]:
    """``n`` clinical snippets of one to four validation sentences each (seeded, so runs compare)."""
    rng = random.Random(seed)
    pool = [s for s in SENTENCES if len(s) < 200]
    return [" ".join(rng.sample(pool, rng.randint(1, 4))) for _ in range(n)]


def best_of(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` runs of each (after a warm-up), interleaved so background load hits all alike."""
    best = {}
    for name, fn in fns.items():
        fn()
        best[name] = float("inf")
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def torch_embedder(bundle: Path, folder: Path, batch_size: int) -> Callable[[Sequence[str]], object]:
    """Plain PyTorch mean pooling with the Rust tokenizer, batched like the ONNX embedder."""
    import torch
    from transformers import AutoModel, BertTokenizerFast

    from .manifest import read_manifest

    manifest = read_manifest(bundle)
    tok = BertTokenizerFast(vocab_file=str(bundle / "vocab.txt"), do_lower_case=manifest["do_lower_case"])
    model = AutoModel.from_pretrained(str(folder)).eval()

    def embed(texts: Sequence[str]) -> object:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [None] * len(texts)
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                enc = tok(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=manifest["max_seq_length"],
                    return_tensors="pt",
                )
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=1)
                for row, i in zip(pooled, idx, strict=True):
                    out[i] = row
        return out

    return embed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.throughput", description=__doc__)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--hf-folder", type=Path, default=None, help="HF folder for the PyTorch run (default: source)")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        require_extra("python -m export.throughput")
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code

    import torch

    from pyapp.embed.onnx import OnnxEmbedder

    from .manifest import read_manifest

    torch.set_num_threads(args.threads)
    texts = sample_texts(args.texts)
    folder = args.hf_folder or Path(read_manifest(args.bundle)["source"]["location"])
    runs = {
        "onnxruntime fp32": OnnxEmbedder(
            args.bundle, quantized=False, batch_size=args.batch_size, threads=args.threads
        ).embed,
        "onnxruntime int8": OnnxEmbedder(
            args.bundle, quantized=True, batch_size=args.batch_size, threads=args.threads
        ).embed,
        "pytorch fp32": torch_embedder(args.bundle, folder, args.batch_size),
    }
    print(f"{len(texts)} texts, batch {args.batch_size}, {args.threads} threads, best of {args.repeats}")
    timings = best_of({name: (lambda fn=fn: fn(texts)) for name, fn in runs.items()}, args.repeats)
    for name, seconds in timings.items():
        print(f"{name:18s} {len(texts) / seconds:8.1f} texts/s  ({seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
