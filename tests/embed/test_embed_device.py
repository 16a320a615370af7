"""The ``device`` option of every embedding path, as far as a CPU-only machine can check it: CPU
results and identities unchanged, clear errors for devices that are not there, the device kept out
of identities. The GPU half is tests/embed/test_embed_device_cuda.py (skipped without CUDA)."""

from __future__ import annotations

import warnings

import pytest
import torch

from echoic.embed.device import exact_fp32, module_device, resolve_device
from echoic.embed.embedder import Embedder
from echoic.embed.precision import cast_model
from echoic.errors import ConfigError
from echoic.zoo.registry import resolve_model

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU errors")


def test_cpu_and_auto_resolve_to_the_cpu_here() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected


@pytest.mark.parametrize("name", ["gpu0", "tpu", "cuda:x", ""])
def test_unknown_devices_name_the_choices(name: str) -> None:
    with pytest.raises(ConfigError, match="cpu, cuda, cuda:N or auto"):
        resolve_device(name)


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_missing_gpu_is_a_clear_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"torch sees no CUDA GPU here.*use device 'cpu'"):
        resolve_device(name)


def test_the_embedder_on_the_cpu_is_unchanged(tiny_model, make_tone) -> None:
    wave = make_tone(1.5)
    plain = Embedder(tiny_model)
    for device in ("cpu", "auto") if not torch.cuda.is_available() else ("cpu",):
        placed = Embedder(tiny_model, device=device)
        assert placed.model is tiny_model  # fp32 on the CPU: no copy
        assert placed.identity == plain.identity  # the device never enters the identity
        a, b = plain.embed([wave])[0], placed.embed([wave])[0]
        assert torch.equal(a.timestamps, b.timestamps) and torch.equal(a.scene, b.scene)
    assert placed.to_device("cpu") is placed and placed.identity == plain.identity


@no_cuda
def test_the_embedder_refuses_a_missing_gpu(tiny_model) -> None:
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        Embedder(tiny_model, device="cuda")


def test_int8_is_refused_on_a_gpu_before_touching_it(tiny_model) -> None:
    with pytest.raises(ConfigError, match=r"int8' runs on the CPU only.*bf16"):
        cast_model(tiny_model, "int8", "cuda")


def test_module_device_follows_the_model(tiny_model) -> None:
    assert module_device(tiny_model) == torch.device("cpu")
    assert module_device(torch.nn.Identity()) == torch.device("cpu")


def test_exact_fp32_turns_tf32_off_and_restores_it() -> None:
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with exact_fp32():
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def test_zoo_models_take_a_device_without_changing_identity() -> None:
    plain = resolve_model("logmel_stats")
    placed = resolve_model("logmel_stats", device="cpu")
    assert placed.identity == plain.identity


def test_a_cpu_only_zoo_model_warns_and_stays_on_the_cpu(monkeypatch, make_tone) -> None:
    """What a GPU request does to a model with no network to move (pretending a GPU exists)."""
    import echoic.zoo.base as zoo_base

    model = resolve_model("logmel_stats")
    expected = model.embed([make_tone(1.0)])[0].scene
    monkeypatch.setattr(zoo_base, "resolve_device", lambda name: torch.device("cuda"))
    with pytest.warns(UserWarning, match="runs on the CPU only.*device 'cuda' ignored"):
        model.to_device("cuda")
    assert model.device == torch.device("cpu")
    assert torch.equal(model.embed([make_tone(1.0)])[0].scene, expected)


def test_a_model_without_to_device_says_so(monkeypatch) -> None:
    import echoic.zoo.registry as registry
    from echoic.cards import CARDS

    card = CARDS.get("logmel_stats")
    monkeypatch.setattr(card, "build", lambda **options: object())
    with pytest.raises(ConfigError, match="takes no device option"):
        registry.resolve_model("logmel_stats", device="cpu")


def test_the_hear_module_follows_to(make_tone) -> None:
    from echoic import hear

    model = hear.load_model("", device="cpu")
    audio = torch.from_numpy(make_tone(1.0))[None]
    before = hear.get_scene_embeddings(audio, model)
    model.to("cpu")  # what hear-eval-kit does (with "cuda" on a GPU)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = hear.get_scene_embeddings(audio, model)
    assert torch.equal(before, after) and after.device.type == "cpu"
