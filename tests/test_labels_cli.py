"""``python -m pyapp label fit|predict`` as a script uses it: real subprocesses, exit codes, JSON lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from test_cli_docs import cli, lines
from test_labels import note, notes_index


def build(path: Path) -> None:
    async def go() -> None:
        docs = await notes_index(path)
        await docs.close()

    asyncio.run(go())


def test_label_fit_then_predict(tmp_path: Path) -> None:
    build(tmp_path / "idx")
    out = tmp_path / "kind.json"
    (fit,) = lines(cli("label", "fit", str(tmp_path / "idx"), "--field", "kind", "--out", str(out)))
    assert fit["labels"] == ["discharge", "nursing", "radiology"] and fit["examples"] == 18 and fit["converged"]
    assert json.loads(out.read_text())["info"]["field"] == "kind"

    rows = lines(cli("label", "predict", str(tmp_path / "idx"), str(out)))
    assert [r["uri"] for r in rows] == [f"note-{i}" for i in range(18, 24)]  # the unlabelled notes only
    assert all(r["given"] is None and 0 < r["probability"] <= 1 for r in rows)
    assert [r["label"] for r in rows] == [["radiology", "discharge", "nursing"][i % 3] for i in range(18, 24)]

    assert len(lines(cli("label", "predict", str(tmp_path / "idx"), str(out), "--all"))) == 24
    (one,) = lines(cli("label", "predict", str(tmp_path / "idx"), str(out), "--uri", "note-5"))
    assert one["given"] == "nursing" and one["label"] == "nursing"
    (text,) = lines(cli("label", "predict", str(tmp_path / "idx"), str(out), "--text", note("discharge", 77)))
    assert text["label"] == "discharge"


def test_label_errors_and_exit_codes(tmp_path: Path) -> None:
    build(tmp_path / "idx")
    out = tmp_path / "m.json"
    proc = cli("label", "fit", str(tmp_path / "idx"), "--field", "ward", "--out", str(out), check_code=1)
    assert "at least 2 distinct" in proc.stderr and not out.exists()
    cli("label", "fit", str(tmp_path / "absent"), "--out", str(out), check_code=3)
    cli("label", "fit", str(tmp_path / "idx"), check_code=2)  # --out is required
    (tmp_path / "bad.json").write_text(json.dumps({"format": "clinvec-label-model", "format_version": 99}))
    proc = cli("label", "predict", str(tmp_path / "idx"), str(tmp_path / "bad.json"), check_code=1)
    assert "format_version 99" in proc.stderr
