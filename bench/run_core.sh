#!/usr/bin/env bash
# The core benchmark matrix, clinvec and vectra 0.15.0 side by side in one invocation (see bench/README.md).
# Usage: bench/run_core.sh [OUT.jsonl]        env: SIZES="1000 10000 50000"  BIG=200000  PYTHON=python
# Needs node (vectra is installed on first use by ../shared/peers/vectra/setup.sh) and ../shared beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results/core-$(date -u +%Y%m%d).jsonl}
mkdir -p "$(dirname "$out")"
py=${PYTHON:-python}
echo "# $(date -u +%FT%TZ) $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in ${SIZES:-1000 10000 50000}; do
  "$py" bench/bench_core.py compare "$n" --out "$out" >/dev/null
done
# persist + reopen at a size vectra cannot save (its JSON fails at 50k)
"$py" bench/bench_core.py compare "${BIG:-200000}" --no-vectra --variants plain --out "$out" >/dev/null
"$py" bench/bench_core.py table "$out"
