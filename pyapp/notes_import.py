"""The notes page's file import: files go in one at a time, each staged, then committed whole or not at all.

Why two steps per file: a CSV file needs the user's column mapping before anything is written, and the page
must not send a big file's bytes twice; so ``stage`` takes the bytes once (and answers the CSV preview), and
``commit`` reads and writes the staged file with the mapping the user confirmed. Files are read by
``pyapp.files`` (the server's ``ingest`` rules: one ``.txt``/``.md``/PDF = one document named by the file, JSONL
and CSV records as ``python -m pyapp add --file`` reads them) and each file is one commit, so a bad line or a tab
closed mid-import leaves the whole file or none of it. The page drives the loop, so Cancel simply stops asking
for the next file.

Documents are staged in groups of ``GROUP`` (one embedding pass per group: a JSONL file of short notes is
embedded in batches, not one note per model run) inside the file's single batch, with progress in notes.
Only ``ClinvecError`` subclasses escape; file problems are ``FileError`` naming the file and, when known, the line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ClinvecError, InvalidInput
from .files import SUFFIXES, CsvMapping, CsvPreview, FileContent, FileError, kind_of, preview_csv, read_file
from .notes import MAX_TEXT
from .staging import check_id

if TYPE_CHECKING:
    from .notes import NotesService

GROUP = 32  # documents per embedding pass: large enough to batch short notes, small enough for smooth progress
MAX_FILE_BYTES = 256 * 1024 * 1024  # what one Pyodide worker can read and hold with its chunks at once
MAX_NOTE_CHARS = MAX_TEXT  # a longer note takes minutes to embed in the page; the add form refuses it too

# progress(notes done (fractional while a group embeds), notes in the file)
ImportProgress = Callable[[float, int], None]


@dataclass
class Staged:
    """One file waiting for ``commit``: its bytes (or a PDF's page texts) and, for a CSV, its preview."""

    name: str
    kind: str
    data: bytes
    pages: list[str] | None = None
    preview: CsvPreview | None = None


def check_name(name: Any) -> str:
    """A file name usable as a note id, of a kind clinvec reads; ``FileError`` otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("a file name must be a non-empty string")
    try:
        check_id(name)
    except InvalidInput as exc:
        raise FileError.at(name[:200], f"the file name cannot be a note id ({exc})") from None
    if kind_of(name) is None:
        raise FileError.at(name, f"not a file clinvec reads (expected one of {', '.join(SUFFIXES)})")
    return name


class NotesImport:
    """The import half of the notes app, over an open ``NotesService`` (one staged file at a time)."""

    def __init__(self, service: NotesService, group: int = GROUP) -> None:
        self.service = service
        self.group = group
        self.staged: Staged | None = None

    def stage(self, data: Any, name: Any, pages: Sequence[str] | None = None) -> dict[str, Any]:
        """Keep one file for ``commit`` (any file staged before is dropped) and say what it is:
        ``{"name", "kind", "bytes", "preview"}``; ``preview`` (CSV only) is ``CsvPreview.to_dict()``, errors in
        its first rows are raised now. A PDF comes as ``pages`` (page texts extracted by pdfjs) or as bytes."""
        self.staged = None
        name = check_name(name)
        kind = kind_of(name) or ""
        if self.service.index.read_only:
            raise FileError.at(name, "this tab is read-only: import in the tab that writes")
        if pages is not None:
            if kind != "pdf":
                raise FileError.at(name, "page texts are only for a PDF")
            if isinstance(pages, str) or not all(isinstance(p, str) for p in pages):
                raise FileError.at(name, "page texts must be a list of strings")
            data = b""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise FileError.at(name, f"expected the file's bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_FILE_BYTES:
            raise FileError.at(name, f"the file is {len(data):,} bytes; at most {MAX_FILE_BYTES:,} go in one import")
        preview = preview_csv(data, name) if kind == "csv" else None
        self.staged = Staged(name, kind, data, list(pages) if pages is not None else None, preview)
        return {
            "name": name,
            "kind": kind,
            "bytes": len(data),
            "preview": preview.to_dict() if preview is not None else None,
        }

    def drop(self) -> None:
        """Forget the staged file (the user skipped it)."""
        self.staged = None

    def read(self, staged: Staged, mapping: Any = None) -> FileContent:
        """The staged file's documents and items, checked (CSV through ``mapping``, else the suggested one)."""
        csv_mapping = None
        if staged.kind == "csv" and mapping is not None:
            try:
                csv_mapping = CsvMapping.from_dict(mapping)
            except InvalidInput as exc:
                raise FileError.at(staged.name, str(exc)) from None
        content = read_file(
            staged.data, staged.name, dims=self.service.index.dims, csv_mapping=csv_mapping, pdf_pages=staged.pages
        )
        for doc in content.documents:
            if len(doc.text) > MAX_NOTE_CHARS:
                raise FileError.at(
                    staged.name,
                    f"note {doc.uri!r} holds {len(doc.text):,} characters; at most {MAX_NOTE_CHARS:,} per note",
                    doc.line,
                )
            try:
                check_id(doc.uri)
            except InvalidInput as exc:
                raise FileError.at(staged.name, str(exc), doc.line) from None
        return content

    async def commit(self, mapping: Any = None, progress: ImportProgress | None = None) -> dict[str, Any]:
        """Read the staged file and write it in one commit (it is dropped either way). Returns ``{"name",
        "kind", "notes" (records in the file), "documents" (embedded), "unchanged" (same text: skipped),
        "items" (records with their own vector), "ms", "note_count", "items_total"}``."""
        staged, self.staged = self.staged, None
        if staged is None:
            raise InvalidInput("no file is staged: stage one first")
        started = time.perf_counter()
        content = self.read(staged, mapping)
        written = await self.write(content, progress)
        counts = await self.service.counts()
        return {
            "name": content.name,
            "kind": content.kind,
            "notes": len(content),
            **written,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "note_count": counts["note_count"],
            "items_total": counts["items"],
        }

    async def write(self, content: FileContent, progress: ImportProgress | None = None) -> dict[str, int]:
        """One commit: documents staged ``group`` at a time (unchanged ones skipped), items upserted."""
        docs = self.service.docs
        total = len(content)
        done = 0
        documents = unchanged = 0
        try:
            async with docs.index.batch():
                for start in range(0, len(content.documents), self.group):
                    part = content.documents[start : start + self.group]

                    def chunk_progress(d: int, t: int, base: int = done, size: int = len(part)) -> None:
                        if progress is not None and t:
                            progress(base + size * d / t, total)

                    changed = await docs.stage_documents(
                        [(d.uri, d.text, d.metadata) for d in part], progress=chunk_progress
                    )
                    documents += sum(changed)
                    unchanged += len(changed) - sum(changed)
                    done += len(part)
                    if progress is not None:
                        progress(done, total)
                items = len(await docs.index.upsert_many(content.items)) if content.items else 0
        except FileError:
            raise
        except ClinvecError as exc:
            raise FileError.at(content.name, str(exc)) from None
        if progress is not None:
            progress(total, total)
        return {"documents": documents, "unchanged": unchanged, "items": items}
