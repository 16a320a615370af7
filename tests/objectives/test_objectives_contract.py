"""The contract every registered objective keeps, run on every encoder family it accepts.

Each objective is built with its default config around a tiny encoder of each family
(``vit_test``: spectrogram patches; ``wav_test``: waveform frames). An objective either trains
the encoder (the checks below) or refuses it at build time with a ConfigError saying why.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from echoic.encoders import build_encoder, encoder_config
from echoic.errors import ConfigError
from echoic.objectives import OBJECTIVES, Objective, build_objective
from echoic.types import Features, TrainBatch

NAMES = OBJECTIVES.names()
FAMILIES = ("vit_test", "wav_test", "byol_a_test", "tera_test")
"""Spectrogram patches, waveform frames, and the CNN and transformer frame encoders."""
COMBOS = [(name, family) for name in NAMES for family in FAMILIES]


def test_the_methods_are_registered() -> None:
    methods = {"mae", "eat", "ssast", "m2d", "byol_a", "tera", "data2vec2", "wavjepa", "asit"}
    assert methods <= set(NAMES)


def features(batch: int = 2, frames: int = 64, seed: int = 0, family: str = "vit_test") -> Features:
    """Random features of the shape the family's frontend gives (Kaldi fbank or waveform)."""
    g = torch.Generator().manual_seed(seed)
    if encoder_config(family).spec().input == "waveform":
        samples = frames * 160  # as many seconds as ``frames`` fbank frames
        values = torch.randn(batch, 1, samples, generator=g) * 0.1
        return Features(values, torch.full((batch,), samples), 1 / 16000, 0.0)
    values = torch.randn(batch, encoder_config(family).spec().n_bins, frames, generator=g)
    return Features(values, torch.full((batch,), frames), hop_s=0.01, first_centre_s=0.0125)


CAPTIONS = ["a dog barking", "rain on a tin roof", "a violin playing C4", "a door slams"]


def build(name: str, seed: int = 0, family: str = "vit_test") -> Objective:
    torch.manual_seed(seed)
    # audio–text objectives with the tiny trainable text tower (their default is frozen minilm)
    config = {"text": "text_test"} if OBJECTIVES.get(name).needs_text else None
    return build_objective(name, build_encoder(family), config).train()


def batch_of(obj: Objective, feats: Features) -> TrainBatch:
    """One view per clip; objectives that read captions (``needs_text``) get one per clip."""
    n = int(feats.values.shape[0])
    text = obj.caption_tokenizer()(CAPTIONS[:n]) if obj.needs_text else None
    return TrainBatch.of(feats, text=text)


def loss_of(obj: Objective, feats: Features, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)  # dropout / drop-path, if any
    return obj(batch_of(obj, feats), torch.Generator().manual_seed(seed)).loss


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{n}-{f}" for n, f in COMBOS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    name, family = request.param
    try:
        OBJECTIVES.get(name).check_encoder(encoder_config(family).spec())
    except ConfigError as err:
        assert str(err), "a refusal must say why"
        pytest.skip(f"{name} declares it cannot train {family}: {err}")
    return name, family


def test_finite_scalar_loss_and_float_logs(combo: tuple[str, str]) -> None:
    name, family = combo
    obj = build(name, family=family)
    out = obj(batch_of(obj, features(family=family)), torch.Generator().manual_seed(0))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert out.logs and all(isinstance(v, float) for v in out.logs.values())
    assert obj.encoder is not None and obj.name == name


def test_gradients_reach_every_encoder_parameter_and_no_teacher(combo: tuple[str, str]) -> None:
    name, family = combo
    obj = build(name, family=family)
    loss_of(obj, features(family=family)).backward()
    for pname, p in obj.encoder.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reached encoder.{pname}"
        assert torch.isfinite(p.grad).all()
    teacher = obj.teacher()
    if teacher is not None:
        assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
        assert not any(p is q for p in teacher.parameters() for q in obj.encoder.parameters())


def test_an_optimiser_step_leaves_the_teacher_alone_until_the_hook(combo: tuple[str, str]) -> None:
    name, family = combo
    obj = build(name, family=family)
    teacher = obj.teacher()
    params = [p for p in obj.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    before = {k: v.clone() for k, v in obj.state_dict().items()}
    loss_of(obj, features(family=family)).backward()
    opt.step()
    if teacher is None:
        assert obj.after_optimizer_step() == {}
        return
    t_prefix = next(n for n, m in obj.named_children() if m is teacher) + "."
    t_names = {k for k in before if k.startswith(t_prefix)}
    assert t_names
    for k in t_names:
        assert torch.equal(obj.state_dict()[k], before[k]), f"{k} moved before the hook"
    logs = obj.after_optimizer_step()
    assert all(isinstance(v, float) for v in logs.values())
    moved = [k for k in t_names if not torch.equal(obj.state_dict()[k], before[k])]
    assert moved, "the EMA hook did not move the teacher"


def test_state_dict_round_trips(combo: tuple[str, str]) -> None:
    name, family = combo
    a = build(name, seed=0, family=family)
    b = build(name, seed=1, family=family)
    feats = features(family=family)
    assert not torch.equal(loss_of(a, feats), loss_of(b, feats))
    b.load_state_dict(a.state_dict(), strict=True)
    assert set(a.state_dict()) == set(b.state_dict())
    assert torch.equal(loss_of(a, feats), loss_of(b, feats))


def test_same_seed_same_loss_and_other_seed_other_masks(combo: tuple[str, str]) -> None:
    name, family = combo
    obj = build(name, family=family)
    feats = features(family=family)
    first = loss_of(obj, feats, seed=3)
    assert torch.equal(first, loss_of(obj, feats, seed=3))
    assert not torch.equal(first, loss_of(obj, feats, seed=4))


def test_unknown_config_key_names_the_nearest() -> None:
    from echoic.errors import ConfigError

    with pytest.raises(ConfigError, match="mask_ratio"):
        build_objective("mae", build_encoder("vit_test"), {"mask_ration": 0.5})


def test_objectives_do_not_import_the_training_stack() -> None:
    modules = ", ".join(f"echoic.objectives.{name}" for name in NAMES)
    code = (
        f"import sys, {modules};"
        "bad = [m for m in sys.modules if m.startswith(('lightning', 'echoic.train'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_objective_refuses_an_encoder_it_cannot_train() -> None:
    no_cls = build_encoder("wav_test", cls_token=False)
    with pytest.raises(ConfigError, match="CLS token"):
        build_objective("eat", no_cls)
    build_objective("mae", no_cls)  # mae has no utterance loss: fine without CLS


def test_train_batches_say_which_items_are_views_of_which_clip() -> None:
    feats = features(batch=6)
    batch = TrainBatch.of(feats, views=3)
    assert batch.clip_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert batch.view_index.tolist() == [0, 1, 2, 0, 1, 2]
    assert batch.n_clips == 2 and batch.audio is None
    with pytest.raises(ValueError, match="multiple of 4"):
        TrainBatch.of(feats, views=4)
