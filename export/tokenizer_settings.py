"""Decide the tokenizer settings written into the bundle (casing, max length) from the model folder itself.

Why not trust the folder's tokenizer config: Bio_ClinicalBERT ships only a cased vocab.txt, so AutoTokenizer
falls back to lowercasing and no truncation. Here an explicit setting wins, then the tokenizer config, and a
config that contradicts the vocabulary's casing is reported rather than copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ExportError
from .models import ModelSpec, read_json

VOCAB_FILE = "vocab.txt"
SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
# Share of ordinary vocabulary entries with an upper-case letter above which a vocab counts as cased:
# bert-base-cased has tens of percent, uncased vocabs have (almost) none.
_CASED_SHARE = 0.01


@dataclass(frozen=True)
class TokenizerSettings:
    """What the runtime WordPiece tokenizer must do to reproduce the ids the model was trained on."""

    vocab: list[str]
    do_lower_case: bool
    max_seq_length: int
    max_position_embeddings: int
    notes: list[str]

    def special_token_ids(self) -> dict[str, int]:
        """Ids of [PAD] [UNK] [CLS] [SEP] [MASK]; all must exist for a BERT WordPiece vocab."""
        index = {token: i for i, token in enumerate(self.vocab)}
        missing = [tok for tok in SPECIAL_TOKENS.values() if tok not in index]
        if missing:
            raise ExportError(f"vocab.txt lacks the special tokens {missing}: not a BERT WordPiece vocabulary")
        return {name: index[tok] for name, tok in SPECIAL_TOKENS.items()}

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest's tokenizer and graph-input fields, the same in every bundle kind (the runtimes read
        them with one parser)."""
        ids = self.special_token_ids()
        return {
            "tokenizer": "bert-wordpiece",
            "do_lower_case": self.do_lower_case,
            "vocab_file": VOCAB_FILE,
            "vocab_size": len(self.vocab),
            "special_tokens": {name: {"token": tok, "id": ids[name]} for name, tok in SPECIAL_TOKENS.items()},
            "inputs": {
                "names": ["input_ids", "attention_mask", "token_type_ids"],
                "dtype": "int64",
                "shape": ["batch_size", "sequence_length"],
            },
        }


def read_vocab(path: Path) -> list[str]:
    """vocab.txt lines in id order (a trailing newline adds no token)."""
    if not path.is_file():
        raise ExportError(f"{path.parent} has no vocab.txt: only BERT WordPiece models are supported")
    text = path.read_text(encoding="utf-8")
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def vocab_is_cased(vocab: list[str]) -> bool:
    """True when a noticeable share of ordinary tokens carries upper-case letters."""
    plain = [tok for tok in vocab if not (tok.startswith("[") and tok.endswith("]"))]
    if not plain:
        return False
    upper = sum(1 for tok in plain if any(ch.isupper() for ch in tok))
    return upper / len(plain) > _CASED_SHARE


def decide(folder: Path, spec: ModelSpec, do_lower_case: bool | None, max_seq_length: int | None) -> TokenizerSettings:
    """Settings for ``folder``: argument > preset > tokenizer/sentence-transformers config > vocab and config.json."""
    vocab = read_vocab(folder / "vocab.txt")
    config = read_json(folder / "config.json")
    tok_config = read_json(folder / "tokenizer_config.json")
    st_config = read_json(folder / "sentence_bert_config.json")
    notes: list[str] = []
    max_pos = int(config.get("max_position_embeddings", 512))

    cased = vocab_is_cased(vocab)
    lower = do_lower_case if do_lower_case is not None else spec.do_lower_case
    if lower is None and isinstance(tok_config.get("do_lower_case"), bool):
        lower = tok_config["do_lower_case"]
        if lower == cased:
            notes.append(
                f"tokenizer_config.json says do_lower_case={lower} but the vocab looks "
                f"{'cased' if cased else 'uncased'}; kept the config (pass --lower-case/--no-lower-case)"
            )
    if lower is None:
        lower = not cased
        notes.append(f"no do_lower_case setting in the folder; vocab looks {'cased' if cased else 'uncased'}")

    length = max_seq_length if max_seq_length is not None else spec.max_seq_length
    if length is None and isinstance(st_config.get("max_seq_length"), int):
        # sentence-transformers truncates here when it encodes; matching it keeps parity with published vectors.
        length = st_config["max_seq_length"]
        notes.append(f"max_seq_length {length} from sentence_bert_config.json (positions: {max_pos})")
    if length is None:
        length = max_pos
    if not 3 <= length <= max_pos:
        raise ExportError(f"max_seq_length {length} is outside 3..{max_pos} (max_position_embeddings)")
    settings = TokenizerSettings(vocab, bool(lower), int(length), max_pos, notes)
    settings.special_token_ids()
    return settings
