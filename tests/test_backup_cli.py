"""Bundles on the command line, as a script would use them: real subprocesses, file indexes, exit codes."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pyapp import LocalIndex
from pyapp.embed.hashing import HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
DIMS = 16


def cli(*args: str, code: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pyapp", "-q", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def _last_json(proc: subprocess.CompletedProcess) -> Any:
    return json.loads(proc.stdout.strip().splitlines()[-1])


async def _make(path: str, seed: int, n: int = 25) -> None:
    index = await LocalIndex.create(path, indexed=["ward"], embedder=HashingEmbedder(dims=DIMS, seed=seed))
    wards = ["ED", "ICU"]
    await index.insert_many(
        [{"id": f"n{i}", "text": f"note {i} über dyspnoea", "metadata": {"ward": wards[i % 2]}} for i in range(n)]
    )
    await index.delete("n3")
    await index.upsert("n1", text="edited", metadata={"ward": "ED", "v": 2})
    await index.close()


async def _dump(path: str) -> tuple[dict[str, Any], list[tuple[str, Any, Any, list[float]]]]:
    index = await LocalIndex.open(path, read_only=True)
    try:
        items = [(it.id, it.metadata, it.text, it.vector) async for batch in index.iter_items() for it in batch]
        return index.manifest, items
    finally:
        await index.close()


def test_export_then_import_create_round_trips_exactly(tmp_path):
    src, copy, alias = str(tmp_path / "src"), str(tmp_path / "copy"), str(tmp_path / "alias")
    asyncio.run(_make(src, seed=1))
    out = tmp_path / "backup.clinvec"
    assert _last_json(cli("export", src, str(out))) == {"exported": 24, "path": str(out)}
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip, chosen by the extension
    assert _last_json(cli("import", copy, str(out), "--create"))["imported"] == 24
    (manifest, want), (copied, got) = asyncio.run(_dump(src)), asyncio.run(_dump(copy))
    assert got == want
    for key in ("dims", "indexed", "bm25", "embedder"):
        assert copied[key] == manifest[key], key
    # the aliases issue 11 names, and --format bundle for a file without the extension
    other = tmp_path / "backup.bin"
    cli("bundle", "export", src, str(other))
    cli("bundle", "import", alias, str(other), "--create")
    assert asyncio.run(_dump(alias))[1] == want
    # text queries on the copy embed with the recorded model, found again from its identity
    hits = [json.loads(line) for line in cli("query", copy, "--text", "edited", "--top-k", "1").stdout.splitlines()]
    assert hits[0]["id"] == "n1"


def test_altered_truncated_and_foreign_bundles_are_refused(tmp_path):
    src, target, foreign = str(tmp_path / "src"), str(tmp_path / "target"), str(tmp_path / "foreign")
    asyncio.run(_make(src, seed=1))
    asyncio.run(_make(target, seed=1, n=4))
    asyncio.run(_make(foreign, seed=2, n=4))
    good = tmp_path / "good.clinvec"
    cli("export", src, str(good))
    data = good.read_bytes()
    raw = bytearray(gzip.decompress(data))
    raw[raw.index(b"edited")] = ord("E")
    altered = tmp_path / "altered.clinvec"
    altered.write_bytes(gzip.compress(bytes(raw)))
    truncated = tmp_path / "truncated.clinvec"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    before = asyncio.run(_dump(target))
    assert "sha256" in cli("import", target, str(altered), "--upsert", code=1).stderr
    assert "truncated" in cli("import", target, str(truncated), "--upsert", code=1).stderr
    assert "already exists" in cli("import", target, str(good), code=1).stderr  # ids n0.. exist: insert refuses
    assert "would not compare" in cli("bundle", "import", foreign, str(good), "--upsert", code=1).stderr
    assert "exists" in cli("import", target, str(good), "--create", code=1).stderr
    cli("import", str(tmp_path / "never"), str(truncated), "--create", code=1)
    assert not (tmp_path / "never").exists()  # a failed --create leaves nothing behind
    assert asyncio.run(_dump(target)) == before
    assert _last_json(cli("import", target, str(good), "--upsert"))["imported"] == 24
    assert len(asyncio.run(_dump(target))[1]) == 24  # merged: the 3 target notes were all in the bundle
