"""How an export command runs its work: expected failures as one line and an exit code, never a traceback.

Shared by ``python -m export`` and ``python -m export finetune``, so both map errors to the same exit codes:
an ``ExportError`` its own (1 failed validation, 2 unusable input, a missing extra or an unreachable hub),
Ctrl-C 130. Light imports only: ``--help`` must work without the export extra.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

from .errors import ExportError
from .extra import missing_extra_error


def run_command(what: str, work: Callable[[], None]) -> int:
    """Run ``work``; an import of the export extra that fails mid-run becomes the one-line ``MissingExtra``."""
    try:
        try:
            work()
        except ModuleNotFoundError as exc:  # a module of the extra that find_spec saw but could not import
            missing = missing_extra_error(exc, what)
            if missing is None:
                raise
            raise missing from None
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


def quiet_libraries() -> None:
    """Silence deprecation chatter from the export stack; real failures still raise."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*registered as constants in the trace.*")  # torch TracerWarning
