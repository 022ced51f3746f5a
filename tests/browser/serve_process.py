"""``serve.py`` in a subprocess on a free loopback port: the one way the browser tests (and the contract
suite's page) start the page's server, with or without the HTTP API (``--api ROOT``).

Why one helper: the start (read the announced address, fail with the server's stderr), and the stop
(SIGTERM, then kill) were copied into four fixtures that had drifted in how they parsed the address.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 15.0


class ServePy:
    """``serve.py --no-build --quiet`` plus ``args`` on a free port; ``url`` is the announced base URL
    (``http://127.0.0.1:PORT/``); ``stop()`` ends it, also mid-test (a no-op once it has ended)."""

    def __init__(self, *args: str) -> None:
        argv = [sys.executable, str(ROOT / "serve.py"), "--no-build", "--quiet", "--host", "127.0.0.1"]
        self.proc = subprocess.Popen(
            [*argv, "--port", "0", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if " at http://" not in line:
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"serve.py {' '.join(args)} did not start: {line}{err}")
        self.url = line.split(" at ", 1)[1].split()[0]
        if "--api" in args:  # the port is announced before uvicorn listens
            if str(ROOT / "tests") not in sys.path:
                sys.path.insert(0, str(ROOT / "tests"))
            from api_server import wait_until_up

            wait_until_up(self.url + "api", self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
