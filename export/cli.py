"""``python -m export``: argument parsing and one-line errors (no tracebacks for expected failures).

Imports only light modules at the top, so ``--help`` works without the export extra; the toolchain is
checked (``extra.require_extra``) before any work starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .command import quiet_libraries, run_command
from .extra import require_extra
from .models import MODELS_DIR, resolve_spec
from .thresholds import MIN_FP32_COSINE, MIN_INT8_COSINE

WHAT = "python -m export"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a BERT model to an ONNX bundle (mean pooling + L2 norm in the graph; fp32 and int8). "
        "`python -m export finetune --help`: fine-tune a text classifier instead.",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="bio-clinicalbert (default, from the hub at a pinned revision), minilm (packaged, "
        "offline), another hub id, or a local Hugging Face folder",
    )
    parser.add_argument("--revision", default=None, help="hub revision (default: pinned for presets, else main)")
    parser.add_argument("--out", type=Path, default=None, help="bundle folder (default: web/models/<model>/)")
    parser.add_argument("--model-id", default=None, help="model name recorded in the manifest (local folders)")
    parser.add_argument("--with-mlm", action="store_true", help="also export the masked-LM head (model_mlm.onnx)")
    parser.add_argument(
        "--lower-case",
        dest="do_lower_case",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override the tokenizer casing (default: from the preset or the folder)",
    )
    parser.add_argument("--max-seq-length", type=int, default=None, help="override the truncation length")
    parser.add_argument("--min-fp32-cosine", type=float, default=MIN_FP32_COSINE, help=argparse.SUPPRESS)
    parser.add_argument("--min-int8-cosine", type=float, default=MIN_INT8_COSINE, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export; 0 on success, 1 when validation fails, 2 for unusable arguments or an unreachable hub."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["finetune"]:  # the fine-tuning verb (issue 10): its own parser in finetune_cli
        from .finetune_cli import main as finetune_main

        return finetune_main(argv[1:])
    args = build_parser().parse_args(argv)

    def work() -> None:
        require_extra(WHAT)
        spec = resolve_spec(args.model, args.revision, args.model_id)
        out = args.out if args.out is not None else MODELS_DIR / spec.out_name
        quiet_libraries()
        from .pipeline import export_bundle

        export_bundle(
            spec,
            out,
            with_mlm=args.with_mlm,
            do_lower_case=args.do_lower_case,
            max_seq_length=args.max_seq_length,
            min_fp32_cosine=args.min_fp32_cosine,
            min_int8_cosine=args.min_int8_cosine,
        )
        from .listing import update_model_list

        update_model_list(out)

    return run_command(WHAT, work)
