"""The video–music models (seeds 14 and 23): losses against written-out formulas, the α mix at its
ends, stream encoders that ignore padding, the trimodal query's dependence on the prompt, and the
directory round trip of every registered model (safetensors + JSON, no pickle)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from echoic.errors import CheckpointError, ConfigError
from echoic.objectives.video_music import (
    VIDEO_MUSIC_MODELS,
    SemiSupervisedModel,
    StreamBatch,
    StreamConfig,
    StreamEncoder,
    info_nce,
    label_contrastive,
    load_video_music,
    mix_similarity,
    pad_streams,
    visual_stream,
)
from echoic.objectives.video_music_text import TrimodalModel
from echoic.train.video_music import build_model
from echoic.vision import build_image_encoder

STREAM = {"width": 16, "heads": 2, "max_len": 12}
TINY: dict[str, dict[str, Any]] = {
    "semi_supervised": {"visual_dim": 6, "music_dim": 5, "dim": 8, "labels": 3, "stream": STREAM},
    "trimodal": {"visual_dim": 6, "music_dim": 5, "text_dim": 7, "dim": 8, "stream": STREAM},
}


def streams(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(2, 9, (n,), generator=g)
    return pad_streams([torch.randn(int(t), dim, generator=g) for t in lens])


def batch(n: int = 6, seed: int = 0) -> StreamBatch:
    visual, music = streams(n, 6, seed), streams(n, 5, seed + 1)
    labels = torch.arange(n) % 3
    text = torch.randn(n, 7, generator=torch.Generator().manual_seed(seed + 2))
    return StreamBatch(*visual, *music, labels, text)


def test_label_contrastive_is_cross_modal_supcon_written_out() -> None:
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(6, 4), dim=-1), F.normalize(torch.randn(6, 4), dim=-1)
    labels, scale = torch.tensor([0, 1, 0, 2, 1, 0]), torch.tensor(5.0)
    total = 0.0
    for x, y in ((a, b), (b, a)):
        for i in range(6):
            denominator = torch.logsumexp(torch.stack([5 * x[i] @ y[j] for j in range(6)]), 0)
            positives = [j for j in range(6) if labels[j] == labels[i]]
            total += sum(-(5 * x[i] @ y[j] - denominator) for j in positives) / len(positives) / 6
    assert label_contrastive(a, b, labels, scale).item() == pytest.approx(
        total.item() / 2, rel=1e-5
    )
    # one label per item: SupCon is InfoNCE
    distinct = torch.arange(6)
    assert label_contrastive(a, b, distinct, scale).item() == pytest.approx(
        info_nce(a, b, scale).item(), rel=1e-6
    )


def test_alpha_ends_rank_by_one_space_alone() -> None:
    g = torch.Generator().manual_seed(3)
    sim_self, sim_label = torch.randn(9, 9, generator=g), torch.randn(9, 9, generator=g)
    order = lambda s: torch.argsort(-s, dim=1, stable=True)  # noqa: E731
    assert torch.equal(order(mix_similarity(sim_self, sim_label, 1.0)), order(sim_self))
    assert torch.equal(order(mix_similarity(sim_self, sim_label, 0.0)), order(sim_label))
    half = mix_similarity(sim_self, sim_label, 0.5)
    assert torch.allclose(half, (sim_self + sim_label) / 2)
    assert not torch.equal(order(half), order(sim_self))
    with pytest.raises(ConfigError, match="alpha"):
        mix_similarity(sim_self, sim_label, 1.5)


def test_model_similarities_are_the_cosines_of_each_space() -> None:
    torch.manual_seed(0)
    model = build_model("semi_supervised", TINY["semi_supervised"]).eval()
    assert isinstance(model, SemiSupervisedModel)
    visual, music = streams(5, 6, 0), streams(7, 5, 1)
    sim_self, sim_label = model.similarities(visual, music, batch_size=2)
    v_self, v_label = model.embed_visual(*visual)
    m_self, m_label = model.embed_music(*music)
    assert torch.allclose(sim_self, v_self @ m_self.T, atol=1e-5)
    assert torch.allclose(sim_label, v_label @ m_label.T, atol=1e-5)
    assert not torch.allclose(sim_self, sim_label)


@pytest.mark.parametrize("temporal", ["attention", "transformer"])
def test_stream_encoder_ignores_padding(temporal: str) -> None:
    torch.manual_seed(0)
    encoder = StreamEncoder(6, StreamConfig(width=16, heads=2, temporal=temporal)).eval()
    x, lens = streams(4, 6, 0)
    noisy = x.clone()
    for i, n in enumerate(lens):
        noisy[i, int(n) :] = 100.0
    wider = torch.cat([x, torch.full((4, 3, 6), -7.0)], dim=1)
    out = encoder(x, lens)
    assert torch.allclose(encoder(noisy, lens), out, atol=1e-5)
    assert torch.allclose(encoder(wider, lens), out, atol=1e-5)
    shorter = lens.clone()
    shorter[0] -= 1  # one real frame fewer: a different vector
    assert not torch.allclose(encoder(x, shorter)[0], out[0], atol=1e-4)
    with pytest.raises(ConfigError, match="reads"):
        encoder(torch.zeros(2, 3, 5), torch.tensor([3, 3]))
    with pytest.raises(ConfigError, match="lengths"):
        encoder(x, lens + 20)


def test_the_prompt_changes_the_query_and_hiding_it_ignores_it() -> None:
    torch.manual_seed(0)
    model = build_model("trimodal", TINY["trimodal"]).eval()
    assert isinstance(model, TrimodalModel)
    visual, music = streams(6, 6, 0), streams(6, 5, 1)
    with torch.no_grad():
        a = model.similarity(visual, music, torch.randn(6, 7))
        b = model.similarity(visual, music, torch.randn(6, 7))
        none = model.similarity(visual, music, None)
        all_hidden = torch.ones(6, dtype=torch.bool)
        hidden_a = model.embed_query(*visual, torch.randn(6, 7), all_hidden)
        hidden_b = model.embed_query(*visual, torch.randn(6, 7), all_hidden)
    assert not torch.equal(torch.argsort(a, 1), torch.argsort(b, 1))  # the ranking moves
    assert torch.allclose(hidden_a, hidden_b, atol=1e-6)  # a hidden prompt is not read
    m = model.embed_music(*music)
    assert torch.allclose(none, hidden_a @ m.T, atol=1e-5)
    with pytest.raises(ConfigError, match="prompt"):
        model.embed_query(*visual, torch.randn(6, 4))


@pytest.mark.parametrize("name", VIDEO_MUSIC_MODELS.names())
def test_every_registered_model_trains_and_round_trips(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(name, TINY[name]).train()
    loss, parts = model.loss(batch())
    assert loss.ndim == 0 and torch.isfinite(loss) and parts
    loss.backward()
    trained = [p for p in model.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(trained) > len(list(model.parameters())) // 2
    model.eval()
    directory = model.save(tmp_path / name, seed=0)
    assert sorted(p.name for p in directory.iterdir()) == [
        "video_music.json",
        "video_music.safetensors",
    ]
    meta = json.loads((directory / "video_music.json").read_text())
    assert meta["model"] == name and meta["provenance"] == {"seed": 0}
    loaded = load_video_music(directory)
    assert type(loaded) is type(model) and loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    b = batch(seed=5)
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        first = model.loss(b)[0]
        torch.manual_seed(1)
        assert torch.equal(loaded.loss(b)[0], first)


def test_loading_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"video_music\.json"):
        load_video_music(tmp_path)
    torch.manual_seed(0)
    directory = build_model("trimodal", TINY["trimodal"]).save(tmp_path / "m")
    meta = json.loads((directory / "video_music.json").read_text())
    meta["config"]["text_dropuot"] = 0.1
    (directory / "video_music.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="text_dropout"):
        load_video_music(directory)
    meta["format_version"] = 99
    (directory / "video_music.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format_version"):
        load_video_music(directory)


def test_visual_stream_embeds_each_frame_with_the_tower() -> None:
    torch.manual_seed(0)
    tower = build_image_encoder("sheet_cnn_test", height=32, width=40).eval()
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (t, 32, 40), dtype=np.uint8) for t in (3, 1, 4)]
    out = visual_stream(tower, clips, batch_size=2)
    assert [tuple(x.shape) for x in out] == [(3, 8), (1, 8), (4, 8)]
    from echoic.vision import image_batch

    with torch.no_grad():
        alone = tower(image_batch(list(clips[2]), 32, 40))
    assert torch.allclose(out[2], alone, atol=1e-5)
