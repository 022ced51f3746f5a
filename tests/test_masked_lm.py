"""Fill-mask (``pyapp.embed.MaskedLM``, ``python -m pyapp fill-mask``) against the ``transformers`` pipeline.

Why the pipeline: it is what a clinical NLP user of the Hugging Face model runs; on fp32 our tokens and
probabilities must be its (probabilities within 1e-3). The model is a tiny random BERT whose MLM head is made
to look trained (``tiny_mlm_dir``); the packaged MiniLM cannot be used: it has no MLM head.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
MINILM = REPO / "web" / "models" / "minilm"
TEXTS = (
    "the patient was admitted with chest [MASK] and shortness of breath.",
    "she has a history of type 2 [MASK] mellitus.",
    "blood [MASK] was 150 / 90 mmhg on arrival.",
    "[MASK] denies fever, cough or [MASK].",  # two masks, one at the start
    "pneumon [MASK] of the left lung",  # a continuation joins the pieces before the mask
)


@pytest.fixture(scope="module")
def fp32(tiny_mlm_bundle: Path) -> Any:
    from pyapp.embed import MaskedLM

    return MaskedLM(tiny_mlm_bundle)


@pytest.fixture(scope="module")
def pipeline_top5(tiny_mlm_dir: Path) -> Any:
    """The transformers fill-mask pipeline's top 5 per mask, as lists of dicts (one list per mask)."""
    transformers = pytest.importorskip("transformers")
    fill = transformers.pipeline("fill-mask", model=str(tiny_mlm_dir), tokenizer=str(tiny_mlm_dir), top_k=5)

    def run(text: str) -> list[list[dict[str, Any]]]:
        out = fill(text)
        return [out] if out and isinstance(out[0], dict) else out

    return run


def test_fp32_equals_the_transformers_pipeline(fp32: Any, pipeline_top5: Any) -> None:
    joined = 0
    for text in TEXTS:
        got, want = fp32.predict(text, top_k=5), pipeline_top5(text)
        assert len(got) == len(want) == text.count("[MASK]"), text
        ids = fp32.tokenizer.encode(text).input_ids
        positions = [i for i, t in enumerate(ids) if t == fp32.mask_id]
        for ours, theirs, pos in zip(got, want, positions, strict=True):
            assert len(ours) == 5
            for (token, prob), ref in zip(ours, theirs, strict=True):
                assert prob == pytest.approx(ref["score"], abs=1e-3), (text, token, ref)
                piece = fp32.tokenizer.id_to_token(ref["token"])
                assert piece == ref["token_str"].replace(" ", "")  # the same token id, by name
                if piece.startswith("##") and fp32.tokenizer.id_to_token(ids[pos - 1]) not in ("[CLS]", "[MASK]"):
                    joined += 1
                    assert token.endswith(piece[2:]) and token != piece and " " not in token
                    if len(got) == 1:  # the pipeline's filled-in sentence holds the joined word
                        assert token in ref["sequence"].split(), (token, ref["sequence"])
                else:
                    assert token == piece
            assert [p for _, p in ours] == sorted((p for _, p in ours), reverse=True)
    assert joined >= 3  # the continuation really was ranked, and joined for display


def test_predictions_are_one_list_per_mask_of_token_probability_pairs(fp32: Any) -> None:
    got = fp32.predict("[MASK] denies fever, cough or [MASK].", top_k=3)
    assert [len(row) for row in got] == [3, 3]
    for row in got:
        for token, prob in row:
            assert isinstance(token, str) and token and isinstance(prob, float) and 0.0 < prob < 1.0
    first = [token for token, _ in fp32.predict("[MASK] denies fever.")[0]]
    assert "##itis" in first  # nothing before the mask to join it to: shown as the piece
    assert fp32.predict("chest [MASK]", top_k=1)[0][0] == fp32.predict("chest [MASK]")[0][0]  # default top_k 5
    assert fp32.identity["variant"] == "fp32" and fp32.identity["model"] == "test/tiny-mlm"


def test_int8_stays_within_the_recorded_tolerance(tiny_mlm_bundle: Path, fp32: Any) -> None:
    from pyapp.embed import MaskedLM

    int8 = MaskedLM(tiny_mlm_bundle, quantized=True)
    manifest = json.loads((tiny_mlm_bundle / "manifest.json").read_text())
    assert int8.identity["sha256"] == manifest["files"]["model_mlm_int8.onnx"]["sha256"] != fp32.identity["sha256"]
    for text in TEXTS:
        for a, b in zip(int8.predict(text), fp32.predict(text), strict=True):
            assert a[0][0] == b[0][0]  # the best token survives quantisation on this model
            assert dict(a)[a[0][0]] == pytest.approx(dict(b)[b[0][0]], abs=0.05)


