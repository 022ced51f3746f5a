"""Abbreviation query sets: retrieval-set queries whose spelled-out terms are replaced by their abbreviations.

Why: the terminology sets (``_beir.py``) query with full words ("Congestive heart failure"); clinicians type
"CHF". Replacing, in each query, every phrase that is a meaning in the abbreviation list (``pyapp.abbreviations``)
by its abbreviation gives the queries a clinician would type, with the set's own relevance judgements.

Rules: a meaning is matched case-insensitively on whole tokens (``pyapp.keyword.tokenize``'s rule), longest
first, never overlapping; it must be longer than its abbreviation; of several abbreviations with one meaning the
shortest (then alphabetically first) is used; one-character and multi-word abbreviations are never used, as in
expansion. A query with no replacement is left out. By construction every abbreviated query contains an
abbreviation that the list expands back (among its other meanings, when it is ambiguous): the set measures how
much expansion recovers and what ambiguous meanings cost, not how often real queries hold abbreviations.
"""

from __future__ import annotations

import re

from _beir import Dataset

from pyapp.abbreviations import AbbreviationTable, load_table


def reverse_map(table: AbbreviationTable) -> dict[str, str]:
    """Meaning (lowercase, single-spaced) -> the abbreviation to write for it."""
    out: dict[str, str] = {}
    for abbr, meanings in sorted(table.exact.items(), key=lambda kv: (len(kv[0]), kv[0])):
        for meaning in meanings:
            key = " ".join(meaning.casefold().split())
            if len(key) > len(abbr) and key not in out:
                out[key] = abbr
    return out


def _pattern(reverse: dict[str, str]) -> re.Pattern[str]:
    phrases = sorted(reverse, key=len, reverse=True)  # longest first: "congestive heart failure" before "heart failure"
    alternatives = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in phrases)
    return re.compile(rf"(?<![\w])(?:{alternatives})(?![\w])", re.IGNORECASE)


def abbreviate_text(text: str, reverse: dict[str, str], pattern: re.Pattern[str]) -> tuple[str, int]:
    """``text`` with each listed meaning replaced by its abbreviation, and how many were replaced."""
    count = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return reverse[" ".join(match.group().casefold().split())]

    return pattern.sub(swap, text), count


def abbreviated_set(ds: Dataset) -> tuple[Dataset, dict[str, str]]:
    """The abbreviated queries (ids ``<qid>~ab``) over the same corpus and judgements, and each one's original."""
    reverse = reverse_map(load_table())
    pattern = _pattern(reverse)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    original: dict[str, str] = {}
    for qid, text in ds.queries.items():
        short, count = abbreviate_text(text, reverse, pattern)
        if count:
            queries[qid + "~ab"] = short
            qrels[qid + "~ab"] = ds.qrels[qid]
            original[qid + "~ab"] = qid
    info = dict(ds.info)
    info["abbreviated"] = {"from_queries": len(ds.queries), "queries": len(queries)}
    return Dataset(ds.name + "-abbrev", ds.corpus, queries, qrels, info), original
