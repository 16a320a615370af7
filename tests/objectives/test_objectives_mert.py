"""MERT (``mert``): the CQT against librosa, the in-batch noise mixture, targets from the clean
clip, the codec's heads, and a short run on generated tonal audio. The contract and resume tests
(tests/objectives/test_objectives_contract.py, tests/train/test_train_resume.py) run it too."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from echoic.encoders import build_encoder
from echoic.errors import ConfigError
from echoic.features.cqt import C1_HZ, ConstantQ, ConstantQConfig, cqt_frequencies
from echoic.objectives import build_objective
from echoic.objectives import mert as mert_module
from echoic.objectives.discrete import log_mel_steps, token_frames
from echoic.objectives.mert import MertConfig, MertObjective, mix_in_batch
from echoic.tokenizers import build_tokenizer
from echoic.types import Features, TrainBatch

RATE = 24000
SMALL = {"n_codebooks": 3, "codebook_size": 16, "final_dim": 16}


def tones(n_items: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """``(n_items, S)`` harmonic notes (3 partials, random pitch from C2 to C6 per item, a new
    note every half second) plus a little noise, at 24 kHz."""
    g = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    out = np.zeros((n_items, t.size))
    for i in range(n_items):
        for start in np.arange(0.0, seconds, 0.5):
            f0 = C1_HZ * 2 ** (g.uniform(12, 60) / 12)
            note = (t >= start) & (t < start + 0.5)
            for h, a in ((1, 0.5), (2, 0.25), (3, 0.12)):
                out[i] += note * a * np.sin(2 * np.pi * h * f0 * t + g.uniform(0, 6))
    out += 0.01 * g.standard_normal(out.shape)
    return torch.from_numpy(out).float()


def wave_features(waves: torch.Tensor, lengths: list[int] | None = None) -> Features:
    lens = torch.tensor(lengths) if lengths else torch.full((waves.shape[0],), waves.shape[1])
    values = waves.clone()
    for i, n in enumerate(lens.tolist()):
        values[i, n:] = 0
    return Features(values[:, None], lens, 1.0 / RATE, 0.0)


# ----------------------------------------------------------------------------------- the CQT
def test_cqt_matches_librosa() -> None:
    """librosa decimates octave by octave (soxr) and drops 1 % of each kernel's mass
    (sparsity=0.01); echoic convolves at full rate with symmetric, rounded-length kernels.
    Measured: 0.5 % relative (Frobenius) error on tones + noise; 2 % leaves 4x room while a
    wrong Q, a frame off by a hop or a wrong normalisation is off by > 10 %."""
    librosa = pytest.importorskip(
        "librosa", reason="librosa is the CQT reference (pip install librosa); not installed"
    )
    y = tones(1, 2.0, seed=3)[0].numpy()
    for scaled in (True, False):
        reference = np.abs(
            librosa.cqt(y, sr=RATE, hop_length=320, fmin=C1_HZ, n_bins=84, scale=scaled)
        )
        if not scaled:  # librosa's unscaled response is the L1-normalised one times the length
            lengths, _ = librosa.filters.wavelet_lengths(
                freqs=librosa.cqt_frequencies(84, fmin=C1_HZ), sr=RATE
            )
            reference = reference / lengths[:, None]
        ours = ConstantQ(ConstantQConfig(sample_rate=RATE, length_scaling=scaled))
        mine = ours(torch.from_numpy(y)[None])[0].numpy()
        assert mine.shape == reference.shape == (84, 1 + y.size // 320)
        error = np.linalg.norm(mine - reference) / np.linalg.norm(reference)
        assert error < 0.02, (scaled, error)


def test_cqt_tone_gives_half_its_amplitude_in_its_bin() -> None:
    cqt = ConstantQ(ConstantQConfig(sample_rate=RATE))
    freqs = cqt_frequencies(cqt.config)
    t = torch.arange(RATE, dtype=torch.float64) / RATE
    for k in (5, 40, 80):
        wave = (0.8 * torch.cos(2 * math.pi * float(freqs[k]) * t)).float()[None]
        frame = cqt(wave)[0, :, 37]  # mid-clip: the longest kernel (0.53 s) fits
        assert abs(float(frame[k]) - 0.4) < 0.004
        assert int(frame.argmax()) == k and float(frame[k - 2]) < 0.1


def test_cqt_first_centre_shifts_the_frames() -> None:
    cqt = ConstantQ(ConstantQConfig(sample_rate=RATE))
    wave = tones(2, 1.0)
    centred = cqt(wave)
    shifted = cqt(wave, n_frames=20, first_centre=3 * 320)
    torch.testing.assert_close(shifted, centred[..., 3:23], atol=1e-5, rtol=1e-4)


def test_cqt_refuses_bins_past_nyquist() -> None:
    with pytest.raises(ConfigError, match="Nyquist"):
        ConstantQConfig(sample_rate=8000)  # B7 = 3951 Hz, its band reaches past 4 kHz


# ------------------------------------------------------------------------------ the mixture
def test_mixture_adds_segments_of_other_clips_only_inside_valid_samples() -> None:
    # clip 0 (items 0, 1) is silent, clip 1 (items 2, 3) is all ones; item 1 is shorter
    values = torch.cat([torch.zeros(2, RATE), torch.ones(2, RATE)])
    feats = wave_features(values, [RATE, RATE // 2, RATE, RATE])
    config = MertConfig(mix_prob=1.0, mix_segment_s=[0.1, 0.2])
    clips = torch.tensor([0, 0, 1, 1])
    out, mixed = mix_in_batch(feats, clips, config, torch.Generator().manual_seed(0))
    assert mixed.all()
    assert torch.equal(feats.values, wave_features(values, [RATE, RATE // 2, RATE, RATE]).values)
    for item in (0, 1):  # silent items now hear clip 1, never their own clip's silent views
        added = out.values[item, 0]
        heard = added[added != 0]
        assert 0.1 * RATE <= heard.numel() <= 3 * 0.2 * RATE
        assert heard.min() >= 10 ** (-10 / 20) - 1e-6 and heard.max() <= 3.0 + 1e-6
    assert not out.values[1, 0, RATE // 2 :].any()  # padding stays 0
    assert torch.equal(out.values[2:], feats.values[2:])  # clip 1 heard clip 0's silence
    one_clip = torch.zeros(4, dtype=torch.long)  # no other clip: nothing mixed
    same, none = mix_in_batch(feats, one_clip, config, torch.Generator().manual_seed(0))
    assert not none.any() and torch.equal(same.values, feats.values)


def test_targets_come_from_the_clean_clip_when_mixing(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    obj = build_objective("mert", build_encoder("wav_test"), {**SMALL, "mix_prob": 1.0}).train()
    clean = wave_features(tones(4, 1.0))
    seen: dict[str, Any] = {}
    frames_of = mert_module.token_frames

    def codec_frames(kind: str, features: Features, *args: Any) -> torch.Tensor:
        seen["codec"] = features.values.clone()
        return frames_of(kind, features, *args)

    cqt_of = obj.cqt_targets

    def cqt_targets(features: Features) -> torch.Tensor:
        seen["cqt"] = features.values.clone()
        return cqt_of(features)

    embed = obj.encoder.embed_tokens

    def student(features: Features, *args: Any, **kwargs: Any) -> Any:
        seen["student"] = features.values.clone()
        return embed(features, *args, **kwargs)

    monkeypatch.setattr(mert_module, "token_frames", codec_frames)
    monkeypatch.setattr(obj, "cqt_targets", cqt_targets)
    monkeypatch.setattr(obj.encoder, "embed_tokens", student)
    out = obj(TrainBatch.of(clean), torch.Generator().manual_seed(0))
    assert out.logs["mixed_fraction"] == 1.0
    assert torch.equal(seen["codec"], clean.values) and torch.equal(seen["cqt"], clean.values)
    assert not torch.equal(seen["student"], clean.values)  # the student hears the mixture
    # and the mixture would change the targets: taking them from it would be caught
    mixed = Features(seen["student"], clean.lengths, clean.hop_s, clean.first_centre_s)
    assert not torch.equal(obj.codec(mixed, obj.encoder), obj.codec(clean, obj.encoder))


# ------------------------------------------------------------------------ codec and heads
def test_log_mel_frames_follow_the_token_grid_and_are_normalised_per_clip() -> None:
    encoder = build_encoder("wav_test")
    feats = wave_features(tones(2, 1.0), [RATE, RATE // 2])
    steps = log_mel_steps(feats, encoder.spec)
    assert steps.shape == (2, encoder.spec.time_steps(RATE), 40)
    valid = encoder.spec.time_steps(RATE // 2)
    short = steps[1, :valid]
    torch.testing.assert_close(short.mean(0), torch.zeros(40), atol=1e-3, rtol=0)
    std = short.std(0, unbiased=False)  # 1, or below where a band barely moves (+1e-5 guard)
    assert int(((std - 1).abs() < 1e-2).sum()) >= 30 and bool((std <= 1 + 1e-3).all())


def test_heads_follow_a_fitted_codec(tmp_path: Path) -> None:
    encoder = build_encoder("wav_test")
    feats = wave_features(tones(4, 2.0, seed=1))
    frames = token_frames("logmel", feats, encoder)  # what a tokenizer stage fits on
    codec = build_tokenizer("rvq", 40, {"n_codebooks": 3, "codebook_size": 16, "epochs": 1})
    codec.fit(list(frames))
    codec.source = {"target_frames": "logmel"}
    codec.save(tmp_path / "codec")
    obj = build_objective("mert", encoder, {"tokenizer": str(tmp_path / "codec")})
    assert isinstance(obj, MertObjective)
    assert len(obj.heads) == codec.n_codebooks == 3
    assert [h.classes for h in obj.heads] == list(codec.codebook_sizes) == [16, 16, 16]
    assert torch.equal(obj.codec(feats, encoder), codec(frames))
    loss = obj(TrainBatch.of(feats), torch.Generator().manual_seed(0)).loss
    assert torch.isfinite(loss)
    in_place = build_objective("mert", encoder, {"n_codebooks": 5, "codebook_size": 8})
    assert isinstance(in_place, MertObjective)
    assert [h.classes for h in in_place.heads] == [8] * 5


def test_a_codec_fitted_on_other_frames_is_refused(tmp_path: Path) -> None:
    mfcc = build_tokenizer("rvq", 39, {"n_codebooks": 2, "codebook_size": 4, "epochs": 1})
    mfcc.fit([torch.randn(64, 39)])
    mfcc.save(tmp_path / "mfcc")
    with pytest.raises(ConfigError, match="input: logmel"):
        build_objective("mert", build_encoder("wav_test"), {"tokenizer": str(tmp_path / "mfcc")})


def test_mert_refuses_spectrogram_encoders() -> None:
    with pytest.raises(ConfigError, match="waveform encoder"):
        build_objective("mert", build_encoder("vit_test"))


# ------------------------------------------------------------------------------ training
def test_loss_goes_down_on_tonal_audio() -> None:
    torch.manual_seed(0)
    obj = build_objective("mert", build_encoder("wav_test"), SMALL).train()
    params = [p for p in obj.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(params, lr=2e-3)
    batch = TrainBatch.of(wave_features(tones(4, 1.0, seed=2)))
    generator = torch.Generator().manual_seed(0)
    losses, cqt = [], []
    for _ in range(30):
        out = obj(batch, generator)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        losses.append(float(out.loss.detach()))
        cqt.append(out.logs["cqt_mse"])
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses
    assert np.mean(cqt[-5:]) < np.mean(cqt[:5]), cqt
