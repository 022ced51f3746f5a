#!/usr/bin/env bash
# Installs everything the app, the export and the test suite need, from PyPI, npm and Debian only.
# Safe to re-run: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() { python -m pip install -q --disable-pip-version-check "$@"; }

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip_install torch==2.13.0
pip_install -e ".[dev]"
