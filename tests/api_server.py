"""A real ``python -m pyapp serve-api`` in a subprocess on a free loopback port, for the API tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    """Poll ``url/health`` until it answers 200; the server's stderr (bytes or text pipe) if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            err = err.decode() if isinstance(err, bytes) else err
            raise RuntimeError(f"the server exited with {proc.returncode}: {err}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server at {url} did not answer within {timeout} s")


@contextmanager
def api_server(root: Path, *args: str, env: dict[str, str] | None = None, command: Sequence[str] = ()) -> Iterator[str]:
    """Start ``serve-api ROOT`` (plus ``args``) and yield its base URL; stopped (SIGTERM) afterwards."""
    port = free_port()
    argv = list(command) or [sys.executable, "-m", "pyapp", "serve-api", str(root)]
    argv += ["--port", str(port), "--log-level", "warning", *args]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
