#!/usr/bin/env bash
# The test command: the default suite (not the slow one). Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q "$@"
status=$?
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
exit $status
