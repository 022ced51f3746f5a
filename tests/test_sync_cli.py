"""``python -m pyapp bundle export --since/--int8`` and ``bundle import`` of a delta: real subprocesses."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pyapp import LocalIndex
from pyapp import bundle as bundles

ROOT = Path(__file__).resolve().parent.parent
DIMS = 16


def cli(*args: str, code: int = 0) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "pyapp", "-q", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1]) if code == 0 else proc.stderr


async def _write(path: str, ops: str) -> None:
    index = await (LocalIndex.open(path) if Path(path).exists() else LocalIndex.create(path, dims=DIMS))
    if ops == "first":
        await index.insert_many([{"id": f"n{i}", "vector": [i + 1.0] + [0.5] * (DIMS - 1)} for i in range(40)])
    else:
        await index.upsert("n2", [9.0] * DIMS, {"v": 2}, "edited")
        await index.delete("n5")
        await index.insert([1.0] * DIMS, id="new")
    await index.close()


async def _dump(path: str) -> list[tuple[str, Any, Any, list[float]]]:
    index = await LocalIndex.open(path, read_only=True)
    try:
        return sorted([(i.id, i.metadata, i.text, i.vector) async for b in index.iter_items() for i in b])
    finally:
        await index.close()


def test_delta_export_and_import_bring_a_copy_up_to_date(tmp_path):
    src, copy = str(tmp_path / "src"), str(tmp_path / "copy")
    asyncio.run(_write(src, "first"))
    full = tmp_path / "full.clinvec"
    out = cli("bundle", "export", src, str(full))
    assert out == {"exported": 40, "path": str(full), "position": 1}
    cli("bundle", "import", copy, str(full), "--create")
    asyncio.run(_write(src, "more"))
    delta = tmp_path / "delta.clinvec"
    out = cli("bundle", "export", src, str(delta), "--since", str(out["position"]))
    assert out["exported"] == 2 and out["position"] == 4
    summary = bundles.verify(io.BytesIO(delta.read_bytes()))
    assert summary.manifest["kind"] == "delta" and summary.ids == ["n2", "new"] and summary.deletes == 1
    assert cli("bundle", "import", copy, str(delta), "--upsert") == {"imported": 2}
    assert asyncio.run(_dump(copy)) == asyncio.run(_dump(src))


def test_int8_export_is_smaller_and_a_bad_since_is_refused(tmp_path):
    src = str(tmp_path / "src")
    asyncio.run(_write(src, "first"))
    plain, small = tmp_path / "a.clinvec", tmp_path / "b.clinvec"
    cli("bundle", "export", src, str(plain))
    cli("bundle", "export", src, str(small), "--int8")
    saved = len(gzip.decompress(plain.read_bytes())) - len(gzip.decompress(small.read_bytes()))
    assert saved >= 40 * (DIMS * 4 - DIMS - 4) - 8  # per row: float32 values -> one scale + int8 values
    assert "invalid int value" in cli("bundle", "export", src, str(small), "--since", "x", code=2)
