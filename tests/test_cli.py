"""The command line as a script would use it: real subprocesses, exit codes and JSON on stdout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, check_code: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pyapp", "-q", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if check_code is not None:
        assert proc.returncode == check_code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def lines(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_vector_workflow(tmp_path):
    idx = str(tmp_path / "idx")
    assert lines(cli("create", idx, "--dims", "3", "--indexed", "ward"))[0]["dims"] == 3
    cli("create", idx, "--dims", "3", check_code=1)  # exists
    src = tmp_path / "items.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f"n{i}", "vector": [1, i, 0], "metadata": {"ward": "ICU" if i % 2 else "ED"}}) + "\n"
            for i in range(6)
        )
    )
    assert lines(cli("add", idx, "--file", str(src)))[0] == {"added": 6}
    cli("add", idx, "--file", str(src), check_code=1)  # duplicate ids: all-or-nothing
    assert lines(cli("add", idx, "--vector", "[0, 0, 1]", "--id", "z", "--metadata", '{"ward": "ICU"}'))[0] == {
        "id": "z"
    }
    hits = lines(cli("query", idx, "--vector", "[0, 0, 1]", "--top-k", "2"))
    assert hits[0]["id"] == "z" and len(hits) == 2
    hits = lines(cli("query", idx, "--vector", "[1, 5, 0]", "--filter", '{"ward": "ED"}', "--top-k", "10"))
    assert [h["id"] for h in hits] == ["n4", "n2", "n0"]
    assert lines(cli("get", idx, "n3"))[0]["metadata"] == {"ward": "ICU"}
    assert "no item" in cli("get", idx, "missing", check_code=3).stderr
    assert len(lines(cli("list", idx, "--limit", "3"))) == 3
    assert lines(cli("delete", idx, "n0", "n1", "nope"))[0] == {"deleted": 2}
    assert lines(cli("delete", idx, "--where", '{"ward": "ICU"}'))[0] == {"deleted": 3}
    assert lines(cli("stats", idx))[0]["items"] == 2
    out = str(tmp_path / "out.csv")
    assert lines(cli("export", idx, out, "--format", "csv"))[0]["exported"] == 2
    idx2 = str(tmp_path / "idx2")
    cli("create", idx2, "--dims", "3")
    assert lines(cli("import", idx2, out))[0] == {"imported": 2}
    cli("compact", idx2)
    assert [r["id"] for r in lines(cli("list", idx2))] == ["n2", "n4"]


def test_errors_and_exit_codes(tmp_path):
    idx = str(tmp_path / "idx")
    proc = cli("stats", idx, check_code=3)
    assert "clinvec: error:" in proc.stderr and "Traceback" not in proc.stderr
    cli("create", idx, "--dims", "3")
    proc = cli("add", idx, "--vector", "[1, 2]", check_code=1)
    assert "dimensions" in proc.stderr
    proc = cli("query", idx, "--vector", "[1, 0, 0]", "--filter", '{"a": {"$bogus": 1}}', check_code=1)
    assert "$bogus" in proc.stderr
    cli("query", idx, "--vector", "[1, 0, 0]", "--mode", "nope", check_code=2)  # argparse usage error
    proc = cli("add", idx, "--text", "no embedder here", check_code=1)
    assert "embedder" in proc.stderr


def test_text_workflow_with_recorded_embedder(tmp_path):
    """An index created with an embedder re-creates it for later `add --text` / `query --text` calls."""
    idx = str(tmp_path / "idx")
    cli("create", idx, "--hashing", "64")
    cli("add", idx, "--text", "acute shortness of breath", "--id", "a")
    cli("add", idx, "--text", "fracture of the femoral neck", "--id", "b")
    hits = lines(cli("query", idx, "--text", "femoral fracture"))
    assert hits[0]["id"] == "b" and hits[0]["keyword_score"] > 0
    keyword = lines(cli("query", idx, "--text", "breath", "--mode", "keyword"))
    assert [h["id"] for h in keyword] == ["a"]


def test_demo_runs_offline(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pyapp", "demo", "--dir", str(tmp_path / "demo"), "--text", "femoral neck fracture"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "40 notes" in proc.stdout
    first_hits = [line for line in proc.stdout.splitlines() if line.startswith("  1.")]
    assert len(first_hits) == 2 and "hip" in first_hits[0].lower()


def _deep_filter(levels: int) -> str:
    return '{"$and": [' * levels + '{"ward": "ICU"}' + "]}" * levels


def test_hostile_inputs_give_one_line_and_exit_1_never_a_traceback(tmp_path):
    """Defect 13: each of these used to end in a Python traceback (UnicodeDecodeError, RecursionError,
    ValueError, UnicodeEncodeError); the CLI prints one 'clinvec: error:' line and exits 1."""
    idx = str(tmp_path / "idx")
    cli("create", idx, "--dims", "3")
    cli("add", idx, "--vector", "[1, 0, 0]", "--id", "keep", "--metadata", '{"ward": "ICU"}')
    files = {
        "latin1.jsonl": b'{"id": "caf\xe9", "vector": [1, 0, 0]}\n',
        "deep.jsonl": b'{"id": "d", "vector": [1, 0, 0], "metadata": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}\n",
        "huge.csv": b'id,vector,metadata\na,"[1,0,0]","{""n"": ' + b"9" * 5000 + b'}"\n',
        "surrogate.jsonl": b'{"id": "s", "vector": [1, 0, 0], "metadata": {"w": "\\ud800"}}\n',
        "vector.bin": b"\xff\xfe[1, 0, 0]",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    manifest = (tmp_path / "idx" / "manifest.json").read_bytes()
    deep_metadata = '{"x": ' + "[" * 60_000 + "]" * 60_000 + "}"  # below the 128 KiB argument limit
    cases = [
        (("import", idx, str(tmp_path / "latin1.jsonl")), "not UTF-8"),
        (("add", idx, "--file", str(tmp_path / "deep.jsonl")), "nested too deeply"),
        (("import", idx, str(tmp_path / "huge.csv")), "not accepted JSON"),
        (("import", idx, str(tmp_path / "surrogate.jsonl")), "lone surrogate"),
        (("add", idx, "--vector", "[0, 1, 0]", "--metadata", deep_metadata), "nested too deeply"),
        (("add", idx, "--vector", "[0, 1, 0]", "--metadata", '{"n": ' + "7" * 5000 + "}"), "not accepted JSON"),
        (("add", idx, "--vector", "[0, 1, 0]", "--metadata", '{"w": "\\udc00"}'), "lone surrogate"),
        (("add", idx, "--vector", str(tmp_path / "vector.bin")), "not UTF-8"),
        (("query", idx, "--vector", "[1, 0, 0]", "--filter", _deep_filter(250)), "nested deeper than 100"),
        (("list", idx, "--filter", "[" * 60_000), "--filter"),
        (("delete", idx, "--where", _deep_filter(500)), "nested too deeply"),
        (("export", idx, str(tmp_path / "idx" / "manifest.json")), "own folder"),
        (("export", idx, str(tmp_path / "no-such-folder" / "out.jsonl")), "cannot write"),
        (("import", idx, str(tmp_path / "missing.jsonl")), "does not exist"),
    ]
    for args, message in cases:
        proc = cli(*args, check_code=1)
        assert "Traceback" not in proc.stderr, args[:2]
        assert proc.stderr.startswith("clinvec: error:") and proc.stderr.count("\n") == 1, proc.stderr
        assert message in proc.stderr, (args[:2], proc.stderr)
    assert "Traceback" not in cli("create", str(tmp_path / "x"), "--dims", "abc", check_code=2).stderr
    assert [r["id"] for r in lines(cli("list", idx))] == ["keep"]  # nothing was written by any of them
    assert (tmp_path / "idx" / "manifest.json").read_bytes() == manifest  # the export onto it was refused


def test_add_file_and_import_share_one_path(tmp_path):
    """Both go through pyapp.transfer.import_into: same formats, same line-numbered errors, same upsert."""
    idx = str(tmp_path / "idx")
    cli("create", idx, "--dims", "3")
    src = tmp_path / "items.csv"
    src.write_text('\ufeffid,vector,metadata\na,"[1,0,0]","{""w"": 1}"\nb,"[0,1,0]",\n')
    assert lines(cli("add", idx, "--file", str(src)))[0] == {"added": 2}
    err_add = cli("add", idx, "--file", str(src), check_code=1).stderr
    err_import = cli("import", idx, str(src), check_code=1).stderr
    assert err_add == err_import and "already" in err_add
    assert lines(cli("import", idx, str(src), "--upsert"))[0] == {"imported": 2}
    assert lines(cli("add", idx, "--file", str(src), "--upsert"))[0] == {"added": 2}


def test_import_create_keeps_vectra_indexed_fields(tmp_path):
    """`import --create` migrates a vectra folder into a new index that keeps its metadata_config.indexed."""
    vectra = Path.home() / ".cache/clinvec-peers/vectra"
    if shutil.which("node") is None or not (vectra / "node_modules" / "vectra").exists():
        pytest.skip("vectra 0.15.0 is not installed (scripts/setup.sh installs it)")
    subprocess.run(
        ["node", str(ROOT / "tests" / "fixtures" / "make_vectra_index.mjs"), str(vectra), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    idx = str(tmp_path / "migrated")
    assert lines(cli("import", idx, str(tmp_path / "documents"), "--create"))[0] == {"imported": 8, "indexed": ["ward"]}
    assert lines(cli("stats", idx))[0]["items"] == 8
    chunk = lines(cli("list", idx, "--filter", '{"uri": "notes/a.txt"}', "--limit", "1"))[0]
    assert chunk["text"].startswith("Patient 1") and chunk["metadata"]["ward"] == "ICU"
    cli("import", str(tmp_path / "exists"), str(tmp_path / "plain"), check_code=3)  # without --create: no index
