"""Which Chromium the browser tests and the browser benchmarks drive, and with which flags: one definition.

Never ``playwright install``: the browser is Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``),
or ``CLINVEC_CHROMIUM``. The flags avoid hangs on a closed network (see shared/notes/browser-runtime.md).
"""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("CLINVEC_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
