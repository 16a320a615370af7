"""Training the video–music models on synthetic streams: the loss goes down, validation keeps the
best checkpoint, the held-out loss is reproducible, prompts are drawn from each clip's own, and a
trained trimodal model follows its prompt (right prompts rank fitting clips higher than wrong)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from echoic.errors import ConfigError
from echoic.evaluate.video_music import alpha_sweep, prompt_sweep
from echoic.objectives.video_music import SemiSupervisedModel, VideoMusicModel, pad_streams
from echoic.objectives.video_music_text import TrimodalModel
from echoic.train.video_music import (
    StreamSet,
    VideoMusicTrainConfig,
    held_out_loss,
    train_video_music,
)

STREAM = {"width": 24, "heads": 2, "dropout": 0.0}
SEMI = {"visual_dim": 8, "music_dim": 6, "dim": 12, "labels": 2, "stream": STREAM}
TRI = {"visual_dim": 8, "music_dim": 6, "text_dim": 5, "dim": 12, "stream": STREAM}


def synthetic(n: int, seed: int, label_in_visual: bool = False) -> StreamSet:
    """Clip ``i``: a random code ``c_i`` seen in every visual frame and, through a fixed linear
    map, in every music frame; a binary label on the first feature of the music frames (and the visual ones with
    ``label_in_visual``). Prompt ``j`` of the table (5-d) describes label ``j``; each clip's two
    choices are its label's prompt."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(8, 6, generator=torch.Generator().manual_seed(99))
    labels = torch.randint(0, 2, (n,), generator=g)
    visual, music = [], []
    for i in range(n):
        code = torch.randn(8, generator=g)
        t_v, t_m = (
            int(torch.randint(3, 7, (1,), generator=g)),
            int(torch.randint(4, 9, (1,), generator=g)),
        )
        sign = 2.0 * float(labels[i]) - 1.0  # on the first feature (LayerNorm removes a shift)
        shown = torch.zeros(8)
        shown[0] = 2.0 * sign * label_in_visual
        visual.append(code + shown + 0.3 * torch.randn(t_v, 8, generator=g))
        label = torch.zeros(6)
        label[0] = 2.0 * sign
        music.append(code @ mix + label + 0.3 * torch.randn(t_m, 6, generator=g))
    prompts = torch.randn(2, 5, generator=torch.Generator().manual_seed(7))
    return StreamSet(
        *pad_streams(visual), *pad_streams(music), labels, prompts, labels[:, None].repeat(1, 2)
    )


def quiet(line: str) -> None:
    pass


@pytest.mark.parametrize(("name", "model_config"), [("semi_supervised", SEMI), ("trimodal", TRI)])
def test_a_short_run_lowers_the_loss(name: str, model_config: dict[str, Any]) -> None:
    config = VideoMusicTrainConfig(
        model=name, model_config=model_config, max_steps=60, batch_size=16, lr=3e-3, warmup_steps=1
    )
    result = train_video_music(config, synthetic(64, 0), log=quiet)
    assert len(result.losses) == 60 and all(np.isfinite(result.losses))
    assert np.mean(result.losses[-10:]) < 0.6 * np.mean(result.losses[:10]), result.losses


def test_validation_restores_the_best_checkpoint() -> None:
    train, valid = synthetic(48, 0), synthetic(24, 1)
    config = VideoMusicTrainConfig(
        model_config=SEMI, max_steps=40, batch_size=16, lr=1e-2, warmup_steps=1, eval_every=10
    )
    seen: list[float] = []

    def validate(model: VideoMusicModel) -> float:
        seen.append(-held_out_loss(model, valid))
        return seen[-1]

    result = train_video_music(config, train, validate, log=quiet)
    assert [s for s, _ in result.validation] == [0, 10, 20, 30, 40]
    best = int(np.argmax(seen))
    assert result.best_step == result.validation[best][0]
    assert -held_out_loss(result.model, valid) == pytest.approx(seen[best], abs=1e-5)


def test_held_out_loss_is_reproducible_and_leaves_the_mode() -> None:
    torch.manual_seed(0)
    from echoic.train.video_music import build_model

    model = build_model("trimodal", TRI).train()
    data = synthetic(20, 3)
    first = held_out_loss(model, data, size=8)
    assert held_out_loss(model, data, size=8) == first and model.training
    assert held_out_loss(model, data, seed=1, size=8) != first  # other prompt draws and dropout


def test_batches_draw_prompts_from_each_clips_choices() -> None:
    data = synthetic(30, 0)
    assert data.prompts is not None
    generator = torch.Generator().manual_seed(0)
    batch = data.batch(torch.arange(30), generator)
    assert batch.text is not None
    assert torch.equal(batch.text, data.prompts[data.labels])
    assert batch.visual.shape[1] == int(data.visual_lens.max())
    with pytest.raises(ConfigError, match="rows"):
        StreamSet(data.visual, data.visual_lens, data.music[:5], data.music_lens, data.labels)


def test_trained_models_use_the_pairing_the_labels_and_the_prompt() -> None:
    base = {"max_steps": 150, "batch_size": 32, "lr": 3e-3, "warmup_steps": 1}
    train, test = synthetic(96, 0, label_in_visual=True), synthetic(40, 1, label_in_visual=True)
    visual, music = (test.visual, test.visual_lens), (test.music, test.music_lens)
    semi = train_video_music(VideoMusicTrainConfig(model_config=SEMI, **base), train, log=quiet)
    assert isinstance(semi.model, SemiSupervisedModel)
    sweep = alpha_sweep(semi.model, visual, music, test.labels.tolist())
    assert sweep["1"]["v2m_R@1"] > 0.5  # the pairing: chance is 1/40
    # α = 0 ranks by label; α = 1 by the pairing, whose top 5 agree less
    assert sweep["0"]["v2m_agree@5"] > 0.8
    assert sweep["1"]["v2m_R@1"] > sweep["0"]["v2m_R@1"] + 0.3
    assert sweep["0"]["v2m_agree@5"] > sweep["1"]["v2m_agree@5"]
    # the prompt is the only way to the label when the frames do not show it
    train, test = synthetic(96, 0), synthetic(40, 1)
    visual, music = (test.visual, test.visual_lens), (test.music, test.music_lens)
    tri = train_video_music(
        VideoMusicTrainConfig(model="trimodal", model_config=TRI, **{**base, "max_steps": 300}),
        train,
        log=quiet,
    )
    assert isinstance(tri.model, TrimodalModel)
    assert test.prompts is not None
    labels = test.labels
    fits = (labels[None, :] == labels[:, None]).numpy()
    flipped = 1 - labels
    scores = prompt_sweep(
        tri.model,
        visual,
        music,
        {
            "right": (test.prompts[labels], fits),
            "wrong": (test.prompts[flipped], (flipped[:, None] == labels[None, :]).numpy()),
        },
    )
    assert scores["right"]["prompt_match@5"] > scores["wrong"]["prompt_match@5"] + 0.15
    assert scores["right"]["v2m_MRR"] > scores["wrong"]["v2m_MRR"]
