"""What PostgreSQL can hold, checked before anything is sent, and text as full-text search sees it.

Why here: jsonb silently changes some JSON (NUL characters are refused, integers beyond float precision compare
like floats) and tsvector has hard size limits; PgIndex refuses the first with the caller's error class and keeps
keyword search within the second, so every write and filter goes through these few functions.
"""

from __future__ import annotations

from typing import Any

from ..errors import ClinvecError, InvalidInput
from ..keyword import tokenize

MAX_EXACT_INT = 2**53  # jsonb numbers compare as decimals; beyond this an int and a float could tie wrongly
MAX_LEXEME_BYTES = 2046  # PostgreSQL refuses longer words in a tsvector ("word is too long")
MAX_TSVECTOR_BYTES = 900_000  # under tsvector's 1 MB limit, with room for its own overhead


def jsonb_safe(value: Any, where: str, error: type[ClinvecError]) -> None:
    """What jsonb cannot hold, refused (``error``) rather than silently changed: NUL characters, and
    integers beyond +-2**53 (they would compare with floats unlike Python; see docs)."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = v.__class__
        if kind is str:
            if "\x00" in v:
                raise error(f"{where}: a NUL character cannot be stored in PostgreSQL")
        elif kind is int:
            if not -MAX_EXACT_INT <= v <= MAX_EXACT_INT:
                raise error(f"{where}: PgIndex stores integers within +-2**53 only, got {v}")
        elif kind is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
        elif kind is list:
            stack.extend(v)


def no_nul(value: str | None, what: str) -> None:
    """``InvalidInput`` when ``value`` holds a NUL character (PostgreSQL text cannot store one)."""
    if value is not None and "\x00" in value:
        raise InvalidInput(f"{what} holds a NUL character, which PostgreSQL text cannot store")


def _lexeme_ok(token: str) -> bool:
    return len(token) * 4 <= MAX_LEXEME_BYTES or len(token.encode("utf-8")) <= MAX_LEXEME_BYTES


def _quote(token: str) -> str:
    return token.replace("\\", "\\\\").replace("'", "''")


def terms(text: str | None) -> str | None:
    """The text's words as ``tokenize`` finds them, as ``::tsvector`` input with positions (so ``ts_rank``
    sees how often a word occurs). PostgreSQL's limits apply: 256 positions per word, each at most 16,383,
    words up to 2,046 bytes (longer ones, such as pasted base64, are left out of keyword search) and a
    tsvector under 1 MB (a text with more distinct words is searchable by its first ones)."""
    if text is None:
        return None
    positions: dict[str, list[str]] = {}
    size = 0
    for n, token in enumerate(tokenize(text), start=1):
        seen = positions.get(token)
        if seen is None:
            if not _lexeme_ok(token):
                continue
            size += len(token.encode("utf-8")) + 16
            if size > MAX_TSVECTOR_BYTES:
                break
            seen = positions[token] = []
        if len(seen) < 256:
            seen.append(str(min(n, 16383)))
            size += 6
    return " ".join(f"'{_quote(t)}':{','.join(p)}" for t, p in positions.items())


def tsquery(text: str) -> str | None:
    """Any of the query's words (BM25's OR semantics), as a ``::tsquery`` parameter; None when it has none."""
    words = [w for w in dict.fromkeys(tokenize(text)) if _lexeme_ok(w)]
    if not words:
        return None
    return " | ".join(f"'{_quote(t)}'" for t in words)
