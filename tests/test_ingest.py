"""Files in on the server: pyapp.ingest on real folders, and `python -m pyapp ingest [--watch]` as a subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pdf_maker import minimal_pdf

from pyapp import LocalIndex
from pyapp.documents import DocumentIndex
from pyapp.embed.hashing import HashingEmbedder
from pyapp.files import read_file
from pyapp.ingest import Ingester, Ledger, Roots, Summary, write_content
from pyapp.watch import settled

ROOT = Path(__file__).resolve().parent.parent


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting the texts it embeds (unchanged files must cost none)."""

    def __init__(self) -> None:
        super().__init__(dims=64)
        self.embedded = 0

    async def embed_raw(self, texts, progress=None):  # noqa: ANN001, ANN201
        self.embedded += len(texts)
        return await super().embed_raw(texts, progress)


LONG = " ".join(f"word{i}" for i in range(400)) + " Final diagnosis: tension pneumothorax."


def make_folder(root: Path) -> Path:
    src = root / "notes"
    (src / "ward" / ".hidden").mkdir(parents=True)
    (src / "a.txt").write_text("Chest pain radiating to the left arm; troponin negative.\n")
    (src / "ward" / "long.md").write_text(f"# Discharge\n\n{LONG}\n")
    (src / "ward" / ".hidden" / "skip.txt").write_text("never read")
    (src / "ward" / "draft.txt~").write_text("editor backup, never read")
    (src / "summary.pdf").write_bytes(minimal_pdf(["Discharge summary", "Sepsis from a urinary source"]))
    records = [
        {"id": "r1", "text": "Hypoglycaemia overnight, glucose 2.1", "metadata": {"ward": "ICU"}},
        {"id": "r2", "text": "Fall from bed, no head injury", "metadata": {"ward": "ED"}},
        {"id": "v1", "vector": [1.0] + [0.0] * 63, "text": "pre-embedded", "metadata": {"ward": "ED"}},
    ]
    (src / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (src / "table.csv").write_text('NoteID,Ward,Body\n7,ICU,"Delirium, agitated at night"\n8,ED,Cellulitis left leg\n')
    (src / "image.png").write_bytes(b"\x89PNG")  # not a format clinvec reads: ignored in a folder
    return src


async def ingest(index_dir: Path, paths: list[Path], embedder: CountingEmbedder) -> tuple[Summary, list[dict]]:
    events: list[dict] = []
    if await LocalIndex.exists(str(index_dir)):
        docs = await DocumentIndex.open(str(index_dir), embedder)
    else:
        docs = await DocumentIndex.create(str(index_dir), embedder)
    try:
        roots = Roots([str(p) for p in paths])
        targets, errors = roots.collect()
        assert not errors, errors
        summary = await Ingester(docs, Ledger.for_index(str(index_dir)), events.append).run(targets)
    finally:
        await docs.close()
    return summary, events


async def documents(index_dir: Path) -> dict[str, str]:
    docs = await DocumentIndex.open(str(index_dir), HashingEmbedder(dims=64), read_only=True)
    try:
        return {d.uri: await docs.get_document_text(d.uri) for d in await docs.list_documents()}
    finally:
        await docs.close()


async def item_ids(index_dir: Path) -> set[str]:
    index = await LocalIndex.open(str(index_dir), read_only=True)
    try:
        return set(await index.ids())
    finally:
        await index.close()


# ---------------------------------------------------------------------- one pass, re-runs, skipping
async def test_folder_in_then_unchanged_files_cost_no_embedding(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    idx = tmp_path / "idx"
    embedder = CountingEmbedder()
    summary, events = await ingest(idx, [src], embedder)
    assert (summary.files, summary.changed, summary.failed) == (5, 5, 0)
    assert {e["file"] for e in events} == {"a.txt", "ward/long.md", "summary.pdf", "records.jsonl", "table.csv"}
    docs = await documents(idx)
    assert set(docs) == {"a.txt", "ward/long.md", "summary.pdf", "r1", "r2", "7", "8", "v1"}  # v1: a plain item
    assert docs["ward/long.md"] == f"# Discharge\n\n{LONG}\n"  # byte-exact, many chunks
    assert "Sepsis from a urinary source" in docs["summary.pdf"]
    assert "v1" in await item_ids(idx)  # a record with its own vector is imported as it is
    first = embedder.embedded
    assert first > 7

    summary, events = await ingest(idx, [src], embedder)
    assert (summary.changed, summary.unchanged, summary.failed) == (0, 5, 0) and events == []
    assert embedder.embedded == first  # nothing re-embedded

    # One text file changes: only its chunks are embedded again.
    (src / "a.txt").write_text("Chest pain; troponin raised at 6 hours.\n")
    summary, _ = await ingest(idx, [src], embedder)
    assert (summary.changed, summary.unchanged) == (1, 4)
    assert embedder.embedded == first + 1
    assert (await documents(idx))["a.txt"].startswith("Chest pain; troponin raised")


async def test_changed_jsonl_replaces_its_records_and_keeps_unchanged_ones(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    idx = tmp_path / "idx"
    embedder = CountingEmbedder()
    await ingest(idx, [src], embedder)
    before = embedder.embedded
    records = [
        {"id": "r1", "text": "Hypoglycaemia overnight, glucose 2.1", "metadata": {"ward": "ICU"}},  # unchanged
        {"id": "r3", "text": "New: pressure sore on the sacrum"},
    ]
    (src / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary, events = await ingest(idx, [src], embedder)
    assert summary.changed == 1
    [event] = events
    assert event["file"] == "records.jsonl" and event["documents"] == 1 and event["unchanged"] == 1
    assert event["removed"] == 2  # r2 (a document) and v1 (an item) are no longer in the file
    docs = await documents(idx)
    assert "r3" in docs and "r1" in docs and "r2" not in docs
    assert "v1" not in await item_ids(idx)
    assert embedder.embedded == before + 1  # only r3


async def test_ledger_is_a_cache_the_index_is_the_truth(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    idx = tmp_path / "idx"
    embedder = CountingEmbedder()
    await ingest(idx, [src], embedder)
    ledger = Path(f"{idx}.ingest.json")
    recorded = json.loads(ledger.read_text())
    assert recorded["format"] == "clinvec-ingest"
    assert recorded["files"][str(src / "records.jsonl")]["uris"] == ["r1", "r2"]
    assert recorded["files"][str(src / "records.jsonl")]["ids"] == ["v1"]

    # A document deleted behind the ledger's back: the file is read again, not skipped.
    docs = await DocumentIndex.open(str(idx), embedder)
    await docs.delete_document("r2")
    await docs.close()
    summary, events = await ingest(idx, [src], embedder)
    assert [e["file"] for e in events] == ["records.jsonl"] and "r2" in await documents(idx)

    # Ledger lost or broken: files are read again, unchanged documents still skipped by their hash.
    ledger.write_text("{not json")
    before = embedder.embedded
    summary, events = await ingest(idx, [src], embedder)
    assert summary.failed == 0 and embedder.embedded == before
    assert json.loads(ledger.read_text())["version"] == 1  # rewritten


# ---------------------------------------------------------------------- bad files
async def test_bad_files_are_reported_by_name_and_line_and_nothing_of_them_is_stored(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    (src / "latin1.txt").write_bytes(b"Patient seen.\nCaf\xe9 au lait spots.\n")
    (src / "broken.jsonl").write_text('{"id": "b1", "text": "good line"}\n{"id": "b2", "text": \n')
    (src / "quote.csv").write_text('id,text\nq1,fine\nq2,"never closed\nq3,more\n')
    (src / "zero.jsonl").write_text('{"id": "z1", "text": "good"}\n{"id": "z2", "vector": [' + "0," * 63 + "0]}\n")
    idx = tmp_path / "idx"
    summary, events = await ingest(idx, [src], CountingEmbedder())
    failed = {e["file"]: e for e in events if e["event"] == "failed"}
    assert summary.failed == 4 and summary.changed == 5
    assert failed["latin1.txt"]["line"] == 2 and "latin1.txt line 2: not UTF-8" in failed["latin1.txt"]["error"]
    assert failed["broken.jsonl"]["line"] == 2 and failed["broken.jsonl"]["error"].startswith("broken.jsonl line 2")
    assert failed["quote.csv"]["line"] == 3 and "never closed" in failed["quote.csv"]["error"]
    assert failed["zero.jsonl"]["line"] == 2 and "all zeros" in failed["zero.jsonl"]["error"]
    docs = await documents(idx)
    assert not {"latin1.txt", "b1", "b2", "q1", "z1"} & set(docs)  # all or nothing per file
    assert {"a.txt", "r1", "7"} <= set(docs)  # the rest went in


async def test_a_file_failing_at_write_time_leaves_nothing(tmp_path: Path) -> None:
    """Errors the reader cannot see (a vector of the wrong size for this index) roll back the whole file."""
    idx = tmp_path / "idx"
    docs = await DocumentIndex.create(str(idx), HashingEmbedder(dims=64))
    try:
        data = b'{"id": "d1", "text": "a document"}\n{"id": "v", "vector": [1, 2, 3]}\n'
        content = read_file(data, "mixed.jsonl")  # no dims given: the reader cannot know the index's
        with pytest.raises(Exception, match="mixed.jsonl") as info:
            await write_content(docs, content)
        assert "dimension" in str(info.value).lower()
        assert await docs.index.count() == 0
        assert await docs.list_documents() == []
    finally:
        await docs.close()


# ---------------------------------------------------------------------- the command
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyapp", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def events_of(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_cli_ingest_reports_bad_files_and_exits_1(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    (src / "bad.jsonl").write_text('{"id": "x", "text": "ok"}\n\n{"id": oops}\n')
    idx = str(tmp_path / "idx")
    proc = cli("ingest", idx, str(src), str(tmp_path / "missing"), "--hashing", "64", "--progress")
    assert proc.returncode == 1, proc.stderr
    assert "clinvec: error: bad.jsonl line 3: not valid JSON" in proc.stderr
    assert "no such file or folder" in proc.stderr
    assert "files/s" in proc.stderr and "ETA" in proc.stderr  # the forced progress bar: rate and ETA
    summary = events_of(proc)[-1]
    assert summary == {"event": "summary", "files": 6, "changed": 5, "unchanged": 0, "removed": 0, "failed": 2}
    (src / "bad.jsonl").unlink()
    proc = cli("ingest", idx, str(src))  # the recorded embedder is used again
    assert proc.returncode == 0, proc.stderr
    assert events_of(proc) == [
        {"event": "summary", "files": 5, "changed": 0, "unchanged": 5, "removed": 0, "failed": 0}
    ]
    hits = events_of(cli("query", idx, "--text", "urinary sepsis", "--mode", "keyword", "--top-k", "1"))
    assert hits[0]["metadata"]["_doc"]["uri"] == "summary.pdf"


# ---------------------------------------------------------------------- --watch
async def test_settled_waits_for_writes_to_stop(tmp_path: Path) -> None:
    path = tmp_path / "growing.txt"
    path.write_text("start\n")

    async def writer() -> None:
        for i in range(8):
            await asyncio.sleep(0.1)
            with open(path, "a") as handle:
                handle.write(f"line {i}\n")

    started = time.monotonic()
    task = asyncio.create_task(writer())
    assert await settled(str(path), interval=0.25)
    await task
    assert time.monotonic() - started >= 0.8  # not before the last write
    assert path.read_text().count("line") == 8
    path.unlink()
    assert await settled(str(path), interval=0.05) is False


def _wait_for(predicate, timeout: float = 20.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_watch_follows_creates_changes_and_deletes_until_sigterm(tmp_path: Path) -> None:
    src = tmp_path / "inbox"
    src.mkdir()
    (src / "first.txt").write_text("Admitted with community acquired pneumonia.")
    idx = tmp_path / "idx"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyapp", "ingest", str(idx), str(src), "--watch", "--hashing", "64"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: list[dict] = []

    def read_event(kind: str) -> dict:
        while True:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, f"watcher ended: {proc.stderr.read()}"  # type: ignore[union-attr]
            lines.append(json.loads(line))
            if lines[-1]["event"] == kind:
                return lines[-1]

    def docs_now() -> dict[str, str]:
        return asyncio.run(documents(idx))

    try:
        assert read_event("summary")["changed"] == 1
        assert set(docs_now()) == {"first.txt"}

        # A new file written in two parts (a slow copy): indexed once, whole.
        new = src / "sub" / "second.md"
        new.parent.mkdir()
        with open(new, "w") as handle:
            handle.write("Discharge summary. ")
            handle.flush()
            time.sleep(0.15)
            handle.write("Diagnosis: pulmonary embolism.")
        assert read_event("changed")["file"] == "sub/second.md"
        assert docs_now()["sub/second.md"] == "Discharge summary. Diagnosis: pulmonary embolism."

        (src / "first.txt").write_text("Admitted with pneumonia; now improving on antibiotics.")
        _wait_for(lambda: docs_now().get("first.txt", "").endswith("antibiotics."))

        (src / "records.jsonl").write_text('{"id": "j1", "text": "Wound check"}\n{"id": "j2", "text": "Bloods"}\n')
        _wait_for(lambda: {"j1", "j2"} <= set(docs_now()))

        (src / "bad.jsonl").write_text('{"id": "k1", "text": "ok"}\n{oops\n')
        failed = read_event("failed")
        assert failed["file"] == "bad.jsonl" and failed["line"] == 2

        (src / "first.txt").unlink()
        (src / "records.jsonl").unlink()
        _wait_for(lambda: set(docs_now()) == {"sub/second.md"})
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, proc.stderr.read()  # type: ignore[union-attr]
    assert "k1" not in docs_now()
    ledger = json.loads(Path(f"{idx}.ingest.json").read_text())
    assert set(ledger["files"]) == {str(new)}  # deleted files left the ledger


def test_roots_name_files_once_and_refuse_a_taken_name(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "note.txt").write_text(folder)
    (tmp_path / "a" / "sub" / "x.md").write_text("x")
    roots = Roots([str(tmp_path / "a"), str(tmp_path / "a" / "sub" / "x.md"), str(tmp_path / "b" / "note.txt")])
    targets, errors = roots.collect()
    assert [t.name for t in targets] == ["note.txt", "sub/x.md"]  # x.md once, named by the folder it is in
    [error] = errors
    assert error.file == str(tmp_path / "b" / "note.txt") and "already used" in str(error)
    assert roots.name_of(str(tmp_path / "a" / ".git" / "c.txt")) is None
    assert roots.name_of(str(tmp_path / "elsewhere.txt")) is None
