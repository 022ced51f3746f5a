#!/usr/bin/env bash
# The test command: the default suite (everything but `slow`), in two pytest runs — the Python suite,
# then the Chromium suite (`browser`): Playwright's sync API keeps an event loop running in the test
# process for the whole session, which asyncio.run() in the Python tests cannot share.
# Extra arguments go to both runs.
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -m "not slow and not browser" "$@"
python_status=$?
python -m pytest -q -m "browser and not slow" "$@"
browser_status=$?
# pytest exits 5 when it collected nothing: a failure here, never a pass.
if [ $python_status -ne 0 ] || [ $browser_status -ne 0 ]; then
  echo "tests failed: python suite exit $python_status, browser suite exit $browser_status" >&2
  exit 1
fi
