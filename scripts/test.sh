#!/usr/bin/env bash
# The test command: ruff check + ruff format --check, then the default suite (everything but `slow`)
# in two pytest runs — the Python suite,
# then the Chromium suite (`browser`): Playwright's sync API keeps an event loop running in the test
# process for the whole session, which asyncio.run() in the Python tests cannot share.
# Extra arguments go to both runs.
set -uo pipefail
cd "$(dirname "$0")/.."
# Lint and format first: a rule broken anywhere fails the run (generated tables are excluded in pyproject.toml).
python -m ruff check . && python -m ruff format --check .
lint_status=$?
python -m pytest -q -m "not slow and not browser" "$@"
python_status=$?
python -m pytest -q -m "browser and not slow" "$@"
browser_status=$?
# pytest exits 5 when it collected nothing: a failure here, never a pass.
if [ $lint_status -ne 0 ] || [ $python_status -ne 0 ] || [ $browser_status -ne 0 ]; then
  echo "tests failed: ruff exit $lint_status, python suite exit $python_status, browser suite exit $browser_status" >&2
  exit 1
fi
