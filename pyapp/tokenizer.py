"""Pure-Python BERT WordPiece tokenizer, token-for-token equal to Hugging Face ``BertTokenizerFast``.

Why a port: the browser build (Pyodide) cannot load the Rust ``tokenizers`` wheel, and the server must produce
exactly the ids the browser does. Equality includes ids, character offsets, truncation and padding. The Unicode
behaviour comes from tables probed out of the Rust crate (``_unicode_tables``), never from ``unicodedata``, so
Pyodide's newer Python gives the same answer as CPython 3.11. Only the standard library is used.

Pipeline (as in the crate): special tokens split the raw text -> BertNormalizer (clean text, pad CJK ideographs
with spaces, NFD + drop Mn when stripping accents, char-wise lowercase) -> BertPreTokenizer (split on whitespace,
isolate punctuation) -> greedy longest-match WordPiece -> ``[CLS] ... [SEP]``.
"""

from __future__ import annotations

import io
import json
import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _unicode_tables as _T
from .errors import InvalidInput

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_INPUT_CHARS_PER_WORD = 100  # WordPiece: longer words become one [UNK]
CONTINUATION = "##"
_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_WORD_CACHE_LIMIT = 100_000  # memo bounds: real text repeats few words and chars; random input must not grow RAM
_CHAR_CACHE_LIMIT = 20_000
_DELETED, _CJK, _NON_STARTER = 1, 2, 4  # per-char flags of the cached normaliser


def _member(table: list[int], cp: int) -> bool:
    """Whether ``cp`` lies in a flat [start, stop, ...] range table."""
    return bisect_right(table, cp) & 1 == 1


def _char_class(table: list[int]) -> str:
    """A regex character-class body for a flat range table (built once at import)."""
    parts = []
    for start, stop in zip(table[0::2], table[1::2], strict=True):
        last = stop - 1
        parts.append(f"\\U{start:08x}" if start == last else f"\\U{start:08x}-\\U{last:08x}")
    return "".join(parts)


_PUNCT = _char_class(_T.PUNCT)
_SPACE = _char_class(_T.PRE_SPACES)
# BertPreTokenizer: whitespace splits and is dropped, each punctuation char is its own word.
_WORD_RE = re.compile(f"[{_PUNCT}]|[^{_SPACE}{_PUNCT}]+")
_SPECIAL_RE_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}
# ASCII fast path of clean_text: drop the deleted controls, turn \t \n \r into spaces.
_ASCII_CLEAN = {cp: None for cp in range(128) if _member(_T.DELETED, cp)}
_ASCII_CLEAN.update({cp: " " for cp in range(128) if _member(_T.SPACES, cp)})


def _vocab_lines(text: str) -> list[str]:
    """vocab.txt tokens as transformers' load_vocab reads them: universal newlines, only "\n" stripped
    (so U+0085 or U+2028 inside a token do not split it, unlike ``str.splitlines``)."""
    return [line.rstrip("\n") for line in io.StringIO(text, newline=None).readlines()]


def pre_tokenize(normalized: str) -> list[tuple[str, int, int]]:
    """BertPreTokenizer: words of already-normalised text with (start, end) char offsets into it."""
    return [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(normalized)]


def _decompose(cp: int) -> tuple[int, ...]:
    """Full canonical decomposition of one code point (NFD, before reordering)."""
    if _HANGUL_FIRST <= cp <= _HANGUL_LAST:
        s = cp - _HANGUL_FIRST
        lead, vowel, trail = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
        return (lead, vowel) if trail == 0x11A7 else (lead, vowel, trail)
    return _T.DECOMP.get(cp, (cp,))


def _lower(cp: int) -> tuple[int, ...]:
    """Rust's ``char::to_lowercase`` (char-wise: no final-sigma rule, unlike ``str.lower``)."""
    one = _T.LOWER.get(cp)
    if one is not None:
        return (one,)
    return _T.LOWER_MULTI.get(cp, (cp,))


@dataclass
class Encoding:
    """One model input row; ``offsets`` are (start, end) character offsets into the text, (0, 0) for specials."""

    input_ids: list[int]
    attention_mask: list[int]
    token_type_ids: list[int]
    tokens: list[str] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)


