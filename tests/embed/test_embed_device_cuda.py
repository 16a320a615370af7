"""Every embedding path on a CUDA GPU against the CPU (skipped without one: never runs in CI).

Run on a GPU host with ``pytest tests/embed/test_embed_device_cuda.py``; the same numbers come
from ``scripts/gpu_probes/device_check.py`` and ``scripts/gpu_probes/scale_checks.sh``.
"""

from __future__ import annotations

import pytest
import torch

from echoic.embed.embedder import Embedder
from echoic.zoo.registry import ModelUnavailable, resolve_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

FP32_TOLERANCE = 1e-4  # TF32 off: CUDA float32 kernels differ from the CPU's by rounding only


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize("encoder", ["vit_test", "wav_test"])
def test_the_embedder_on_cuda_matches_the_cpu(tiny_model_factory, make_tone, encoder) -> None:
    model = tiny_model_factory(encoder=encoder)
    waves = [make_tone(1.3), make_tone(4.0, seed=1)]
    cpu = Embedder(model, chunk_s=1.0, overlap_s=0.2)
    gpu = Embedder(model, chunk_s=1.0, overlap_s=0.2, device="cuda")
    assert gpu.identity == cpu.identity
    assert next(model.parameters()).device.type == "cpu"  # the caller's model stays put
    for a, b in zip(cpu.embed(waves), gpu.embed(waves), strict=True):
        assert b.scene.device.type == "cpu" and b.timestamps.dtype == torch.float32
        assert torch.equal(a.timestamps_ms, b.timestamps_ms)
        assert max_diff(a.timestamps, b.timestamps) < FP32_TOLERANCE


def test_layer_weights_and_bf16_run_on_cuda(tiny_model, make_tone) -> None:
    layers = tiny_model.encoder.spec.n_layers
    weights = tuple(1.0 / layers for _ in range(layers))
    wave = [make_tone(2.0)]
    exact = Embedder(tiny_model, layer=weights).embed(wave)[0]
    gpu = Embedder(tiny_model, layer=weights, device="cuda").embed(wave)[0]
    assert max_diff(exact.frames, gpu.frames) < FP32_TOLERANCE
    bf16 = Embedder(tiny_model, precision="bf16", device="cuda")
    assert bf16.identity != Embedder(tiny_model).identity  # precision is in the identity
    out = bf16.embed(wave)[0]
    cosine = torch.nn.functional.cosine_similarity(out.frames.flatten(), exact.frames.flatten(), 0)
    assert float(cosine) > 0.99
    assert Embedder(tiny_model, precision="auto", device="cuda").precision == (
        "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    )


def test_the_hear_module_after_model_to_cuda(make_tone) -> None:
    """As hear-eval-kit calls it: load_model(), model.to("cuda"), CUDA audio in, tensors out."""
    from echoic import hear

    audio = torch.from_numpy(make_tone(3.0))[None]
    cpu_model = hear.load_model()
    scene = hear.get_scene_embeddings(audio, cpu_model)
    stamps, times = hear.get_timestamp_embeddings(audio, cpu_model)
    model = hear.load_model()
    model.to("cuda")
    gpu_scene = hear.get_scene_embeddings(audio.cuda(), model)
    gpu_stamps, gpu_times = hear.get_timestamp_embeddings(audio.cuda(), model)
    assert max_diff(scene, gpu_scene.cpu()) < FP32_TOLERANCE
    assert max_diff(stamps, gpu_stamps.cpu()) < FP32_TOLERANCE
    assert torch.equal(times, gpu_times.cpu())


@pytest.mark.parametrize("name", ["torchcrepe_tiny", "resemblyzer", "aisfx"])
def test_peers_on_cuda_match_the_cpu(name, make_tone) -> None:
    try:
        cpu = resolve_model(name)
        gpu = resolve_model(name, device="cuda")
    except ModelUnavailable as err:
        pytest.skip(str(err))
    assert gpu.identity == cpu.identity
    waves = [make_tone(3.0), make_tone(1.0, seed=2)]
    for a, b in zip(cpu.embed(waves, 16000), gpu.embed(waves, 16000), strict=True):
        assert b.timestamps.device.type == "cpu"
        scale = max(1.0, float(a.timestamps.abs().max()))
        assert max_diff(a.timestamps, b.timestamps) < 1e-4 * scale


def test_an_onnx_peer_stays_on_the_cpu_and_says_so() -> None:
    try:
        with pytest.warns(UserWarning, match="runs on the CPU only"):
            model = resolve_model("openwakeword", device="cuda")
    except ModelUnavailable as err:
        pytest.skip(str(err))
    assert model.device.type == "cpu"  # type: ignore[attr-defined]
