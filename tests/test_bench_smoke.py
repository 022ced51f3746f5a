"""Keeps the core benchmark from rotting: its workload must stay bit-identical to vectra's bench.mjs,
and ``bench_core.py run`` must still build, reopen, query and upsert a small index and print sane JSON."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _workload as wl  # noqa: E402
import bench_core  # noqa: E402

# Reference values printed by node with bench.mjs's own mulberry32 / Math.fround code (v20).
NODE_FIRST_DRAWS_SEED_42 = [
    0.6011037519201636,
    0.44829055899754167,
    0.8524657934904099,
    0.6697340414393693,
    0.17481389874592423,
]
NODE_SHA256_DATA_1000x768 = "0faf3ff53a316963c9e869beec1d9308cd37317f65016b3f41293e9683fc5d58"
NODE_SHA256_QUERIES_100x768 = "b4f203628c52aaee827ce9e9067f650c2c8e387f01bb4c4d4ff444ba663b956f"


def test_prng_matches_node_bit_for_bit() -> None:
    scalar = wl.Mulberry32(42)
    assert [scalar() for _ in range(5)] == NODE_FIRST_DRAWS_SEED_42
    assert wl.draws(42, 0, 5).tolist() == NODE_FIRST_DRAWS_SEED_42
    data = wl.vectors(42, 1000, 768)
    assert hashlib.sha256(data.astype("<f4").tobytes()).hexdigest() == NODE_SHA256_DATA_1000x768
    queries = wl.query_vectors(42, 100, 768)
    assert hashlib.sha256(queries.astype("<f4").tobytes()).hexdigest() == NODE_SHA256_QUERIES_100x768


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), start=st.integers(0, 5000), count=st.integers(1, 300))
def test_vectorised_stream_equals_scalar_reference(seed: int, start: int, count: int) -> None:
    scalar = wl.Mulberry32(seed)
    for _ in range(start):
        scalar()
    assert wl.draws(seed, start, count).tolist() == [scalar() for _ in range(count)]


def test_vectors_are_chunk_and_offset_independent() -> None:
    whole = wl.vectors(42, 40, 768)
    assert (wl.vectors(42, 15, 768, first=25) == whole[25:]).all()
    assert whole.min() >= -1 and whole.max() < 1


def test_metadata_matches_bench_mjs() -> None:
    assert wl.metadata(1013) == {"doc": "doc-13", "category": "c3", "year": 2013, "flag": False}
    assert wl.metadata(0) == {"doc": "doc-0", "category": "c0", "year": 2000, "flag": True}
    assert sum(wl.metadata(i)["category"] == "c3" for i in range(1000)) == 100


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert bench_core.pct(values, 95) == 95
    assert bench_core.pct([3.0], 95) == 3.0
    assert bench_core.pct([1, 2], 50) == 1


def test_clinvec_side_runs_and_reports_sane_json() -> None:
    cmd = [sys.executable, str(BENCH / "bench_core.py"), "run", "300", "--queries", "5", "--upserts", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "insert_cpu_s",
        "open_s",
        "query_cpu_ms_median",
        "filtered_query_ms_p95",
        "upsert_commit_ms_median",
        "disk_bytes",
        "peak_rss_query_mb",
        "host",
    ):
        assert key in result, key
    assert not any(key.endswith("_error") for key in result), result
    assert result["tool"] == "clinvec" and result["n"] == 300 and result["variant"] in ("plain", "plain+1thr")
    assert result["items_loaded"] == 300 and result["count_after_upserts"] == 300
    assert result["sanity_top1_ok"] is True
    assert result["filter_matches"] == 30 and result["filtered_mean_results"] == 10
    assert 0 < result["query_ms_median"] <= result["query_ms_p95"]
    assert 0 < result["upsert_commit_ms_median"] <= result["upsert_commit_ms_p95"]
    assert result["disk_bytes"] >= 300 * 768 * 4
    assert 0 < result["rss_query_mb"] <= result["peak_rss_query_mb"] < 2000


def test_table_reports_ratios_against_vectra() -> None:
    clinvec = {
        "tool": "clinvec",
        "variant": "plain",
        "n": 1000,
        "insert_cpu_s": 0.5,
        "query_cpu_ms_median": 1.0,
        "host": {"loadavg_1m_at_start": 1.0},
    }
    vectra = {
        "tool": "vectra",
        "codec": "json",
        "n": 1000,
        "insert_cpu_s": 4.0,
        "save_cpu_s": 1.0,
        "query_cpu_ms_median": 20.0,
        "host": {"loadavg_1m_at_start": 1.0},
    }
    text = bench_core.table([vectra, clinvec])
    insert_row = next(line for line in text.splitlines() if line.startswith("| insert"))
    assert "| 0.1 | 10x |" in insert_row  # 0.5 / (4.0 + 1.0): vectra's save counts, as our commit does
    query_row = next(line for line in text.splitlines() if line.startswith("| query, CPU"))
    assert "| 0.05 | 20x |" in query_row


def test_summary_puts_each_runs_target_ratios_in_one_row() -> None:
    def run(vectra_insert: float) -> list[dict]:
        records = []
        for n, ours_q, theirs_q in ((1000, 0.2, 0.3), (10_000, 1.0, 15.0), (50_000, 6.0, 100.0)):
            records.append(
                {
                    "tool": "vectra",
                    "n": n,
                    "query_cpu_ms_median": theirs_q,
                    "insert_cpu_s": vectra_insert,
                    "save_cpu_s": 2.0,
                    "filtered_query_cpu_ms_median": 0.3,
                }
            )
            records.append(
                {
                    "tool": "clinvec",
                    "variant": "plain",
                    "n": n,
                    "query_cpu_ms_median": ours_q,
                    "insert_cpu_s": 1.0,
                    "filtered_query_cpu_ms_median": 0.15,
                    "open_cpu_s": 0.3,
                    "open_s": 0.25,
                }
            )
        return records

    rows = bench_core.summary({"a.jsonl": run(98.0), "b.jsonl": run(48.0), "c.jsonl": run(98.0)[:2]}).splitlines()
    assert len(rows) == 4  # header, rule, a, b: c lacks 10k and 50k and is left out
    assert rows[2].startswith("| a.jsonl |") and "**15.0x**" in rows[2] and "**100x**" in rows[2]
    assert "**50x**" in rows[3] and rows[3].endswith("| 2.0x |")


@pytest.mark.parametrize("n", [0, -3])
def test_rejects_non_positive_sizes(n: int) -> None:
    with pytest.raises(SystemExit):
        bench_core.parse(["run", str(n)])
