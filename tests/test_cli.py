"""The command line as a script would use it: real subprocesses, exit codes and JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
