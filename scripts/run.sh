#!/usr/bin/env bash
# Runs the app: installs the package if needed, then the offline demo over the bundled notes.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import pyapp, numpy" 2>/dev/null || python -m pip install -q --disable-pip-version-check -e .
exec python -m pyapp demo "$@"