def test_manifest_records_both_fill_mask_graphs_and_their_validation(tiny_mlm_bundle: Path) -> None:
    m = json.loads((tiny_mlm_bundle / "manifest.json").read_text())
    mlm = m["mlm"]
    assert mlm["variants"]["fp32"]["file"] == mlm["file"] == "model_mlm.onnx"
    assert mlm["variants"]["int8"]["file"] == "model_mlm_int8.onnx"
    assert "per_channel" in mlm["variants"]["int8"]["quantization"]
    assert {"model_mlm.onnx", "model_mlm_int8.onnx"} <= set(m["files"])
    v = mlm["validation"]
    assert v["top5_agreement"] == 1.0 and v["logits_vs_torch"]["min_cosine"] >= 0.9999
    assert v["int8_logits_vs_fp32"]["min_cosine"] >= v["thresholds"]["int8_vs_fp32_min_cosine"] == 0.98
    assert 0.0 <= v["int8_max_probability_diff"] < 0.1 and v["int8_top1_agreement"] == 1.0


@pytest.mark.parametrize(
    ("text", "top_k", "message"),
    [
        ("no mask here", 5, "has no \\[MASK\\]"),
        ("chest [mask]", 5, "has no \\[MASK\\]"),  # special tokens are case-sensitive, as in transformers
        (["chest [MASK]"], 5, "one text"),
        ("chest [MASK]", 0, "top_k"),
        ("chest [MASK]", 101, "top_k"),
        ("chest [MASK]", True, "top_k"),
        ("word " * 80 + "[MASK]", 5, "beyond the model's 64 tokens"),
    ],
)
def test_bad_input_is_a_clear_invalid_input(fp32: Any, text: Any, top_k: Any, message: str) -> None:
    from pyapp.errors import InvalidInput

    with pytest.raises(InvalidInput, match=message):
        fp32.predict(text, top_k=top_k)


def test_a_bundle_without_a_fill_mask_graph_says_so(tiny_mlm_bundle: Path, tmp_path: Path) -> None:
    from pyapp.embed import MaskedLM
    from pyapp.errors import ModelBundleError

    bundle = tmp_path / "no-mlm"
    shutil.copytree(tiny_mlm_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["mlm"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="no masked-LM graph.*--with-mlm"):
        MaskedLM(bundle)
    if MINILM.joinpath("manifest.json").is_file():  # the packaged MiniLM has no MLM head
        with pytest.raises(ModelBundleError, match="no masked-LM graph"):
            MaskedLM(MINILM)


def test_older_bundles_serve_fp32_and_refuse_int8(tiny_mlm_bundle: Path, tmp_path: Path) -> None:
    """A bundle exported before the int8 fill-mask graph records only ``mlm.file``."""
    from pyapp.embed import MaskedLM
    from pyapp.errors import ModelBundleError

    bundle = tmp_path / "old"
    shutil.copytree(tiny_mlm_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["mlm"] = {"file": "model_mlm.onnx", "output": "logits"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    assert MaskedLM(bundle).predict("chest [MASK]", top_k=2)
    with pytest.raises(ModelBundleError, match="no int8 masked-LM graph"):
        MaskedLM(bundle, quantized=True)


def test_a_tampered_fill_mask_graph_is_refused(tiny_mlm_bundle: Path, tmp_path: Path) -> None:
    from pyapp.embed import MaskedLM
    from pyapp.errors import ModelBundleError

    bundle = tmp_path / "tampered"
    shutil.copytree(tiny_mlm_bundle, bundle)
    data = bytearray((bundle / "model_mlm.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "model_mlm.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match="sha256"):
        MaskedLM(bundle)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyapp", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_prints_one_json_line_per_mask(tiny_mlm_bundle: Path, fp32: Any) -> None:
    text = "[MASK] denies fever, cough or [MASK]."
    out = _cli("fill-mask", "--model", str(tiny_mlm_bundle), text, "--top-k", "3")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    want = fp32.predict(text, top_k=3)
    assert [line["mask"] for line in lines] == [1, 2]
    for line, row in zip(lines, want, strict=True):
        assert [(p["token"], p["probability"]) for p in line["predictions"]] == [(t, pytest.approx(p)) for t, p in row]
        assert line["variant"] == "fp32"
    int8 = _cli("fill-mask", "--model", str(tiny_mlm_bundle), "--int8", "chest [MASK]")
    assert int8.returncode == 0, int8.stderr
    assert json.loads(int8.stdout)["variant"] == "int8" and len(json.loads(int8.stdout)["predictions"]) == 5


def test_cli_errors_are_one_line_with_the_cli_exit_codes(tiny_mlm_bundle: Path, tmp_path: Path) -> None:
    no_mask = _cli("fill-mask", "--model", str(tiny_mlm_bundle), "no mask here")
    assert no_mask.returncode == 1 and no_mask.stdout == ""
    assert no_mask.stderr.startswith("clinvec: error:") and "[MASK]" in no_mask.stderr
    assert len(no_mask.stderr.strip().splitlines()) == 1
    missing = _cli("fill-mask", "--model", str(tmp_path / "absent"), "chest [MASK]")
    assert missing.returncode == 1 and "not a model bundle" in missing.stderr
    usage = _cli("fill-mask", "chest [MASK]")  # --model is required
    assert usage.returncode == 2
