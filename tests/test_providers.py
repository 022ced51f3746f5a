"""Server execution-provider choice (pyapp/embed/providers.py) and where it shows (OnnxEmbedder.runtime, stats).

Real parts: onnxruntime's own ``get_available_providers()`` (CPU only on this machine) and the packaged MiniLM
bundle. A CUDA machine is stood in for only where the choice itself is tested: a given provider list, or
onnxruntime's list patched to name CUDA, which the CPU build of onnxruntime then really declines (it falls
back to CPU, and ``runtime`` says so).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyapp.embed import providers
from pyapp.embed.providers import CPU, CUDA, choose_providers
from pyapp.errors import InvalidInput

BUNDLE = Path(__file__).resolve().parents[1] / "web" / "models" / "minilm"
needs_bundle = pytest.mark.skipif(not (BUNDLE / "manifest.json").is_file(), reason="no web/models/minilm bundle")


def test_default_here_is_cpu_from_onnxruntimes_real_list() -> None:
    pytest.importorskip("onnxruntime")
    available = providers.available_providers()
    assert CPU in available and CUDA not in available  # this machine: plain onnxruntime, no GPU
    assert choose_providers(None, available) == [CPU]


def test_default_prefers_cuda_then_cpu_when_cuda_is_listed() -> None:
    listed = ["TensorrtExecutionProvider", CUDA, "AzureExecutionProvider", CPU]
    assert choose_providers(None, listed) == [CUDA, CPU]  # never Azure/TensorRT unasked; CPU kept as safety net
    assert choose_providers(None, [CPU, CUDA]) == [CUDA, CPU]
    assert choose_providers(None, []) == [CPU]


def test_requested_providers_are_checked_and_short_names_allowed() -> None:
    assert choose_providers(["cpu"], [CPU]) == [CPU]
    assert choose_providers("CUDA", [CUDA, CPU]) == [CUDA]
    assert choose_providers(["cuda", "cpu", CPU], [CUDA, CPU]) == [CUDA, CPU]  # duplicates dropped, order kept
    with pytest.raises(InvalidInput, match=r"no CUDAExecutionProvider .*gpu. extra"):
        choose_providers(["cuda"], [CPU])
    with pytest.raises(InvalidInput, match="no TPUExecutionProvider"):
        choose_providers(["TPUExecutionProvider"], [CPU])
    for bad in ([], [""], [None], [3]):
        with pytest.raises(InvalidInput, match="non-empty list"):
            choose_providers(bad, [CPU])  # type: ignore[arg-type]


def test_environment_variable_names_the_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(providers.ENV, " cpu , ")
    assert providers.requested_from_env() == ["cpu"]
    monkeypatch.setenv(providers.ENV, "  ")
    assert providers.requested_from_env() is None


@needs_bundle
def test_embedder_reports_its_provider_and_refuses_an_absent_one(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    from pyapp.embed.onnx import OnnxEmbedder

    emb = OnnxEmbedder(BUNDLE, providers=["cpu"])
    assert emb.runtime == {"engine": "onnxruntime", "provider": CPU, "providers": [CPU], "threads": None}
    assert "provider" not in emb.identity and "providers" not in emb.identity
    with pytest.raises(InvalidInput, match="CUDAExecutionProvider"):
        OnnxEmbedder(BUNDLE, providers=["cuda"])
    monkeypatch.setenv(providers.ENV, "cuda")
    with pytest.raises(InvalidInput, match="CUDAExecutionProvider"):
        OnnxEmbedder(BUNDLE)  # the environment is honoured when no providers= is given
    assert OnnxEmbedder(BUNDLE, providers=["cpu"]).runtime["provider"] == CPU  # an explicit list wins


@needs_bundle
async def test_index_built_on_cpu_opens_with_a_cuda_choice_and_stats_show_the_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider is information, not compatibility: a CPU-built index opens with an embedder that asked for
    CUDA; stats() shows the provider that really ran (here onnxruntime declines CUDA and runs on CPU)."""
    ort = pytest.importorskip("onnxruntime")
    from pyapp import LocalIndex
    from pyapp.embed.onnx import OnnxEmbedder

    cpu = OnnxEmbedder(BUNDLE, providers=["cpu"])
    location = str(tmp_path / "idx")
    idx = await LocalIndex.create(location, embedder=cpu)
    await idx.insert_many([{"id": "a", "text": "chest pain radiating to the left arm"}])
    stats = await idx.stats()
    assert stats["embedder"] == cpu.identity and stats["embedder_runtime"]["provider"] == CPU
    await idx.close()

    real = ort.get_available_providers
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, *real()])
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):  # the CPU build declines CUDA, runs on CPU
        gpu = OnnxEmbedder(BUNDLE)
    assert gpu.providers == [CUDA, CPU] and gpu.runtime["provider"] == CPU  # asked CUDA first, really ran CPU
    assert gpu.identity == {**cpu.identity, "bundle": gpu.identity["bundle"]}
    reopened = await LocalIndex.open(location, embedder=gpu)
    stats = await reopened.stats()
    assert stats["embedder_runtime"]["providers"] == [CUDA, CPU]
    hits = await reopened.query(text="angina", top_k=1)
    assert [h.id for h in hits] == ["a"]
    await reopened.close()
