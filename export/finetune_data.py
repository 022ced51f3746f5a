"""The labelled training file of ``python -m export finetune``: JSON lines, one example each, checked up front.

Why checked before torch is imported: a typo in a field name or a stray empty line should cost a second and
one clear line (file, line number, what is wrong), not minutes of loading and a traceback. Labels are kept
as the file gives them (strings or integers, never booleans) and ordered as ``pyapp.LabelModel`` orders them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError

Label = str | int
MAX_LABELS = 1000  # a label per example is a mistake (e.g. --label-field pointing at an id), not a task


@dataclass(frozen=True)
class Examples:
    """Texts and their labels, in file order, plus the sorted label set (class i of the head is ``labels[i]``)."""

    texts: list[str]
    labels: list[Label]
    classes: list[Label]

    def targets(self) -> list[int]:
        """Class index of every example."""
        index = {label: i for i, label in enumerate(self.classes)}
        return [index[label] for label in self.labels]

    def counts(self) -> dict[str, int]:
        """Examples per label (keys as strings, for the manifest)."""
        counts = Counter(self.labels)
        return {str(label): counts[label] for label in self.classes}


def label_order(value: Label) -> tuple[str, str | int]:
    """Sort key of labels: integers before strings, each in natural order (as ``pyapp.LabelModel``)."""
    return (type(value).__name__, value)


def read_examples(path: Path, text_field: str, label_field: str) -> Examples:
    """Every example of ``path``; ``ExportError`` naming the line for the first unusable one."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"--train {path}: cannot read it ({exc.strerror or exc})") from None
    texts: list[str] = []
    labels: list[Label] = []
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                text, label = _example(line, number, path, text_field, label_field)
                texts.append(text)
                labels.append(label)
        except UnicodeDecodeError:
            raise ExportError(f"--train {path} is not UTF-8 text") from None
    classes = sorted(set(labels), key=label_order)
    if len(classes) < 2:
        found = "no examples" if not texts else f"only the label {classes[0]!r}"
        raise ExportError(f"--train {path} has {found}; a classifier needs at least two labels")
    if len(classes) > MAX_LABELS:
        raise ExportError(
            f"--train {path} has {len(classes)} different labels (more than {MAX_LABELS}): "
            f"is --label-field {label_field!r} really the label?"
        )
    return Examples(texts, labels, classes)


def _example(line: str, number: int, path: Path, text_field: str, label_field: str) -> tuple[str, Label]:
    where = f"--train {path}, line {number}"
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ExportError(f"{where}: not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ExportError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if text_field not in record:
        raise ExportError(f"{where}: no field {text_field!r} (--text-field); it has {sorted(record)[:8]}")
    if label_field not in record:
        raise ExportError(f"{where}: no field {label_field!r} (--label-field); it has {sorted(record)[:8]}")
    text, label = record[text_field], record[label_field]
    if not isinstance(text, str) or not text.strip():
        raise ExportError(f"{where}: {text_field!r} must be non-empty text, got {json.dumps(text)[:40]}")
    if isinstance(label, bool) or not isinstance(label, str | int) or label == "":
        raise ExportError(f"{where}: {label_field!r} must be a string or an integer, got {json.dumps(label)[:40]}")
    return text, label
