"""``python -m export finetune``: its arguments and one-line errors (the verb is dispatched by ``export.cli``).

Like the export itself, it imports only light modules until the arguments and the training file are checked,
so a wrong field name or a missing extra is reported in a second, before torch loads.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .command import quiet_libraries, run_command
from .extra import require_extra
from .finetune_data import read_examples
from .models import resolve_spec

WHAT = "python -m export finetune"


def _positive(kind: type) -> object:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above zero")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=WHAT,
        description="Fine-tune a BERT encoder plus a classification head on labelled texts (JSON lines) and "
        "export it as an ONNX classifier bundle (validated against PyTorch) for pyapp.embed.TextClassifier.",
    )
    parser.add_argument("--train", type=Path, required=True, help="training examples, one JSON object per line")
    parser.add_argument("--text-field", default="text", help="field holding the text (default: text)")
    parser.add_argument("--label-field", default="label", help="field holding the label (default: label)")
    parser.add_argument(
        "--base",
        default="bio-clinicalbert",
        help="bio-clinicalbert (hub, pinned revision), minilm (packaged, offline) or a local Hugging Face folder",
    )
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write (replaces an older bundle)")
    parser.add_argument("--epochs", type=_positive(int), default=2, help="passes over the data (default 2)")
    parser.add_argument("--max-length", type=_positive(int), default=None, help="tokens per text (default: model's)")
    parser.add_argument("--batch-size", type=_positive(int), default=16, help="texts per step (default 16)")
    parser.add_argument("--learning-rate", type=_positive(float), default=5e-5, help="AdamW peak rate (5e-5)")
    parser.add_argument("--threads", type=_positive(int), default=None, help="torch CPU threads (default: all)")
    parser.add_argument(
        "--train-embeddings", action="store_true", help="also train the word-embedding table (frozen by default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffling and head initialisation (default 0)")
    parser.add_argument("--model-id", default=None, help="model name recorded in the manifest")
    parser.add_argument("--keep-checkpoint", type=Path, default=None, help="also save the trained HF folder here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """0 on success, 1 when validation fails, 2 for unusable arguments, data or an unreachable hub."""
    args = build_parser().parse_args(argv)

    def work() -> None:
        examples = read_examples(args.train, args.text_field, args.label_field)
        require_extra(WHAT)
        spec = resolve_spec(args.base, None, None)
        quiet_libraries()
        from .finetune import TrainOptions, finetune_bundle

        options = TrainOptions(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            max_length=args.max_length,
            threads=args.threads,
            train_embeddings=args.train_embeddings,
        )
        finetune_bundle(
            spec,
            examples,
            args.out,
            options,
            train_file=args.train,
            model_id=args.model_id,
            keep_checkpoint=args.keep_checkpoint,
        )

    return run_command(WHAT, work)
