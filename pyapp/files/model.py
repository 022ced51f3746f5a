"""What a file reader gives back, and the one error type every reader raises.

Why one shape for every format: the server's ``ingest`` and the page's import both write a file as one
commit of documents (text to chunk and embed) plus items (already embedded, imported as they are); the
reader decides which is which, so both callers treat every format alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput

BOM = b"\xef\xbb\xbf"


class FileError(InvalidInput):
    """A file that cannot be read; ``file`` names it and ``line`` (JSONL, CSV, text) says where, when known.

    Raised before anything of the file is written: a file goes in whole or not at all."""

    def __init__(self, message: str, file: str, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line

    @classmethod
    def at(cls, file: str, detail: str, line: int | None = None) -> FileError:
        """``"notes.csv line 4: detail"`` (or ``"notes.csv: detail"`` without a line)."""
        where = file if line is None else f"{file} line {line}"
        return cls(f"{where}: {detail}", file, line)

    @classmethod
    def wrap(cls, exc: InvalidInput, file: str) -> FileError:
        """A transfer reader's error, whose message starts with ``file`` and usually its line, as a FileError."""
        message = str(exc)
        match = _LINE.match(message[len(file) :]) if message.startswith(file) else None
        return cls(message, file, int(match.group(1)) if match else None)


_LINE = re.compile(r" (?:near )?lines? (\d+)")


@dataclass(frozen=True)
class Document:
    """Text to chunk and embed under ``uri`` (the file name, or a record's id); ``line`` where it starts."""

    uri: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class FileContent:
    """Everything one file holds: ``documents`` to embed and ``items`` that carry their own vector."""

    name: str
    kind: str
    documents: list[Document] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.documents) + len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (for the page's worker)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "documents": [
                {"uri": d.uri, "text": d.text, "metadata": d.metadata, "line": d.line} for d in self.documents
            ],
            "items": self.items,
        }
