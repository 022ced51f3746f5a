"""``python -m pyapp label fit|predict``: few-shot label models on the notes of an index (``pyapp.labels``).

``fit`` learns a metadata field (e.g. ``kind``) from the notes that have it and writes the model as JSON;
``predict`` suggests it for notes (default: the ones without it), or for a new ``--text``. Exit codes as the
rest of the CLI: 0 done, 1 a clinvec error (nothing changed), 2 bad usage, 3 the index does not exist.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .cli import EXIT_OK, _add_model_options, _print_json, opened
from .labels import LabelModel
from .labels.model import DEFAULT_L2, DEFAULT_MAX_ITER


async def cmd_label_fit(args: argparse.Namespace) -> int:
    async with opened(args, read_only=True) as index:
        model = await LabelModel.fit_index(index, field=args.field, l2=args.l2, max_iter=args.max_iter)
    model.save(args.out)
    info = model.info
    if not info["converged"] and not args.quiet:
        print(f"clinvec: notice: stopped after {info['iterations']} iterations before converging", file=sys.stderr)
    _print_json({"out": args.out, "field": args.field, "labels": model.labels, **info})
    return EXIT_OK


async def cmd_label_predict(args: argparse.Namespace) -> int:
    model = LabelModel.load(args.model_file)
    args.needs_embedder = args.text is not None
    async with opened(args, read_only=True) as index:
        if args.text is not None:
            from .labels.notes import text_vector

            model.check_embedder(index.manifest.get("embedder"), index.dims)
            ((label, prob),) = model.predict([await text_vector(index, args.text)])
            rows: list[dict[str, Any]] = [{"uri": None, "label": label, "probability": prob, "given": None}]
        else:
            rows = await model.predict_index(index, uris=args.uri or None)
            if not args.all and not args.uri:
                rows = [row for row in rows if row["given"] is None]
    for row in rows:
        _print_json(row)
    return EXIT_OK


def add_label_commands(sub: Any) -> None:
    """The ``label`` command group, hooked into ``pyapp.cli.build_parser``."""
    group = sub.add_parser("label", help="few-shot label models on note embeddings (fit, predict)")
    label_sub = group.add_subparsers(dest="label_command", required=True)

    p = label_sub.add_parser("fit", help="learn a metadata field from the notes that have it; write JSON")
    p.add_argument("index")
    p.add_argument("--field", default="kind", help="metadata field holding the label (default: kind)")
    p.add_argument("--out", required=True, help="where to write the model (JSON)")
    p.add_argument("--l2", type=float, default=DEFAULT_L2, help=f"weight penalty (default {DEFAULT_L2})")
    p.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER)
    p.set_defaults(run=cmd_label_fit)

    p = label_sub.add_parser("predict", help="suggest labels: notes without one (default), --all, --uri, --text")
    p.add_argument("index")
    p.add_argument("model_file", metavar="MODEL", help="a file written by `label fit`")
    p.add_argument("--uri", action="append", help="only this note (repeatable)")
    p.add_argument("--all", action="store_true", help="every note, labelled ones too (to check the model)")
    p.add_argument("--text", help="a new note's text (embedded with the index's model)")
    _add_model_options(p)
    p.set_defaults(run=cmd_label_predict)
