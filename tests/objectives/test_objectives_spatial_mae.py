"""spatial_mae: the multi-window masks, locality through the real decoder blocks, learning on
2-channel audio, and a 2-channel model from the recipe through echoic.load + Embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import echoic
from echoic.data.audio import load_audio
from echoic.data.batch import pad_batch
from echoic.data.testing import make_panned_files
from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.features.base import build_frontend
from echoic.objectives import build_objective
from echoic.objectives.spatial_mae import SpatialMAEObjective, window_mask
from echoic.train.config import load_config
from echoic.train.run import pretrain
from echoic.types import TrainBatch

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "spatial_mae_test.yaml"
SR = 16000


def allowed_by_rule(size: int, kind: str, query: int, key: int) -> bool:
    """The claim, written out: the window a grid query ``query`` may read ``key`` in."""
    if size == 0:
        return True
    if kind == "sliding":
        return abs(key - query) <= size // 2
    return query // size == key // size


@pytest.mark.parametrize("kind", ["partition", "sliding"])
def test_each_head_attends_exactly_within_its_window(kind: str):
    sizes, n_tokens, n_prefix = (2, 5, 7, 0), 23, 1
    mask = window_mask(sizes, n_tokens, n_prefix, kind)
    assert mask.shape == (4, 24, 24) and mask.dtype == torch.bool
    for head, size in enumerate(sizes):
        grid = mask[head, n_prefix:, n_prefix:]
        for query in range(n_tokens):
            expected = [allowed_by_rule(size, kind, query, key) for key in range(n_tokens)]
            assert grid[query].tolist() == expected, (head, query)
        global_head = size == 0
        assert bool(mask[head, 0, 0])  # the CLS token always reads itself
        assert bool(mask[head, 0, 1:].any()) == global_head  # ... and the grid in global heads
        assert bool(mask[head, 1:, 0].any()) == global_head  # the grid reads CLS in global heads
    sliding_reach = (mask[1, 1:, 1:].nonzero()[:, 1] - mask[1, 1:, 1:].nonzero()[:, 0]).abs()
    assert int(sliding_reach.max()) == (2 if kind == "sliding" else 4)  # w=5: ±2, or within 0..4


def decoder(kind: str, sizes: tuple[int, ...], relative_bias: bool = True) -> SpatialMAEObjective:
    torch.manual_seed(0)
    config = {
        "decoder_dim": 16,
        "decoder_depth": 1,
        "decoder_heads": len(sizes),
        "window_sizes": list(sizes),
        "window_kind": kind,
        "relative_bias": relative_bias,
    }
    objective = build_objective("spatial_mae", build_encoder("vit_test"), config)
    assert isinstance(objective, SpatialMAEObjective)
    return objective.eval()


@pytest.mark.parametrize(
    ("kind", "reach"), [("sliding", [8, 9, 10, 11, 12]), ("partition", [8, 9, 10, 11])]
)
def test_a_local_decoder_block_only_mixes_tokens_inside_the_window(kind: str, reach: list[int]):
    """Through the real block (SDPA, bias, MLP): changing grid token 10 changes only the outputs
    of the tokens whose window holds it (sliding w=4: 8..12; partition w=4: 8..11)."""
    objective = decoder(kind, (4, 4))
    tokens = torch.randn(2, 1 + 24, 16)  # CLS + 24 grid tokens
    padding = torch.zeros(2, 25, dtype=torch.bool)
    with torch.no_grad():
        before = objective.run_decoder_blocks(tokens, padding, n_prefix=1)
        changed = tokens.clone()
        changed[:, 1 + 10] += torch.randn(2, 16)  # not a constant: LayerNorm would remove it
        after = objective.run_decoder_blocks(changed, padding, n_prefix=1)
    moved = ((after - before).abs().amax(dim=(0, 2)) > 1e-6).nonzero().flatten() - 1
    assert moved.tolist() == reach
    with torch.no_grad():  # one global head: every output (CLS included) moves
        mixed = decoder(kind, (4, 0))
        moved_all = mixed.run_decoder_blocks(changed, padding, 1) - mixed.run_decoder_blocks(
            tokens, padding, 1
        )
    assert bool((moved_all.abs().amax(dim=(0, 2)) > 1e-6).all())


def test_padding_keys_never_reach_valid_tokens_and_outputs_stay_finite():
    objective = decoder("sliding", (6, 0))
    tokens = torch.randn(1, 13, 16)
    padding = torch.zeros(1, 13, dtype=torch.bool)
    padding[0, 9:] = True  # the last 4 grid tokens are padding
    with torch.no_grad():
        before = objective.run_decoder_blocks(tokens, padding, 1)
        changed = tokens.clone()
        changed[0, 9:] = torch.randn(4, 16) * 10
        after = objective.run_decoder_blocks(changed, padding, 1)
    assert torch.equal(after[0, :9], before[0, :9])
    assert torch.isfinite(after).all()


def test_the_relative_bias_is_learned_per_local_head_and_block():
    objective = build_objective(
        "spatial_mae",
        build_encoder("vit_test"),
        {"decoder_dim": 24, "decoder_depth": 2, "decoder_heads": 3, "window_sizes": [3, 0, 5]},
    )
    assert objective.window_bias is not None
    assert objective.window_bias.shape == (2, 2, 2 * 4 + 1)  # 2 blocks, 2 local heads, ±4
    with torch.no_grad():
        bias = objective.attention_bias(0, n_tokens=6, n_prefix=1)
    assert bias is not None and bias.shape == (3, 7, 7)
    assert torch.all(bias[1] == 0) and torch.all(bias[:, 0] == 0) and torch.all(bias[:, :, 0] == 0)
    table = objective.window_bias[0]
    assert float(bias[2, 1 + 2, 1 + 5]) == float(table[1, 4 + 3].detach())  # head 2, offset +3


def test_window_settings_are_checked():
    with pytest.raises(ConfigError, match=r"window per decoder head.*3 windows.*decoder_heads=4"):
        build_objective(
            "spatial_mae",
            build_encoder("vit_test"),
            {"decoder_heads": 4, "window_sizes": [1, 2, 0]},
        )
    with pytest.raises(ConfigError, match="'sliding'"):
        build_objective("spatial_mae", build_encoder("vit_test"), {"window_kind": "slide"})


def stereo_features(paths: list[Path]) -> tuple[torch.nn.Module, TrainBatch]:
    frontend = build_frontend("spatial_logmel")
    clips = [load_audio(p, SR, mono=False)[0] for p in paths]
    features = frontend(pad_batch(clips, SR))
    return frontend, TrainBatch.of(features)


def test_the_loss_decreases_on_two_channel_audio_with_delays_and_levels(tmp_path: Path):
    paths = make_panned_files(tmp_path, 6, seconds=1.0)
    frontend, batch = stereo_features(paths)
    assert batch.features.values.shape[:3] == (6, 5, 128)
    torch.manual_seed(0)
    encoder = build_encoder("vit_test", in_channels=frontend.out_channels)
    objective = build_objective(
        "spatial_mae",
        encoder,
        {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 4, "window_sizes": [2, 8, 0, 0]},
    ).train()
    optimiser = torch.optim.AdamW(objective.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss = objective(batch, generator).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.85 * first, (first, last)  # measured 1.00 → 0.71


def test_the_recipe_trains_exports_and_embeds_a_stereo_wav(tmp_path: Path):
    torch.set_num_threads(1)
    audio = tmp_path / "panned"
    make_panned_files(audio, 4, seconds=1.0)
    sf.write(audio / "mono.wav", np.zeros(SR, np.float32), SR)  # the wrong channel count: skipped
    overrides = [
        f"--output_dir={tmp_path / 'run'}",
        f"--data.train=[{audio}]",
        "--data.crop_s=0.5",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--trainer.max_steps=3",
        "--trainer.progress_bar=false",
        "--trainer.tensorboard=false",
    ]
    result = pretrain(load_config(RECIPE, overrides))
    assert result.export_dir is not None
    assert [Path(p).name for p in result.skipped_files] == ["mono.wav"]
    model = echoic.load(str(result.export_dir))
    embedder = echoic.Embedder(model)
    assert embedder.channels == 2
    wave, _ = load_audio(audio / "panned_000.wav", SR, mono=False)
    (out,) = embedder.embed([wave])
    assert out.scene.shape == (32,) and torch.isfinite(out.scene).all()
    (swapped,) = embedder.embed([wave[::-1].copy()])
    assert float((swapped.scene - out.scene).abs().max()) > 1e-4  # left and right differ
    with pytest.raises(ValueError, match="2-channel audio"):
        embedder.embed([wave[0]])