class WordPieceTokenizer:
    """BertTokenizerFast-equivalent tokenizer over a ``vocab.txt``.

    ``strip_accents=None`` follows ``do_lower_case`` (the crate's default); pass a bool to force it.
    """

    def __init__(
        self,
        vocab_path: str | os.PathLike[str],
        do_lower_case: bool,
        max_length: int = 512,
        strip_accents: bool | None = None,
    ) -> None:
        with open(vocab_path, encoding="utf-8") as fh:
            tokens = _vocab_lines(fh.read())
        self._setup(tokens, do_lower_case, max_length, strip_accents)

    @classmethod
    def from_vocab(
        cls,
        tokens: Iterable[str],
        do_lower_case: bool,
        max_length: int = 512,
        strip_accents: bool | None = None,
    ) -> WordPieceTokenizer:
        """Build from vocabulary tokens in id order (tests, or a vocab already in memory)."""
        self = cls.__new__(cls)
        self._setup(list(tokens), do_lower_case, max_length, strip_accents)
        return self

    @classmethod
    def from_bundle(cls, bundle_dir: str | os.PathLike[str]) -> WordPieceTokenizer:
        """Build from an exported model bundle on disk: its ``manifest.json`` names the vocab and the settings."""
        with open(os.path.join(bundle_dir, "manifest.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        with open(os.path.join(bundle_dir, manifest.get("vocab_file") or "vocab.txt"), encoding="utf-8") as fh:
            vocab_text = fh.read()
        return cls.from_manifest(manifest, vocab_text)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], vocab_text: str) -> WordPieceTokenizer:
        """Build from a bundle's parsed manifest and vocab.txt text (the browser fetches both, no filesystem)."""
        lower = manifest.get("do_lower_case")
        if not isinstance(lower, bool):
            raise InvalidInput("manifest.json lacks a boolean do_lower_case")
        strip = manifest.get("strip_accents")
        return cls.from_vocab(
            _vocab_lines(vocab_text),
            do_lower_case=lower,
            max_length=int(manifest.get("max_seq_length") or 512),
            strip_accents=strip if isinstance(strip, bool) else None,
        )

    def _setup(self, tokens: list[str], do_lower_case: bool, max_length: int, strip_accents: bool | None) -> None:
        if max_length < 2:
            raise InvalidInput(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        vocab: dict[str, int] = {}
        for i, tok in enumerate(tokens):
            vocab[tok] = i  # a duplicated line keeps its last id, as transformers does
        missing = [t for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]") if t not in vocab]
        if missing:
            raise InvalidInput(f"vocabulary lacks {missing}: not a BERT WordPiece vocab")
        self._vocab = vocab
        self._tokens = tokens
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = self.do_lower_case if strip_accents is None else bool(strip_accents)
        self.max_length = int(max_length)
        self.unk_id = vocab["[UNK]"]
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.pad_id = vocab["[PAD]"]
        specials = tuple(t for t in SPECIAL_TOKENS if t in vocab)
        self._specials = specials
        pattern = _SPECIAL_RE_CACHE.get(specials)
        if pattern is None:
            # longest first, so the alternation is leftmost-longest like the crate's Aho-Corasick matcher
            pattern = re.compile("|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True)))
            _SPECIAL_RE_CACHE[specials] = pattern
        self._special_re = pattern
        plain = [t for t in vocab if not t.startswith(CONTINUATION)]
        cont = [t for t in vocab if t.startswith(CONTINUATION)]
        self._max_piece = max((len(t) for t in plain), default=1)
        self._max_cont = max((len(t) - len(CONTINUATION) for t in cont), default=0)
        self._char_cache: dict[str, tuple[str, int, tuple[int, ...]]] = {}
        self._word_cache: dict[str, tuple[tuple[int, int, int], ...] | None] = {}

    # ----------------------------------------------------------------- vocabulary

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens (what ``BertTokenizerFast.vocab_size`` reports)."""
        return len(self._vocab)

    def token_to_id(self, token: str) -> int | None:
        """Id of ``token``, or None when it is not in the vocabulary."""
        return self._vocab.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        """Token for ``token_id`` (the vocab.txt line), or None when out of range."""
        if 0 <= token_id < len(self._tokens):
            return self._tokens[token_id]
        return None

    # ----------------------------------------------------------------- public API

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` without [CLS]/[SEP] and without truncation."""
        tokens = self._tokens
        return [tokens[i] for i, _, _ in self._pieces(text)]

    def tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """Word pieces with (start, end) character offsets into ``text`` (for chunking by characters)."""
        tokens = self._tokens
        return [(tokens[i], s, e) for i, s, e in self._pieces(text)]

    def encode(self, text: str, max_length: int | None = None) -> Encoding:
        """``[CLS] pieces [SEP]``, truncated to ``max_length`` tokens including the two specials."""
        limit = self.max_length if max_length is None else int(max_length)
        if limit < 2:
            raise InvalidInput(f"max_length must leave room for [CLS] and [SEP], got {limit}")
        pieces = self._pieces(text)[: limit - 2]
        ids = [self.cls_id, *(p[0] for p in pieces), self.sep_id]
        n = len(ids)
        tokens = self._tokens
        return Encoding(
            input_ids=ids,
            attention_mask=[1] * n,
            token_type_ids=[0] * n,
            tokens=[tokens[i] for i in ids],
            offsets=[(0, 0), *((s, e) for _, s, e in pieces), (0, 0)],
        )

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[Encoding]:
        """Encode each text and right-pad with [PAD] (attention 0) to the longest row of the batch."""
        rows = [self.encode(t, max_length) for t in texts]
        width = max((len(r) for r in rows), default=0)
        pad_token = self._tokens[self.pad_id]
        for r in rows:
            extra = width - len(r)
            if extra:
                r.input_ids.extend([self.pad_id] * extra)
                r.attention_mask.extend([0] * extra)
                r.token_type_ids.extend([0] * extra)
                r.tokens.extend([pad_token] * extra)
                r.offsets.extend([(0, 0)] * extra)
        return rows

    def normalize(self, text: str) -> str:
        """BertNormalizer output for ``text`` (no special-token split), as ``normalizer.normalize_str`` gives."""
        return self._normalize(text)[0]

    # ----------------------------------------------------------------- pipeline

    def _pieces(self, text: str) -> list[tuple[int, int, int]]:
        """(token id, start, end) for every token of ``text``; specials in the text are kept as tokens."""
        out: list[tuple[int, int, int]] = []
        pos = 0
        if "[" in text:
            for m in self._special_re.finditer(text):
                if m.start() > pos:
                    self._segment(text[pos : m.start()], pos, out)
                out.append((self._vocab[m.group()], m.start(), m.end()))
                pos = m.end()
        if pos < len(text):
            self._segment(text[pos:] if pos else text, pos, out)
        return out

    def _segment(self, seg: str, shift: int, out: list[tuple[int, int, int]]) -> None:
        """Normalise, pre-tokenise and WordPiece one stretch of text between special tokens."""
        norm, orig = self._normalize(seg)
        unk = self.unk_id
        for m in _WORD_RE.finditer(norm):
            ws, we = m.span()
            pieces = self._wordpiece(m.group())
            if pieces is None:
                out.append((unk, _start(orig[ws], shift), _end(orig[we - 1], shift)))
            else:
                for tid, cs, ce in pieces:
                    out.append((tid, _start(orig[ws + cs], shift), _end(orig[ws + ce - 1], shift)))

    def _normalize(self, seg: str) -> tuple[str, list[int]]:
        """BertNormalizer over one segment: the normalised text and, per char, the index of its source char."""
        if seg.isascii():
            norm = seg.translate(_ASCII_CLEAN)
            if len(norm) == len(seg):
                orig = list(range(len(seg)))
            else:
                orig = [i for i, ch in enumerate(seg) if ord(ch) not in _ASCII_CLEAN or _ASCII_CLEAN[ord(ch)]]
            return (norm.lower() if self.do_lower_case else norm), orig
        cache = self._char_cache
        parts: list[str] = []
        orig = []
        reorder = False
        prev_ccc = 0  # combining class of the last NFD item so far (canonical reordering check)
        last = -1  # index of the previous char that clean_text kept (a CJK char's leading space aligns to it)
        for i, ch in enumerate(seg):
            hit = cache.get(ch)
            if hit is None:
                hit = self._char_pipeline(ch)
                if len(cache) >= _CHAR_CACHE_LIMIT:
                    cache.clear()
                cache[ch] = hit
            piece, flags, classes = hit
            if flags:
                if flags & _DELETED:
                    continue
                if flags & _NON_STARTER:
                    for cls in classes:
                        if cls and prev_ccc > cls:
                            reorder = True
                        prev_ccc = cls
                else:
                    prev_ccc = 0
                if flags & _CJK:
                    parts.append(piece)
                    orig.append(last)
                    orig.extend([i] * (len(piece) - 1))
                    last = i
                    continue
            else:
                prev_ccc = 0
            last = i
            if piece:
                parts.append(piece)
                if len(piece) == 1:
                    orig.append(i)
                else:
                    orig.extend([i] * len(piece))
        if reorder:
            return self._normalize_exact(seg)
        return "".join(parts), orig

    def _char_pipeline(self, ch: str) -> tuple[str, int, tuple[int, ...]]:
        """The normaliser applied to one char alone, plus flags (deleted, CJK, NFD holds a non-starter) and,
        for non-starters, the combining classes of its NFD (to detect canonical reordering across chars)."""
        cp = ord(ch)
        if _member(_T.DELETED, cp):
            return "", _DELETED, ()
        if _member(_T.SPACES, cp):
            return " ", 0, ()
        cps: list[int] = [cp]
        flags = 0
        classes: tuple[int, ...] = ()
        if self.strip_accents:
            cps = list(_decompose(cp))
            classes = tuple(_T.CCC.get(c, 0) for c in cps)
            if any(classes):
                flags |= _NON_STARTER
            else:
                classes = ()
            cps = [c for c in cps if not _member(_T.MARKS, c)]
        if self.do_lower_case:
            cps = [x for c in cps for x in _lower(c)]
        out = "".join(map(chr, cps))
        if _member(_T.CHINESE, cp):
            out = f" {out} "
            flags |= _CJK
        return out, flags, classes

    def _normalize_exact(self, seg: str) -> tuple[str, list[int]]:
        """Step-by-step port of the crate's NormalizedString transforms, alignments included (slow path)."""
        # clean_text: filter then map; kept chars keep their own alignment
        chars: list[int] = []
        orig: list[int] = []
        for i, ch in enumerate(seg):
            cp = ord(ch)
            if _member(_T.DELETED, cp):
                continue
            chars.append(32 if _member(_T.SPACES, cp) else cp)
            orig.append(i)
        # handle_chinese_chars: (' ', +1) (c, 0) (' ', +1); an added char copies the previous old alignment
        c2: list[int] = []
        o2: list[int] = []
        for k, cp in enumerate(chars):
            if _member(_T.CHINESE, cp):
                c2 += [32, cp, 32]
                o2 += [orig[k - 1] if k else -1, orig[k], orig[k]]
            else:
                c2.append(cp)
                o2.append(orig[k])
        chars, orig = c2, o2
        if self.strip_accents:
            # NFD: decompose, stable-sort each run of non-starters by combining class, then align positionally
            items: list[tuple[int, int]] = []  # (code point, change)
            run_start = 0
            for cp in chars:
                for j, c in enumerate(_decompose(cp)):
                    if _T.CCC.get(c, 0) == 0:
                        _sort_run(items, run_start)
                        items.append((c, 0 if j == 0 else 1))
                        run_start = len(items)
                    else:
                        items.append((c, 0 if j == 0 else 1))
            _sort_run(items, run_start)
            c2, o2 = [], []
            ptr = 0
            for c, change in items:
                if change > 0:
                    o2.append(orig[ptr - 1] if ptr else -1)
                else:
                    o2.append(orig[ptr])
                    ptr += 1
                c2.append(c)
            # drop nonspacing marks; kept chars keep their alignment
            keep = [k for k, c in enumerate(c2) if not _member(_T.MARKS, c)]
            chars = [c2[k] for k in keep]
            orig = [o2[k] for k in keep]
        if self.do_lower_case:
            c2, o2 = [], []
            for cp, o in zip(chars, orig, strict=True):
                low = _lower(cp)
                c2.extend(low)
                o2.extend([o] * len(low))
            chars, orig = c2, o2
        return "".join(map(chr, chars)), orig

    def _wordpiece(self, word: str) -> tuple[tuple[int, int, int], ...] | None:
        """Greedy longest-match pieces as (id, start, end) char offsets in ``word``; None means one [UNK]."""
        cache = self._word_cache
        if word in cache:
            return cache[word]
        n = len(word)
        result: tuple[tuple[int, int, int], ...] | None
        if n > MAX_INPUT_CHARS_PER_WORD:
            result = None
        else:
            vocab = self._vocab
            pieces: list[tuple[int, int, int]] = []
            start = 0
            while start < n:
                if start == 0:
                    end = min(n, self._max_piece)
                    prefix = ""
                else:
                    end = min(n, start + self._max_cont)
                    prefix = CONTINUATION
                found = None
                while end > start:
                    tid = vocab.get(prefix + word[start:end])
                    if tid is not None:
                        found = tid
                        break
                    end -= 1
                if found is None:
                    pieces = []
                    break
                pieces.append((found, start, end))
                start = end
            result = tuple(pieces) if pieces else None
        if len(cache) >= _WORD_CACHE_LIMIT:
            cache.clear()
        cache[word] = result
        return result


def _sort_run(items: list[tuple[int, int]], start: int) -> None:
    """Canonical ordering of the non-starters in items[start:] (stable sort by combining class)."""
    if len(items) - start > 1:
        items[start:] = sorted(items[start:], key=lambda it: _T.CCC.get(it[0], 0))


def _start(o: int, shift: int) -> int:
    """Original start offset of a normalised char (-1 marks the crate's (0, 0) alignment)."""
    return shift + (o if o >= 0 else 0)


def _end(o: int, shift: int) -> int:
    """Original end offset of a normalised char."""
    return shift + (o + 1 if o >= 0 else 0)
