"""The teacher-distillation objectives (``spear``, ``unfused``): targets of fitted tokenizers over
frozen teachers against a direct computation, SPEAR's per-domain loss weights, UNFUSED's exits,
and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from echoic.checkpoint import EchoicModel, ModelConfig, save
from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.objectives import build_objective
from echoic.objectives.teachers import per_item_cross_entropy
from echoic.objectives.unfused import default_exits
from echoic.tokenizers import build_tokenizer
from echoic.types import Features, TrainBatch

SMALL_SPEAR = {"n_codebooks": 2, "codebook_size": 8}


def fbank(batch: int = 3, frames: int = 96, seed: int = 0) -> Features:
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, 128, frames, generator=g)
    lengths = torch.tensor([frames, frames - 30, frames])[:batch]
    return Features(values, lengths, hop_s=0.01, first_centre_s=0.0125)


def teacher_dir(tmp_path: Path, name: str, encoder: str = "vit_test", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    frontend = "waveform" if encoder.startswith("wav") else "kaldi_fbank"
    save(EchoicModel(ModelConfig(encoder=encoder, frontend=frontend)), tmp_path / name)
    return tmp_path / name


def layer_frames(model_dir: Path, feats: Features, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    from echoic.checkpoint import load_dir

    encoder = load_dir(model_dir).encoder
    with torch.no_grad():
        return encoder(feats).layers[layer], encoder.token_padding(feats)


def test_per_item_cross_entropy_matches_a_direct_computation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, generator=g)
    ids = torch.randint(0, 5, (2, 4, 3), generator=g)
    valid = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    ce, accuracy = per_item_cross_entropy(logits, ids, valid)
    terms = [F.cross_entropy(logits[0, m], ids[0, m]) for m in (0, 2, 3)]
    hits = [(logits[0, m].argmax(-1) == ids[0, m]).float().mean() for m in (0, 2, 3)]
    assert torch.allclose(ce[0], torch.stack(terms).mean())
    assert torch.allclose(accuracy[0], torch.stack(hits).mean())
    assert ce[1] == 0 and accuracy[1] == 0  # no valid token: contributes nothing


def test_spear_targets_are_fitted_mvq_codes_of_each_teachers_layer(tmp_path: Path) -> None:
    feats = fbank()
    dirs, tokenizers, frames = [], [], []
    for t, layer in enumerate((1, 2)):
        model_dir = teacher_dir(tmp_path, f"teacher{t}", seed=t)
        layer_out, padding = layer_frames(model_dir, feats, layer)
        mvq = build_tokenizer(
            "mvq", 32, {"n_codebooks": 4, "codebook_size": 4, "epochs": 1, "seed": t}
        )
        mvq.fit([layer_out[b][~padding[b]] for b in range(3)])
        mvq.save(tmp_path / f"mvq{t}")
        dirs.append(str(model_dir))
        tokenizers.append(mvq)
        frames.append((layer_out, padding))
    config = {
        "teachers": dirs,
        "teacher_layers": [1, 2],
        "tokenizers": [str(tmp_path / "mvq0"), str(tmp_path / "mvq1")],
    }
    torch.manual_seed(5)
    obj = build_objective("spear", build_encoder("vit_test"), config).train()
    for t in range(2):
        layer_out, padding = frames[t]
        expected = tokenizers[t](layer_out, padding)
        assert expected.shape[-1] == 4
        assert torch.equal(obj.targets[t](feats, obj.encoder), expected)
        assert not obj.targets[t].training
    assert obj.heads[0].out_features == 4 * 4  # one 4-way softmax per codebook per teacher
    out = obj(TrainBatch.of(feats), torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in obj.targets.parameters())
    # a tokenizer fitted on other frames is refused, naming the widths
    config["tokenizers"] = [str(tmp_path / "mvq0"), None]
    config["teachers"] = ["echoic-untrained-tiny", dirs[1]]
    with pytest.raises(ConfigError, match="192"):
        build_objective("spear", build_encoder("vit_test"), config)


def test_spear_refuses_a_teacher_on_another_grid_and_a_wrong_pair(tmp_path: Path) -> None:
    wav = teacher_dir(tmp_path, "wav", encoder="wav_test")
    with pytest.raises(ConfigError, match="token grid"):
        build_objective("spear", build_encoder("vit_test"), {"teachers": [None, str(wav)]})
    with pytest.raises(ConfigError, match="two entries"):
        build_objective("spear", build_encoder("vit_test"), {"teacher_layers": [1]})
    with pytest.raises(ConfigError, match="default_domain"):
        build_objective("spear", build_encoder("vit_test"), {"default_domain": "music"})


def test_spear_weighs_each_teacher_by_the_items_domain() -> None:
    torch.manual_seed(0)
    obj = build_objective("spear", build_encoder("vit_test"), SMALL_SPEAR).train()
    weights = obj.item_weights(torch.tensor([True, False, True]), 3)
    assert weights.tolist() == [[1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]
    assert obj.item_weights(None, 2).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    feats = fbank()

    def run(is_speech: torch.Tensor | None) -> tuple[float, dict[str, float]]:
        batch = TrainBatch.of(feats)
        if is_speech is not None:
            batch.is_speech = is_speech  # type: ignore[attr-defined]
        out = obj(batch, torch.Generator().manual_seed(7))
        return float(out.loss.detach()), out.logs

    equal, logs = run(None)  # no domain on the batch: default_domain "equal"
    assert equal == pytest.approx(logs["ce_speech"] + logs["ce_audio"], rel=1e-5)
    audio_only, logs = run(torch.tensor([False, False, False]))
    assert audio_only == pytest.approx(logs["ce_audio"], rel=1e-5)
    assert audio_only < equal
    audio_default = build_objective(
        "spear", build_encoder("vit_test"), {**SMALL_SPEAR, "default_domain": "audio"}
    )
    audio_default.load_state_dict(obj.state_dict())
    out = audio_default.train()(TrainBatch.of(feats), torch.Generator().manual_seed(7))
    assert float(out.loss.detach()) == pytest.approx(audio_only, rel=1e-5)


def test_unfused_exits_and_loss_are_the_mean_of_the_exit_cross_entropies() -> None:
    assert default_exits(12) == [4, 8, 12]
    assert default_exits(2) == [1, 2] and default_exits(1) == [1]
    torch.manual_seed(0)
    config = {"codebook_size": 16, "mask_prob": 0.0}
    obj = build_objective("unfused", build_encoder("vit_test"), config).train()
    assert obj.exits == [1, 2]
    feats = fbank()
    first = obj(TrainBatch.of(feats), torch.Generator().manual_seed(1))
    again = obj(TrainBatch.of(feats), torch.Generator().manual_seed(2))
    assert torch.equal(first.loss, again.loss)  # no masking: no random choice
    mean = (first.logs["ce_exit1"] + first.logs["ce_exit2"]) / 2
    assert float(first.loss.detach()) == pytest.approx(mean, rel=1e-5)
    assert first.logs["masked_fraction"] == 0.0
    with pytest.raises(ConfigError, match="exit_layers"):
        build_objective("unfused", build_encoder("vit_test"), {"exit_layers": [3]})


def test_unfused_distils_a_bigger_teachers_kmeans_ids_into_a_smaller_student(
    tmp_path: Path,
) -> None:
    feats = fbank()
    from echoic.cards import load

    teacher = load("echoic-untrained-tiny")
    assert isinstance(teacher, EchoicModel)
    with torch.no_grad():
        layer = teacher.encoder(feats).layers[4]
    padding = teacher.encoder.token_padding(feats)
    kmeans = build_tokenizer("kmeans", 192, {"n_clusters": 6, "init_frames": 200, "epochs": 1})
    kmeans.fit([layer[b][~padding[b]] for b in range(3)])
    kmeans.save(tmp_path / "km")
    config = {
        "teacher": "echoic-untrained-tiny",
        "teacher_layer": 4,
        "tokenizer": str(tmp_path / "km"),
    }
    torch.manual_seed(0)
    student = build_encoder("vit_test")
    obj = build_objective("unfused", student, config).train()
    teacher_params = sum(p.numel() for p in obj.targets.teacher.parameters())
    assert sum(p.numel() for p in student.parameters()) * 10 < teacher_params
    assert torch.equal(obj.targets(feats, obj.encoder), kmeans(layer, padding))
    params = [p for p in obj.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for step in range(15):
        out = obj(TrainBatch.of(feats), torch.Generator().manual_seed(step))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses
