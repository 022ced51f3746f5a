"""bench/browser_peers.py must keep running: every peer on a tiny workload, one command, sane report.

Slow (a Chromium session, the app's boot and four pages), so marked ``slow``; it needs bench/peers/node_modules
(``scripts/setup.sh`` runs ``npm ci`` there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.skipif(not (ROOT / "bench/peers/node_modules/.bin/esbuild").exists(), reason="npm ci in bench/peers")
def test_every_peer_runs_and_the_exact_ones_find_the_exact_top10(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    cmd = [sys.executable, "bench/browser_peers.py", "--sizes", "300x16", "--no-write", "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=900, capture_output=True)
    runs = json.loads(out.read_text())["sizes"]["300x16"]
    assert set(runs) == {"clinvec", "orama", "mememo", "vectra"}
    for peer, r in runs.items():
        assert "error" not in r, (peer, r.get("error"))
        assert len(r["query_ms"]) == 100 and r["reopen_ms"] > 0, peer
        # insert_many timed 5 times (the default), a fresh database each time, by the same rule for every peer
        assert len(r["insert_many_ms"]) == 5 and min(r["insert_many_ms"]) > 0, peer
        assert len(r["load_before"]) == 3, peer
    for peer in ("clinvec", "orama", "vectra"):  # exact search: the numpy truth, every time
        assert runs[peer]["recall"] == 1.0, peer
        # the filtered answers too (Orama's differed from the exact ones in 4 of 1,000 places here once: not exact
        # there, not investigated; clinvec's must be exact)
        assert runs[peer]["filtered_recall"] >= (1.0 if peer == "clinvec" else 0.95), peer
    assert runs["clinvec"]["count"] == 305  # 300 + 5 durable single inserts, read back after a reload
    assert len(runs["clinvec"]["filtered_ms"]) == len(runs["orama"]["filtered_ms"]) == 100
