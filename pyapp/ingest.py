"""Files in: write a read file into a document index in one commit, and ``python -m pyapp ingest``.

``write_content`` is the one writer for a file's documents and items (pure async Python: the page's import
can call it too). The rest is the server's ingest of folders: collect ``.txt/.md/.pdf/.jsonl/.csv`` files,
skip what did not change, report a bad file by name (and line) and go on with the others.

Skipping unchanged files: a text or PDF file is one document, and ``DocumentIndex`` already skips a
document whose text and metadata hash is unchanged (nothing embedded), so the index itself is the truth.
JSONL/CSV files hold many records; re-reading and re-checking each is wasted work, so their sha256 is kept
in a *ledger*: a sidecar JSON file beside the index folder (``<index>.ingest.json``), not inside it
(the store owns its folder and its files' checksums) and not in the index manifest (``LocalIndex`` has no
user manifest API, and a manifest write is not part of an item commit anyway). The ledger is only a cache:
writes are upserts, so a lost or stale ledger costs a re-read, never wrong data, and a skip is taken only
when every id and document the ledger names for that file is still in the index. It also remembers what
each file put in the index, so a changed JSONL file drops the records it no longer holds and ``--watch``
removes the documents of a deleted file.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ClinvecError, InvalidInput
from .files import FileContent, FileError, kind_of, read_file

if TYPE_CHECKING:
    from .documents import DocumentIndex
    from .embed.base import Embedder, Progress

LEDGER_SUFFIX = ".ingest.json"
LEDGER_FORMAT = "clinvec-ingest"
LEDGER_VERSION = 1
RECORD_KINDS = ("jsonl", "csv")
SAVE_EVERY_S = 2.0


# ---------------------------------------------------------------------- writing one file (server and page)
@dataclass
class Written:
    """What one file's commit did."""

    documents: int = 0  # documents (re-)embedded
    unchanged: int = 0  # documents skipped by their content hash
    items: int = 0  # items with their own vector, upserted
    removed: int = 0  # documents and items an earlier version of the file held and this one does not

    @property
    def changed(self) -> bool:
        return bool(self.documents or self.items or self.removed)


async def write_content(
    docs: DocumentIndex,
    content: FileContent,
    previous_uris: Iterable[str] = (),
    previous_ids: Iterable[str] = (),
    progress: Progress | None = None,
) -> Written:
    """Write one file in one commit: its documents (unchanged ones skipped), its items (upserted), and the
    removal of ``previous_*`` the file no longer holds. On any error nothing of the file is written and the
    error is a ``FileError`` naming the file (and the record's line when known)."""
    uris = {d.uri for d in content.documents}
    ids = {item["id"] for item in content.items}
    stale_uris = [u for u in dict.fromkeys(previous_uris) if u not in uris]
    stale_ids = [i for i in dict.fromkeys(previous_ids) if i not in ids]
    written = Written()
    total = len(content.documents)
    try:
        async with docs.index.batch():
            for uri in stale_uris:
                written.removed += await docs.delete_document(uri)
            if stale_ids:
                written.removed += await docs.index.delete_many(stale_ids)
            for done, doc in enumerate(content.documents, 1):
                try:
                    changed = await docs.stage_document(doc.uri, doc.text, doc.metadata)
                except FileError:
                    raise
                except ClinvecError as exc:
                    raise FileError.at(content.name, str(exc), doc.line) from None
                written.documents += changed
                written.unchanged += not changed
                if progress is not None:
                    progress(done, total)
            if content.items:
                written.items = len(await docs.index.upsert_many(content.items))
    except FileError:
        raise
    except ClinvecError as exc:
        raise FileError.at(content.name, str(exc)) from None
    return written


# ---------------------------------------------------------------------- the ledger (sidecar JSON)
@dataclass
class FileRecord:
    """What one file put in the index when it was last written, and its bytes' sha256."""

    hash: str
    kind: str
    uris: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


