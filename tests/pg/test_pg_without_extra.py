"""Without the ``pg`` extra, ``import pyapp`` still works and PgIndex says what to install (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK = """
import runpy, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "psycopg":
            raise ModuleNotFoundError("No module named 'psycopg' (blocked by the test)", name=name)
sys.meta_path.insert(0, Blocker())
sys.argv = ["pyapp", "pg", "stats", "postgresql://nowhere/db", "notes"]
runpy.run_module("pyapp", run_name="__main__")
"""


def test_pg_commands_without_psycopg_name_the_extra() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "pip install 'clinvec[pg]'" in done.stderr and "Traceback" not in done.stderr
