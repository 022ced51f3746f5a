"""bench/pg_bench.py runs end to end on a tiny workload against the session's server (slow: a bench)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_pg_bench_runs_and_reports_every_figure(pg_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "pg.json"
    args = ["--n", "3000", "--dims", "16", "--queries", "20", "--exact-queries", "5", "--ef", "10", "40"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "pg_bench.py"), *args, "--dsn", pg_dsn, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert {"pg_load_s", "pg_hnsw_build_s", "pg_hnsw", "pg_hnsw_filtered", "pg_exact", "local_exact"} <= set(result)
    assert result["pg_exact"]["recall@10"] == 1.0 and result["pg_hnsw"][-1]["recall@10"] >= 0.9
    assert result["pg_hnsw_filtered"]["recall@10"] >= 0.9
