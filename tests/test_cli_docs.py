"""``python -m pyapp docs ...`` as a script would use it: real subprocesses, exit codes, JSON lines on stdout,
and the same DocumentIndex path as the page (tests/test_notes.py checks that path through NotesService)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from long_note import FACT, HYBRID_QUERY, KEYWORD_QUERY, LEXICAL_SEMANTIC_QUERY, long_note

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, check_code: int | None = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's pyapp, whatever is installed
    proc = subprocess.run(
        [sys.executable, "-m", "pyapp", "-q", *args], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env
    )
    if check_code is not None:
        assert proc.returncode == check_code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def lines(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_add_query_get_delete_a_long_document(tmp_path: Path) -> None:
    idx = str(tmp_path / "docs")
    note = tmp_path / "discharge.txt"
    text = long_note().replace("\n", "\r\n")  # CRLF from a Windows machine: kept as written
    note.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # with a BOM, which is not part of the text
    meta = '{"ward": "Endocrine", "year": 2024}'
    added = lines(
        cli("docs", "add", idx, "--id", "discharge", "--file", str(note), "--metadata", meta, "--hashing", "256")
    )
    assert added[0]["id"] == "discharge" and added[0]["chunks"] > 40 and added[0]["changed"] is True
    again = lines(cli("docs", "add", idx, "--id", "discharge", "--file", str(note), "--metadata", meta))
    assert again == [{**added[0], "changed": False}]  # unchanged: nothing embedded, the recorded embedder reused
    cli(
        "docs", "add", idx, "--id", "short", "--text", "Septic shock on noradrenaline.", "--metadata", '{"ward": "ICU"}'
    )

    for mode, query in (("keyword", KEYWORD_QUERY), ("hybrid", HYBRID_QUERY), ("semantic", LEXICAL_SEMANTIC_QUERY)):
        hits = lines(cli("docs", "query", idx, query, "--mode", mode))
        top = hits[0]
        assert top["id"] == "discharge" and FACT in top["passage"], mode
        assert [h["id"] for h in hits].count("discharge") == 1
        start, end = top["span"]
        assert text[start:end] == top["passage"] and top["metadata"] == {"ward": "Endocrine", "year": 2024}
        marked = [top["passage"][a:b] for a, b in top["highlights"]]
        assert (marked == [top["passage"]]) if mode == "semantic" else ("pheochromocytoma" in marked)
    assert (
        lines(cli("docs", "query", idx, "pheochromocytoma", "--filter", '{"ward": "ICU"}', "--mode", "keyword")) == []
    )
    assert len(lines(cli("docs", "query", idx, "noradrenaline discharge", "--top-k", "1"))) == 1

    got = subprocess.run(
        [sys.executable, "-m", "pyapp", "docs", "get", idx, "discharge"],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert got.returncode == 0 and got.stdout == text.encode("utf-8")  # byte for byte
    assert lines(cli("docs", "get", idx, "short", "--json")) == [
        {"id": "short", "text": "Septic shock on noradrenaline.", "metadata": {"ward": "ICU"}}
    ]
    assert [d["id"] for d in lines(cli("docs", "list", idx))] == ["discharge", "short"]
    assert lines(cli("docs", "delete", idx, "discharge")) == [{"deleted": True}]
    assert lines(cli("docs", "delete", idx, "discharge", check_code=3)) == [{"deleted": False}]
    assert "no document" in cli("docs", "get", idx, "discharge", check_code=3).stderr
    assert lines(cli("stats", idx))[0]["items"] == 1  # every chunk went with it


def test_docs_errors_and_exit_codes(tmp_path: Path) -> None:
    idx = str(tmp_path / "docs")
    missing = cli("docs", "add", idx, "--id", "a", "--text", "x", check_code=3)
    assert "--model" in missing.stderr and "Traceback" not in missing.stderr
    cli("docs", "query", idx, "x", check_code=3)
    cli("docs", "add", idx, "--id", "a", "--text", "first note", "--hashing", "64")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    cases = [
        (("docs", "add", idx, "--id", "b", "--file", str(tmp_path / "latin1.txt")), "not UTF-8"),
        (("docs", "add", idx, "--id", "b", "--file", str(tmp_path / "nope.txt")), "cannot read"),
        (("docs", "add", idx, "--id", "b", "--text", "   "), "no text"),
        (("docs", "add", idx, "--id", "b", "--text", "x", "--metadata", '{"_doc": 1}'), "reserved"),
        (("docs", "add", idx, "--id", "b", "--text", "x", "--metadata", "[1]"), "JSON object"),
        (("docs", "add", idx, "--id", "x" * 600, "--text", "x"), "id must be"),
        (("docs", "query", idx, "x", "--filter", '{"a": {"$bogus": 1}}'), "$bogus"),
    ]
    for args, message in cases:
        proc = cli(*args, check_code=1)
        assert proc.stderr.startswith("clinvec: error:") and message in proc.stderr, (args[:3], proc.stderr)
        assert "Traceback" not in proc.stderr
    for args in (
        ("docs", "add", idx, "--id", "b"),  # neither --file nor --text
        ("docs", "add", idx, "--id", "b", "--text", "x", "--file", "f"),
        ("docs", "query", idx, "x", "--mode", "vector"),  # the page's names: hybrid, semantic, keyword
        ("docs", "query", idx, "x", "--top-k", "0"),
        ("docs",),
    ):
        assert "Traceback" not in cli(*args, check_code=2).stderr
    assert [d["id"] for d in lines(cli("docs", "list", idx))] == ["a"]  # nothing else was written


def test_docs_reads_an_index_of_plain_items(tmp_path: Path) -> None:
    """Items added with `add --text` (no document fields) come back as one-chunk documents."""
    idx = str(tmp_path / "plain")
    cli("create", idx, "--hashing", "64")
    cli("add", idx, "--text", "Fracture of the femoral neck after a fall.", "--id", "p1")
    hits = lines(cli("docs", "query", idx, "femoral fracture", "--mode", "semantic"))
    assert hits[0]["id"] == "p1" and hits[0]["span"] == [0, 42] and hits[0]["chunks"] == 1
    assert cli("docs", "get", idx, "p1").stdout == "Fracture of the femoral neck after a fall."
