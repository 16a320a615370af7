"""Mixing augmentation (``data.mix``): SNR in range, determinism per batch, backgrounds from a list,
speed perturbation, and exact resume with mixing on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from echoic.errors import ConfigError
from echoic.train.config import MixConfig, load_config
from echoic.train.data import Clip, CropDataset, collate_crops
from echoic.train.mix import MixCollate, mix_rows, speed_perturb
from echoic.train.run import pretrain

SR = 16000


def _rows(n: int = 6, samples: int = 4000) -> np.ndarray:
    t = np.arange(samples) / SR
    return np.stack(
        [(0.2 + 0.05 * i) * np.sin(2 * np.pi * (200 + 97 * i) * t) for i in range(n)]
    ).astype(np.float32)


def _snr(clean: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed - clean
    return float(10 * np.log10(np.mean(clean**2) / np.mean(noise**2)))


def test_mixed_rows_land_in_the_snr_range() -> None:
    x = _rows()
    lengths = np.full(len(x), x.shape[1])
    clips = np.arange(len(x))
    config = MixConfig(enabled=True, probability=1.0, snr_db=(3.0, 9.0), gain_db=(0.0, 0.0))
    snrs = []
    for seed in range(5):
        out = mix_rows(x, lengths, clips, config, SR, np.random.default_rng(seed))
        snrs += [_snr(x[i], out[i]) for i in range(len(x))]
    assert min(snrs) >= 3.0 - 1e-3 and max(snrs) <= 9.0 + 1e-3
    assert max(snrs) - min(snrs) > 3.0  # drawn across the range, not one value
    # each background is another clip's row: the residual correlates with one of them
    out = mix_rows(x, lengths, clips, config, SR, np.random.default_rng(0))
    residual = out[0] - x[0]
    corr = [abs(np.corrcoef(residual, x[j])[0, 1]) for j in range(1, len(x))]
    assert max(corr) > 0.99


def test_gain_range_and_probability_zero() -> None:
    x = _rows()
    lengths = np.full(len(x), x.shape[1])
    config = MixConfig(enabled=True, probability=0.0, gain_db=(-6.0, -3.0))
    out = mix_rows(x, lengths, np.arange(len(x)), config, SR, np.random.default_rng(1))
    gains = 20 * np.log10(np.abs(out).max(axis=1) / np.abs(x).max(axis=1))
    assert np.all(gains >= -6.0 - 1e-4) and np.all(gains <= -3.0 + 1e-4)
    ratio = out[:, 1:] / x[:, 1:]  # no background: every row is its clip times one gain
    assert np.allclose(ratio, ratio[:, :1], atol=1e-4)


def test_speed_perturbation_shifts_pitch() -> None:
    t = np.arange(8000) / SR
    x = np.sin(2 * np.pi * 500 * t).astype(np.float32)
    y = speed_perturb(x, 1.1, SR, np.random.default_rng(0))
    assert y.shape == x.shape
    peak = np.argmax(np.abs(np.fft.rfft(y * np.hanning(len(y))))) * SR / len(y)
    assert peak == pytest.approx(550, abs=6)


def _items(numbers: list[int], x: np.ndarray) -> list[dict]:
    return [
        {
            "audio": x[i : i + 1],
            "lengths": np.array([x.shape[1]]),
            "clip": i,
            "number": numbers[i],
            "failed": [],
        }
        for i in range(len(numbers))
    ]


def test_mix_collate_is_deterministic_per_batch() -> None:
    x = _rows(4)
    config = MixConfig(enabled=True, probability=1.0, speed=0.05)
    mix = MixCollate(config, seed=3, sample_rate=SR)
    a = mix(_items([0, 1, 2, 3], x))["waveform"]
    b = MixCollate(config, seed=3, sample_rate=SR)(_items([0, 1, 2, 3], x))["waveform"]
    c = mix(_items([4, 5, 6, 7], x))["waveform"]  # the next batch: other draws
    d = MixCollate(config, seed=4, sample_rate=SR)(_items([0, 1, 2, 3], x))["waveform"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, d)
    assert not torch.equal(a, collate_crops(_items([0, 1, 2, 3], x))["waveform"])


def test_backgrounds_come_from_the_list(tmp_path: Path) -> None:
    noise = 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    sf.write(tmp_path / "bg.wav", noise, SR, subtype="FLOAT")
    x = _rows(2)
    config = MixConfig(enabled=True, probability=1.0, snr_db=(0.0, 0.0), gain_db=(0.0, 0.0))
    mix = MixCollate(config, 0, SR, [Clip(str(tmp_path / "bg.wav"), "bg.wav")])
    out = mix(_items([0, 1], x))["waveform"].numpy()
    residual = out[0] - x[0]
    assert _snr(x[0], out[0]) == pytest.approx(0.0, abs=1e-3)
    # the residual is a crop of the noise file, not the other row
    assert abs(np.corrcoef(residual, x[1])[0, 1]) < 0.1
    windows = np.lib.stride_tricks.sliding_window_view(noise, len(residual))
    best = windows[np.argmax(windows @ residual)]
    assert np.corrcoef(best, residual)[0, 1] > 0.9999


def test_bad_ranges_are_refused() -> None:
    with pytest.raises(ConfigError, match="snr_db"):
        MixCollate(MixConfig(enabled=True, snr_db=(10.0, 0.0)), 0, SR)


def test_dataset_items_carry_their_number(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _rows(1)[0], SR)
    data = CropDataset([Clip(str(tmp_path / "a.wav"), "a.wav")], SR, crop_s=0.1)
    assert data[5]["number"] == 5


def _losses(out: Path) -> dict[int, float]:
    import json

    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows}


def test_resume_is_exact_with_mixing_on(tmp_path: Path) -> None:
    from test_train_resume import STOP, TOTAL, StopAfter, recipe

    torch.set_num_threads(1)
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(6):
        t = np.arange(int(SR * (0.7 + 0.3 * i))) / SR
        sf.write(audio / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (150 + 60 * i) * t)), SR)
    mix = [
        "--data.mix.enabled=true",
        "--data.mix.probability=1.0",
        "--data.mix.speed=0.05",
        "--data.mix.snr_db=[0, 10]",
    ]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    pretrain(load_config(None, [*recipe(audio, straight, "eat"), *mix]), export=False)
    plain = tmp_path / "plain"
    pretrain(load_config(None, recipe(audio, plain, "eat")), export=False)
    args = [*recipe(audio, resumed, "eat"), *mix]
    pretrain(load_config(None, args), callbacks=[StopAfter(STOP)], export=False)
    ckpt = resumed / "checkpoints" / f"step={STOP:08d}.ckpt"
    pretrain(load_config(None, args), resume=str(ckpt), export=False)
    expected, got = _losses(straight), _losses(resumed)
    assert sorted(got) == list(range(1, TOTAL + 1))
    assert max(abs(got[s] - expected[s]) for s in range(STOP + 1, TOTAL + 1)) <= 1e-6
    # control: mixing changes the batches, hence the losses
    assert max(abs(expected[s] - _losses(plain)[s]) for s in range(1, TOTAL + 1)) > 1e-4


def test_the_commented_recipe_block_is_a_valid_config(tmp_path: Path) -> None:
    """eat_small.yaml states the mixing settings in a commented block; uncommented, it loads."""
    recipe = Path(__file__).parents[2] / "configs/pretrain/eat_small.yaml"
    lines, inside = [], False
    for line in recipe.read_text().splitlines():
        if line.startswith("  # mix:"):
            inside = True
        if (inside and line.startswith("  #   ")) or line.startswith("  # mix:"):
            line = "  " + line[4:]
        elif inside:
            inside = False
        lines.append(line)
    (tmp_path / "r.yaml").write_text("\n".join(lines))
    mix = load_config(tmp_path / "r.yaml").data.mix
    assert mix == MixConfig(True, 0.5, (0.0, 20.0), (-6.0, 6.0), 0.05, ())