class Ledger:
    """``<index>.ingest.json``: per file (absolute path) its ``FileRecord``; written atomically."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.files: dict[str, FileRecord] = {}
        self._dirty = False
        self._saved = time.monotonic()
        if path and os.path.exists(path):
            self._load(path)

    @classmethod
    def for_index(cls, location: str) -> Ledger:
        return cls(os.path.abspath(location).rstrip(os.sep) + LEDGER_SUFFIX)

    def _load(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as handle:
                raw = json.load(handle)
            if raw.get("format") != LEDGER_FORMAT or raw.get("version") != LEDGER_VERSION:
                raise ValueError("not a clinvec ingest ledger of this version")
            self.files = {p: FileRecord(**r) for p, r in raw["files"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # A cache: a broken one is dropped (files are re-read, upserts make that harmless), not fatal.
            print(f"clinvec: ignoring the ingest ledger {path!r} ({exc}); files will be re-read", file=sys.stderr)
            self.files = {}

    def get(self, path: str) -> FileRecord | None:
        return self.files.get(path)

    def set(self, path: str, record: FileRecord) -> None:
        self.files[path] = record
        self._dirty = True

    def pop(self, path: str) -> FileRecord | None:
        record = self.files.pop(path, None)
        self._dirty = self._dirty or record is not None
        return record

    def under(self, folder: str) -> list[str]:
        """Recorded files inside ``folder`` (a deleted folder's files)."""
        prefix = folder.rstrip(os.sep) + os.sep
        return [p for p in self.files if p.startswith(prefix)]

    def save(self, force: bool = True) -> None:
        """Write it when changed (``force=False``: at most every ``SAVE_EVERY_S``, for long runs)."""
        if not self.path or not self._dirty or (not force and time.monotonic() - self._saved < SAVE_EVERY_S):
            return
        payload = {
            "format": LEDGER_FORMAT,
            "version": LEDGER_VERSION,
            "files": {p: asdict(r) for p, r in sorted(self.files.items())},
        }
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, ensure_ascii=False)
            os.replace(tmp, self.path)
        except OSError as exc:
            print(f"clinvec: cannot write the ingest ledger {self.path!r}: {exc}", file=sys.stderr)
            return
        self._dirty = False
        self._saved = time.monotonic()


# ---------------------------------------------------------------------- which files
@dataclass(frozen=True)
class Target:
    """A file to ingest: its absolute path and its name (document id; relative to the folder given)."""

    path: str
    name: str


def _hidden(name: str) -> bool:
    return name.startswith((".", "~")) or name.endswith(("~", ".tmp", ".part", ".swp", ".crdownload"))


class Roots:
    """The paths given on the command line; names a file by where it sits in them."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = [os.path.abspath(p) for p in paths]

    def name_of(self, path: str) -> str | None:
        """A file's name (posix, relative to the folder given), or None when it is not one clinvec reads."""
        path = os.path.abspath(path)
        for root in self.paths:
            if path == root:
                name = os.path.basename(path)
            elif path.startswith(root.rstrip(os.sep) + os.sep):
                rel = os.path.relpath(path, root)
                if any(_hidden(part) for part in rel.split(os.sep)):
                    return None
                name = posixpath.join(*rel.split(os.sep))
            else:
                continue
            return name if kind_of(name) and not _hidden(os.path.basename(name)) else None
        return None

    def collect(self) -> tuple[list[Target], list[FileError]]:
        """Every readable file under the roots (folders recursively, sorted), plus errors for bad paths and
        for a second file that would get a name already taken."""
        targets: list[Target] = []
        errors: list[FileError] = []
        taken: dict[str, str] = {}
        seen: set[str] = set()  # a file under two of the roots is read once
        for root in self.paths:
            if os.path.isdir(root):
                found = []
                for folder, dirs, files in os.walk(root):
                    dirs[:] = sorted(d for d in dirs if not _hidden(d))
                    found.extend(os.path.join(folder, f) for f in sorted(files))
            elif os.path.isfile(root):
                found = [root]
                if not kind_of(root):
                    errors.append(FileError.at(root, "not a .txt/.md/.pdf/.jsonl/.csv file"))
                    continue
            else:
                errors.append(FileError.at(root, "no such file or folder"))
                continue
            for path in found:
                name = self.name_of(path)
                if name is None or path in seen:
                    continue
                seen.add(path)
                if name in taken and taken[name] != path:
                    errors.append(FileError.at(path, f"its name {name!r} is already used by {taken[name]}"))
                    continue
                taken[name] = path
                targets.append(Target(path, name))
        return targets, errors


