"""``python -m pyapp classify``: the label of each text from a fine-tuned classifier bundle, one JSON line each.

Kept in its own module (registered by one line in ``cli.build_parser``); the work is
``pyapp.embed.text_classifier.TextClassifier``, the same code the page's "Classify" panel runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .cli import EXIT_ERROR, EXIT_OK, _print_json, _runtime_missing


async def cmd_classify(args: argparse.Namespace) -> int:
    """Print ``{"text", "label", "probability"}`` (plus ``probabilities`` with ``--all``) per text, in order."""
    if (code := _runtime_missing()) is not None:
        return code
    from .embed.text_classifier import TextClassifier

    texts = list(args.text)
    if args.stdin:
        texts += [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        print("clinvec: error: give texts as arguments or, with --stdin, one per line", file=sys.stderr)
        return EXIT_ERROR
    model = TextClassifier(args.model, quantized=args.int8)
    probabilities = await asyncio.to_thread(model.predict_proba, texts)  # onnxruntime releases the GIL
    for text, probs in zip(texts, probabilities, strict=True):
        label, prob = model.best(probs)
        line = {"text": text, "label": label, "probability": prob, "variant": model.variant}
        if args.all:
            line["probabilities"] = dict(zip(map(str, model.labels), probs, strict=True))
        _print_json(line)
    return EXIT_OK


def add_classify_command(sub: argparse._SubParsersAction) -> None:
    """Register ``classify`` on the CLI's subparsers."""
    p = sub.add_parser(
        "classify",
        help="label texts with a fine-tuned classifier bundle (python -m export finetune)",
        description="The most likely label and its probability for each text, one JSON line per text. fp32 by default.",
    )
    p.add_argument("text", nargs="*", help="texts to classify")
    p.add_argument("--model", required=True, help="classifier bundle folder")
    p.add_argument("--stdin", action="store_true", help="also read texts from standard input, one per line")
    p.add_argument("--all", action="store_true", help="also print every label's probability")
    p.add_argument("--int8", action="store_true", help="use the int8 graph (when the bundle ships one)")
    p.set_defaults(run=cmd_classify)
