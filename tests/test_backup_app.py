"""The page's backup rules (pyapp.bundle.backup) on CPython: the file name, the plan a user confirms, merge."""

from __future__ import annotations

import pytest

from pyapp import LocalIndex
from pyapp.bundle import BundleError
from pyapp.bundle.backup import backup_bytes, backup_name, restore_bytes, restore_plan
from pyapp.embed.hashing import HashingEmbedder
from pyapp.notes import NotesService

DAY = 1_700_000_000  # 2023-11-14 UTC


@pytest.mark.parametrize(
    ("location", "name"),
    [
        ("notes-minilm-int8", "notes-minilm-int8-2023-11-14.clinvec"),
        ("/srv/indexes/ward 7/", "ward-7-2023-11-14.clinvec"),
        ("memory://..", "clinvec-2023-11-14.clinvec"),
        ("C:\\data\\Notizen äöü", "Notizen-2023-11-14.clinvec"),
    ],
)
def test_backup_name_is_the_index_and_the_day(location, name):
    assert backup_name(location, DAY) == name


async def _service(location: str, seed: int = 0) -> NotesService:
    return await NotesService.open(location, HashingEmbedder(dims=64, seed=seed))


async def test_plan_says_what_a_merge_will_do_and_restore_merges():
    source = await _service("memory://app-src")
    for text in ("chest pain at rest", "fractured radius", "sepsis, lactate 4"):
        await source.add({"text": text, "metadata": {"ward": "ED"}})
    data, info = await backup_bytes(source.index)
    assert info["items"] == 3 and info["bytes"] == len(data) and info["name"].startswith("app-src-")

    empty = await _service("memory://app-empty")
    plan = await restore_plan(empty.index, data)
    assert (plan["new"], plan["overwrite"], plan["kept"], plan["confirm"]) == (3, 0, 0, False)
    assert (await restore_bytes(empty.index, data))["items"] == 3

    await source.add({"text": "added after the backup"})
    first = (await source.index.list(limit=1))[0]
    await source.index.update_metadata(first.id, {"ward": "changed"})
    plan = await restore_plan(source.index, data)
    assert (plan["new"], plan["overwrite"], plan["kept"], plan["confirm"]) == (0, 3, 1, True)
    assert "3 will REPLACE" in plan["message"] and "1 note item here not in the backup stay" in plan["message"]
    outcome = await restore_bytes(source.index, data)
    assert outcome["restored"] == 3 and outcome["items"] == 4  # the newer note stays
    assert (await source.index.get(first.id)).metadata["ward"] == "ED"  # the backup's version is back


async def test_plan_refuses_another_model_before_anything_is_asked():
    source = await _service("memory://app-model-a", seed=1)
    await source.add({"text": "note"})
    data, _ = await backup_bytes(source.index)
    other = await _service("memory://app-model-b", seed=2)
    with pytest.raises(BundleError, match="would not compare"):
        await restore_plan(other.index, data)
    with pytest.raises(BundleError, match="would not compare"):
        await restore_bytes(other.index, data)
    assert await other.index.count() == 0
    with pytest.raises(BundleError, match="not gzip"):
        await restore_plan(other.index, b"plain text, not a backup")
    index = await LocalIndex.create("memory://app-dims", dims=8)
    with pytest.raises(BundleError, match="64-d vectors; this index holds 8-d"):
        await restore_plan(index, data)
