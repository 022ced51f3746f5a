"""``test_history_property`` with IVF partitions from the 2nd item on and one-list probes: answers still never
depend on history (live, reopened, compacted), because the partitions a reopen restores (snapshot + replayed
log) are the live ones, and retraining happens only in commits, each followed by a snapshot."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_history_property import _run, op

from pyapp.kernels import ivf


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=1, max_size=25), build_at=st.integers(0, 25))
def test_partitioned_answers_agree_live_reopened_and_compacted(
    ops: list[tuple[Any, ...]], build_at: int, tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivf, "DEFAULT_THRESHOLD", 2)
        patch.setattr(ivf, "MIN_CANDIDATES", 1)
        patch.setattr(ivf, "PER_K", 1)
        patch.setattr(ivf, "PROBE_SCALE", 0.0)
        asyncio.run(_run(str(tmp_path / uuid.uuid4().hex), ops, build_at))
        asyncio.run(_run(f"memory://history-ivf-{uuid.uuid4().hex}", ops, build_at))
