#!/usr/bin/env bash
# A/B of two checkouts of clinvec on the core workload, interleaved so both sides see the same machine load.
# Usage: bench/ab_core.sh OLD_DIR [NEW_DIR=.] [ROUNDS=3] [SIZES="10000 50000"]
# e.g.   git worktree add /tmp/old 0447fd3 && bench/ab_core.sh /tmp/old
# Prints one line per run: side, N, insert/open CPU s, query/filtered/upsert CPU ms medians, 1-min load at start.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "${2:-.}" && pwd); rounds=${3:-3}
for _ in $(seq "$rounds"); do
  for side in old new; do
    dir=$old; [ "$side" = new ] && dir=$new
    for n in ${SIZES:-10000 50000}; do
      (cd "$dir" && PYTHONPATH="$dir" python bench/bench_core.py run "$n" 2>/dev/null) | SIDE=$side python -c '
import json, os, sys
d = json.loads(sys.stdin.readline())
print(os.environ["SIDE"], d["n"], "insert", d["insert_cpu_s"], "open", d["open_cpu_s"], "query", d["query_cpu_ms_median"],
      "filtered", d["filtered_query_cpu_ms_median"], "upsert", d["upsert_commit_cpu_ms_median"],
      "load", d["host"].get("loadavg_1m_at_start"))'
    done
  done
done
