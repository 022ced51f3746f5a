"""Generate ``pyapp/_unicode_tables.py`` by probing the Rust ``tokenizers`` crate over every code point.

Why: BertTokenizerFast's normaliser and pre-tokeniser use the crate's own (old, mixed-version) Unicode tables.
Rules written from Python's ``unicodedata`` disagree with it (and Pyodide's Python has yet another Unicode
version), so the pure-Python tokenizer ships these probed tables instead and never needs ``unicodedata``.

Run once per ``tokenizers`` upgrade:  ``python export/gen_unicode_tables.py [--check]``.
``--check`` regenerates in memory and fails if the committed file differs.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from tokenizers import __version__ as tokenizers_version
from tokenizers.normalizers import NFD, BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

OUT = Path(__file__).resolve().parent.parent / "pyapp" / "_unicode_tables.py"
MAX_CP = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def all_code_points() -> Iterable[int]:
    """Every Unicode scalar value (Rust strings cannot hold surrogates)."""
    for cp in range(MAX_CP):
        if not 0xD800 <= cp <= 0xDFFF:
            yield cp


def boundaries(members: Iterable[int]) -> list[int]:
    """Sorted code points -> flat [start0, stop0, start1, stop1, ...] (stop exclusive) for bisect lookups."""
    out: list[int] = []
    for cp in sorted(members):
        if out and out[-1] == cp:
            out[-1] = cp + 1
        else:
            out.extend((cp, cp + 1))
    return out


def hangul_nfd(cp: int) -> str:
    """Algorithmic Hangul syllable decomposition (Unicode 3.12), checked against the crate below."""
    s = cp - HANGUL_FIRST
    lead, vowel, trail = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return chr(lead) + chr(vowel) + (chr(trail) if trail != 0x11A7 else "")


def probe_ccc(nfd: Callable[[str], str], stable: list[int]) -> dict[int, int]:
    """Canonical combining classes as the crate sees them, found by watching NFD reorder pairs of chars.

    A pair ``x y`` of non-starters is swapped by NFD iff ccc(x) > ccc(y). References with known classes come
    from ``unicodedata`` (ccc never changes once assigned) and are themselves checked against the crate.
    """
    one, grave = "\u0334", "\u0300"  # classes 1 and 230 since Unicode 1.1
    if nfd(grave + one) != one + grave:
        raise SystemExit("the crate does not reorder U+0300 U+0334")
    refs: dict[int, str] = {1: one}
    for cp in range(0x300, MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        v = unicodedata.combining(c)
        # a reference must be a class the crate knows too (it may predate the char): it must sort after U+0334
        if v > 1 and v not in refs and unicodedata.decomposition(c) == "" and nfd(c) == c and nfd(c + one) == one + c:
            refs[v] = c
    values = sorted(refs)
    for lo, hi in zip(values, values[1:], strict=False):
        a, b = refs[lo], refs[hi]
        if nfd(b + a) != a + b or nfd(a + b) != a + b:
            raise SystemExit(f"reference classes disagree with the crate: {lo} vs {hi}")
    low, high = refs[values[0]], refs[values[-1]]
    out: dict[int, int] = {}
    for cp in stable:
        c = chr(cp)
        # non-zero iff it sorts before the highest reference or after the lowest one
        if nfd(high + c) != c + high and nfd(c + low) != low + c and c not in (low, high):
            continue
        cls = None
        for v in values:
            r = refs[v]
            if nfd(c + r) == c + r and nfd(r + c) == r + c:
                cls = v
                break
        if cls is None:
            raise SystemExit(f"U+{cp:04X}: combining class outside the reference set")
        out[cp] = cls
    return out


def build() -> str:
    """Probe the crate and return the text of the generated module."""
    clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    cjk = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    nfd_norm = NFD()
    pre = BertPreTokenizer()

    deleted: list[int] = []
    spaces: list[int] = []
    chinese: list[int] = []
    pre_space: list[int] = []
    punct: list[int] = []
    decomp: dict[int, str] = {}
    stripped: dict[int, str] = {}
    lowmap: dict[int, str] = {}
    stable: list[int] = []
    for cp in all_code_points():
        c = chr(cp)
        r = clean.normalize_str(c)
        if r == "":
            deleted.append(cp)
        elif r == " ":
            spaces.append(cp)
        elif r != c:
            raise SystemExit(f"U+{cp:04X}: unexpected clean_text result {r!r}")
        r = cjk.normalize_str(c)
        if r == f" {c} ":
            chinese.append(cp)
        elif r != c:
            raise SystemExit(f"U+{cp:04X}: unexpected chinese-chars result {r!r}")
        d = nfd_norm.normalize_str(c)
        if d != c:
            decomp[cp] = d
        else:
            stable.append(cp)
        stripped[cp] = strip.normalize_str(c)
        r = lower.normalize_str(c)
        if r != c:
            lowmap[cp] = r
        parts = [p for p, _ in pre.pre_tokenize_str("a" + c + "b")]
        if parts == ["a", "b"]:
            pre_space.append(cp)
        elif parts == ["a", c, "b"]:
            punct.append(cp)
        elif parts != ["a" + c + "b"]:
            raise SystemExit(f"U+{cp:04X}: unexpected pre-tokenizer result {parts!r}")

    # Nonspacing marks per the crate: NFD-stable chars that strip_accents deletes.
    marks = {cp for cp in stable if stripped[cp] == ""}
    for cp in stable:
        if stripped[cp] not in ("", chr(cp)):
            raise SystemExit(f"U+{cp:04X}: strip_accents changed an NFD-stable char")
    for cp, d in decomp.items():
        want = "".join(ch for ch in d if ord(ch) not in marks)
        if stripped[cp] != want:
            raise SystemExit(f"U+{cp:04X}: strip_accents is not NFD-then-drop-Mn ({stripped[cp]!r} vs {want!r})")
        if any(nfd_norm.normalize_str(ch) != ch for ch in d):
            raise SystemExit(f"U+{cp:04X}: decomposition is not fully decomposed")
    for cp in range(HANGUL_FIRST, HANGUL_LAST + 1):
        if decomp.pop(cp) != hangul_nfd(cp):
            raise SystemExit(f"U+{cp:04X}: Hangul decomposition differs from the algorithm")
    ccc = probe_ccc(nfd_norm.normalize_str, stable)
    single = {cp: ord(v) for cp, v in lowmap.items() if len(v) == 1}
    multi = {cp: v for cp, v in lowmap.items() if len(v) != 1}

    lines = [
        '"""Unicode tables of the Rust `tokenizers` crate (BertNormalizer / BertPreTokenizer), probed per code point.',
        "",
        f"GENERATED by export/gen_unicode_tables.py from tokenizers {tokenizers_version}; do not edit by hand.",
        "Range tables are flat [start, stop, start, stop, ...] lists (stop exclusive): a code point is a member",
        "when bisect_right(table, cp) is odd. Hangul syllables decompose algorithmically and are not in DECOMP.",
        '"""',
        "",
        f'TOKENIZERS_VERSION = "{tokenizers_version}"',
        "",
    ]

    def emit(name: str, comment: str, items: list[str], opener: str, closer: str) -> None:
        lines.append(f"# {comment}")
        lines.append(f"{name} = {opener}")
        row = "   "
        for it in items:
            if len(row) + len(it) + 2 > 118:
                lines.append(row.rstrip())
                row = "   "
            row += f" {it},"
        if row.strip():
            lines.append(row.rstrip())
        lines.append(closer)
        lines.append("")

    def tup(s: str) -> str:
        return "(" + ", ".join(str(ord(ch)) for ch in s) + ("," if len(s) == 1 else "") + ")"

    emit(
        "DELETED",
        "clean_text deletes: NUL, U+FFFD and the crate's Cc/Cf/Co/Cs except \\t \\n \\r",
        [str(x) for x in boundaries(deleted)],
        "[",
        "]",
    )
    emit(
        "SPACES",
        "clean_text maps to ' ' (the crate's White_Space plus \\t \\n \\r, minus deleted controls)",
        [str(x) for x in boundaries(spaces)],
        "[",
        "]",
    )
    emit("CHINESE", "handle_chinese_chars surrounds these with spaces", [str(x) for x in boundaries(chinese)], "[", "]")
    emit(
        "PRE_SPACES", "BertPreTokenizer splits on (and drops) these", [str(x) for x in boundaries(pre_space)], "[", "]"
    )
    emit("PUNCT", "BertPreTokenizer isolates each of these", [str(x) for x in boundaries(punct)], "[", "]")
    emit("MARKS", "strip_accents drops these (the crate's Mn) after NFD", [str(x) for x in boundaries(marks)], "[", "]")
    emit(
        "CCC",
        "canonical combining class (non-zero only), for NFD's canonical reordering",
        [f"{k}: {v}" for k, v in sorted(ccc.items())],
        "{",
        "}",
    )
    emit(
        "DECOMP",
        "full canonical decomposition (NFD) of one code point, as code points",
        [f"{k}: {tup(v)}" for k, v in sorted(decomp.items())],
        "{",
        "}",
    )
    emit(
        "LOWER",
        "char::to_lowercase when it is one other char",
        [f"{k}: {v}" for k, v in sorted(single.items())],
        "{",
        "}",
    )
    emit(
        "LOWER_MULTI",
        "char::to_lowercase when it is several chars",
        [f"{k}: {tup(v)}" for k, v in sorted(multi.items())],
        "{",
        "}",
    )
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the generated table module."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if the committed tables are out of date")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = build()
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{args.out} is out of date")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
