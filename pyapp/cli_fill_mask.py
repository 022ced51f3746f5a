"""``python -m pyapp fill-mask``: the most likely words for each ``[MASK]``, one JSON line per mask.

Kept in its own module (registered by one line in ``cli.build_parser``) so the fill-mask command stays
self-contained; the work is ``pyapp.embed.masked_lm.MaskedLM``, the same code the page's panel runs.
"""

from __future__ import annotations

import argparse

from .cli import EXIT_OK, _print_json, _runtime_missing


async def cmd_fill_mask(args: argparse.Namespace) -> int:
    """Print ``{"mask": n, "variant", "predictions": [{"token", "probability"}...]}`` per mask, left to right."""
    if (code := _runtime_missing()) is not None:
        return code
    from .embed.masked_lm import MaskedLM

    model = MaskedLM(args.model, quantized=args.int8)
    masks = await model.predict_async(args.text, top_k=args.top_k)
    for number, row in enumerate(masks, start=1):
        predictions = [{"token": token, "probability": prob} for token, prob in row]
        _print_json({"mask": number, "variant": model.variant, "predictions": predictions})
    return EXIT_OK


def add_fill_mask_command(sub: argparse._SubParsersAction) -> None:
    """Register ``fill-mask`` on the CLI's subparsers."""
    p = sub.add_parser(
        "fill-mask",
        help="suggest words for each [MASK] in a sentence (needs a bundle exported with --with-mlm)",
        description="Top tokens and probabilities for each [MASK], one JSON line per mask. fp32 by default.",
    )
    p.add_argument("text", help='a sentence with one or more [MASK], e.g. "Started on [MASK] for hypertension."')
    p.add_argument("--model", required=True, help="model bundle folder with a masked-LM graph")
    p.add_argument("--top-k", type=int, default=5, help="suggestions per mask (1-100, default 5)")
    p.add_argument("--int8", action="store_true", help="use the int8 graph (smaller, less exact) instead of fp32")
    p.set_defaults(run=cmd_fill_mask)
