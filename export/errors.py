"""Errors the export tool raises on purpose, so the CLI can print one plain line instead of a traceback."""

from __future__ import annotations


class ExportError(Exception):
    """A deliberate export failure (bad argument, unusable model folder); exit code 2."""

    exit_code = 2


class HubUnreachable(ExportError):
    """The Hugging Face hub could not be reached and the model is not in the local cache."""


class ValidationFailed(ExportError):
    """The exported graph disagrees with PyTorch (or int8 with fp32) beyond the thresholds; exit code 1."""

    exit_code = 1
