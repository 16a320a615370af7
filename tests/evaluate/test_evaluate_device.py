"""Probes on another device (the CUDA-ready code paths, checked on the CPU) and cached models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from evaluate_helpers import BandEnergyModel, write_task

from echoic.errors import ConfigError
from echoic.evaluate import EvalConfig, ProbeConfig, evaluate
from echoic.evaluate.cache import CachedModel, cached_model
from echoic.evaluate.fit import resolve_device
from echoic.evaluate.mlp import ProbeSpec, StackedMLP

CPU = {"report": False, "progress": False, "device": "cpu"}  # bit-reproducible runs


def _specs() -> list[ProbeSpec]:
    return [
        ProbeSpec(hidden_layers=2, hidden_dim=16, lr=lr, init=init, seed=s)
        for lr, init, s in [
            (1e-3, "xavier_uniform", 0),
            (3.2e-3, "xavier_normal", 1),
            (1e-4, "xavier_uniform", 2),
        ]
    ]


def test_vectorised_adam_is_the_member_by_member_update() -> None:
    """The all-members Adam (used on accelerators) gives the member loop's parameters."""
    torch.manual_seed(0)
    x = torch.randn(64, 12)
    y = torch.randint(0, 5, (64,))
    loop = StackedMLP(_specs(), 12, 5, dropout_seeds=[7, 8, 9])
    fused = StackedMLP(_specs(), 12, 5, dropout_seeds=[7, 8, 9])
    fused.vectorised_adam = True
    assert not loop.vectorised_adam  # the CPU default keeps the cache-friendly loop
    for step in range(25):
        for model in (loop, fused):
            logits = model.forward(x, train=True)
            g, n, c = logits.shape
            loss = torch.nn.functional.cross_entropy(logits.reshape(g * n, c), y.repeat(g))
            loss.backward()
            model.adam_step()
        if step == 10:  # members leave the stack in the middle of training
            for model in (loop, fused):
                model.keep(torch.tensor([0, 2]))
    for a, b in zip(loop.state(), fused.state(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(loop.state()[0], StackedMLP(_specs(), 12, 5).state()[0][[0, 2]])


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert resolve_device("auto").startswith("cuda")
    else:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("gpu please")


def test_a_cached_model_scores_like_the_model_without_its_weights(tmp_path: Path) -> None:
    task = write_task(tmp_path / "tasks", "tones", event=False)
    cache = tmp_path / "cache"
    probe = ProbeConfig(protocol="hear", seeds=2, grid_points=2, max_epochs=6, hidden_dim=32)
    first = evaluate(
        [BandEnergyModel()],
        [task],
        EvalConfig(out=tmp_path / "a", cache=cache, probe=probe, **CPU),
        log=lambda _: None,
    )[0]
    folder = cache / "band-energy-16000"
    model = cached_model(f"energy={folder}")
    assert (model.label, model.identity, model.sample_rate) == (
        "energy",
        "band-energy-16000",
        16000,
    )
    assert model.embedding_size == 8
    again = evaluate(
        [model],
        [task],
        EvalConfig(out=tmp_path / "b", cache=cache, probe=probe, **CPU),
        log=lambda _: None,
    )[0]
    assert again["model"] == "energy" and again["identity"] == first["identity"]
    assert again["timings"]["probe_device"] == "cpu" and again["timings"]["embeddings_cached"]
    assert [r["test"] for r in again["runs"]] == [r["test"] for r in first["runs"]]

    other = write_task(tmp_path / "tasks", "other", event=False, folds=2)
    with pytest.raises(ConfigError, match="are not in"):
        evaluate(
            [model],
            [other],
            EvalConfig(out=tmp_path / "c", cache=cache, probe=probe, **CPU),
            log=lambda _: None,
        )
    assert not list(folder.glob("other-*"))  # nothing written for a task it cannot embed


def test_a_cached_model_needs_a_cache_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="found none"):
        CachedModel(tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU host)")
def test_probes_on_cuda_score_like_on_the_cpu(tmp_path: Path) -> None:
    """The same protocol on the GPU: tones stay separable, and scores agree with the CPU's."""
    task = write_task(tmp_path / "tasks", "tones", event=False, per_class=6)
    events = write_task(tmp_path / "tasks", "bursts", event=True, seconds=2.0, per_class=3)
    probe = ProbeConfig(protocol="hear", seeds=2, grid_points=4, max_epochs=30, hidden_dim=64)
    scores = {}
    for device in ("cpu", "cuda"):  # the CUDA run: dropout streams and kernels differ
        records = evaluate(
            [BandEnergyModel()],
            [task, events],
            EvalConfig(
                out=tmp_path / device,
                cache=tmp_path / "cache",
                probe=probe,
                report=False,
                progress=False,
                device=device,
            ),
            log=lambda _: None,
        )
        assert {r["timings"]["probe_device"] for r in records} == {device}
        scores[device] = [r["scores"][r["primary_metric"]]["mean"] for r in records]
    assert scores["cuda"][0] > 0.9
    for cpu, gpu in zip(scores["cpu"], scores["cuda"], strict=True):
        assert abs(cpu - gpu) < 0.15