# ---------------------------------------------------------------------- ingesting
@dataclass
class Summary:
    files: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "errors"}


Report = Callable[[dict[str, Any]], None]
EmbedBar = Callable[[str, int], "Progress | None"]


class Ingester:
    """Ingests files into one open ``DocumentIndex``, one commit per file, keeping the ledger."""

    def __init__(
        self, docs: DocumentIndex, ledger: Ledger, report: Report | None = None, embed_bar: EmbedBar | None = None
    ) -> None:
        self.docs = docs
        self.ledger = ledger
        self.report = report or (lambda event: None)
        self.embed_bar = embed_bar
        self.stop: Callable[[], bool] = lambda: False  # checked between files (``--watch`` sets it on SIGTERM)
        self._present: tuple[set[str], set[str]] | None = None

    async def _still_there(self, record: FileRecord) -> bool:
        """Whether every id and document the ledger names is still in the index (the ledger is a cache)."""
        if self._present is None:
            ids = set(await self.docs.index.ids())
            uris = {d.uri for d in await self.docs.list_documents()}
            self._present = (ids, uris)
        ids, uris = self._present
        return ids.issuperset(record.ids) and uris.issuperset(record.uris)

    async def ingest(self, target: Target, summary: Summary) -> None:
        """One file: read, check, write in one commit; a failure is reported and counted, never raised."""
        summary.files += 1
        kind = kind_of(target.name) or ""
        try:
            try:
                with open(target.path, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                raise FileError.at(target.name, f"cannot read it: {exc.strerror or exc}") from None
            digest = hashlib.sha256(data).hexdigest()
            previous = self.ledger.get(target.path)
            if (
                kind in RECORD_KINDS
                and previous is not None
                and previous.hash == digest
                and await self._still_there(previous)
            ):
                summary.unchanged += 1
                return
            content = read_file(data, target.name, dims=self.docs.index.dims)
            bar = self.embed_bar(target.name, len(content.documents)) if self.embed_bar else None
            written = await write_content(
                self.docs,
                content,
                previous.uris if previous else (),
                previous.ids if previous else (),
                progress=bar,
            )
        except ClinvecError as exc:
            self.failed(target.name, exc, summary)
            return
        self._present = None
        self.ledger.set(
            target.path,
            FileRecord(digest, kind, [d.uri for d in content.documents], [i["id"] for i in content.items]),
        )
        self.ledger.save(force=False)
        if written.changed:
            summary.changed += 1
            self.report({"event": "changed", "file": target.name, **asdict(written)})
        else:
            summary.unchanged += 1

    def failed(self, name: str, exc: ClinvecError, summary: Summary) -> None:
        message = str(exc) if isinstance(exc, FileError) else f"{name}: {exc}"
        summary.failed += 1
        summary.errors.append(message)
        line = exc.line if isinstance(exc, FileError) else None
        self.report({"event": "failed", "file": name, "line": line, "error": message})

    async def remove(self, path: str, name: str | None, summary: Summary) -> None:
        """A deleted file: remove what it put in the index (one commit); a deleted folder: each file in it."""
        path = os.path.abspath(path)
        for recorded in [path, *self.ledger.under(path)]:
            record = self.ledger.get(recorded)
            uris = record.uris if record else ([name] if name and recorded == path else [])
            ids = record.ids if record else []
            if not uris and not ids:
                continue
            try:
                async with self.docs.index.batch():
                    removed = sum([await self.docs.delete_document(u) for u in uris])
                    removed += await self.docs.index.delete_many(ids) if ids else 0
            except ClinvecError as exc:
                self.failed(name or recorded, exc, summary)
                continue
            self._present = None
            self.ledger.pop(recorded)
            self.ledger.save(force=False)
            if removed:
                summary.removed += 1
                self.report({"event": "removed", "file": name or recorded, "removed": removed})

    async def run(self, targets: Sequence[Target], progress: Progress | None = None) -> Summary:
        """Every target in turn (count, rate and ETA on ``progress``); the ledger is saved at the end."""
        summary = Summary()
        try:
            for done, target in enumerate(targets):
                if self.stop():
                    break
                if progress is not None:
                    progress(done, len(targets))
                await self.ingest(target, summary)
            if progress is not None and not self.stop():
                progress(len(targets), len(targets))
        finally:
            self.ledger.save()
        return summary


# ---------------------------------------------------------------------- opening the index
async def open_documents(location: str, embedder: Embedder | None, quiet: bool = False) -> DocumentIndex:
    """The document index at ``location``, created when missing. The embedder: the one given, else the one
    the index recorded, else (for a new index) the exported model bundle found in the default places."""
    from .documents import DocumentIndex
    from .embed.resolve import embedder_from_identity, find_bundle
    from .index import LocalIndex

    if await LocalIndex.exists(location):
        index = await LocalIndex.open(location)
        try:
            index.use_embedder(embedder or embedder_from_identity(index.manifest.get("embedder"), quiet))
            return DocumentIndex(index)
        except BaseException:
            await index.close()
            raise
    if embedder is None:
        bundle = find_bundle()
        if bundle is None:
            raise InvalidInput(f"{location!r} does not exist; to create it pass --model DIR or --hashing DIMS")
        from .embed.onnx import OnnxEmbedder

        embedder = OnnxEmbedder(bundle)
    return await DocumentIndex.create(location, embedder)


# ---------------------------------------------------------------------- the command
async def run_ingest(
    location: str,
    paths: Sequence[str],
    embedder: Embedder | None = None,
    watch: bool = False,
    progress: bool = False,
    quiet: bool = False,
    report: Report | None = None,
) -> int:
    """``python -m pyapp ingest``: exit status 1 when a file failed in the first pass, else 0.

    ``report`` gets one event per changed, removed or failed file (the CLI prints them as JSON lines);
    failures also go to stderr, one line each, naming the file and line."""
    from .progress import ProgressBar

    bar = ProgressBar("ingest", force=progress, unit="files")

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "failed":
            start = "\n" if bar.enabled else ""  # not glued to a half-drawn bar
            print(f"{start}clinvec: error: {event['error']}", file=sys.stderr)
        if report is not None:
            report(event)

    def embed_bar(name: str, count: int) -> Progress | None:
        return ProgressBar(f"  {name}", force=progress, unit="docs") if count > 1 else None

    roots = Roots(paths)
    docs = await open_documents(location, embedder, quiet)
    ingester = Ingester(docs, Ledger.for_index(location), on_event, embed_bar)

    async def first_pass() -> Summary:
        targets, errors = roots.collect()
        summary = await ingester.run(targets, bar)
        for error in errors:
            ingester.failed(error.file, error, summary)
        if report is not None:
            report({"event": "summary", **summary.to_dict()})
        return summary

    try:
        if not watch:
            return 1 if (await first_pass()).failed else 0
        from .watch import watch as watch_folders

        await watch_folders(ingester, roots, first_pass)
        return 0
    finally:
        await docs.close()
