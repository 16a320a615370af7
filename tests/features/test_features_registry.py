"""Frontend registry, config validation and input checks: errors name what to use instead."""

from __future__ import annotations

import json

import pytest
import torch

from echoic.config import to_dict
from echoic.errors import ConfigError
from echoic.features.base import FRONTENDS, Frontend, build_frontend
from echoic.features.kaldi import KaldiFbankConfig, KaldiFbankFrontend
from echoic.features.logmel import LogMelConfig, LogMelFrontend
from echoic.registry import RegistryError
from echoic.types import AudioBatch


def test_registry_lists_both_frontends() -> None:
    assert {"logmel", "kaldi_fbank"} <= set(FRONTENDS.names())
    assert FRONTENDS.get("logmel") == (LogMelConfig, LogMelFrontend)
    assert FRONTENDS.get("kaldi_fbank") == (KaldiFbankConfig, KaldiFbankFrontend)


def test_unknown_frontend_names_the_nearest() -> None:
    with pytest.raises(RegistryError, match="'kaldi_fbank'"):
        build_frontend("kaldi_fbnak")
    with pytest.raises(RegistryError, match="'logmel'"):
        build_frontend("log_mel")


def test_unknown_config_key_names_the_nearest() -> None:
    with pytest.raises(ConfigError, match=r"n_mel.*'n_mels'"):
        build_frontend("kaldi_fbank", {"n_mel": 80})
    with pytest.raises(ConfigError, match="'hop_length'"):
        build_frontend("logmel", {"hop_lenght": 160})


def test_invalid_choices_name_the_nearest() -> None:
    with pytest.raises(ConfigError, match="'hanning'"):
        build_frontend("kaldi_fbank", {"window": "hann"})
    with pytest.raises(ConfigError, match="'slaney'"):
        build_frontend("logmel", {"mel_scale": "slany"})
    with pytest.raises(ConfigError, match="'log10'"):
        build_frontend("logmel", {"log": "log_10"})


@pytest.mark.parametrize(
    ("name", "config", "match"),
    [
        ("logmel", {"win_length": 512, "n_fft": 400}, "n_fft"),
        ("logmel", {"f_max": 9000.0}, "f_max"),
        ("logmel", {"std": 0.0}, "std"),
        ("kaldi_fbank", {"high_freq": 9000.0}, "high_freq"),
        ("kaldi_fbank", {"low_freq": 5000.0, "high_freq": 4000.0}, "low_freq"),
        ("kaldi_fbank", {"n_mels": 3}, "n_mels"),
        ("kaldi_fbank", {"std": -1.0}, "std"),
    ],
)
def test_invalid_values_are_rejected(name: str, config: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_frontend(name, config)


def test_config_instances_and_types() -> None:
    frontend = build_frontend("kaldi_fbank", KaldiFbankConfig(n_mels=40))
    assert isinstance(frontend, Frontend) and frontend.n_bins == 40
    assert build_frontend("kaldi_fbank", {"n_mels": 40, "use_energy": True}).n_bins == 41
    with pytest.raises(ConfigError, match="KaldiFbankConfig"):
        build_frontend("kaldi_fbank", LogMelConfig())


def test_to_dict_round_trips_through_json() -> None:
    frontend = build_frontend("logmel", {"n_mels": 64, "mel_norm": "slaney", "mean": -3.0})
    spec = json.loads(json.dumps(frontend.to_dict()))
    assert spec["name"] == "logmel" and spec["config"]["n_mels"] == 64
    rebuilt = build_frontend(spec["name"], spec["config"])
    assert to_dict(rebuilt.config) == to_dict(frontend.config)
    batch = AudioBatch(torch.randn(2, 4000) * 0.1, torch.tensor([4000, 3000]), 16000)
    assert torch.equal(rebuilt(batch).values, frontend(batch).values)


def test_wrong_sample_rate_says_how_to_resample() -> None:
    frontend = build_frontend("kaldi_fbank")
    batch = AudioBatch(torch.zeros(1, 8000), torch.tensor([8000]), 8000)
    with pytest.raises(ValueError, match=r"16000 Hz.*8000 Hz.*load_audio\(.*sample_rate=16000"):
        frontend(batch)


def test_multichannel_audio_is_rejected() -> None:
    frontend = build_frontend("logmel")
    batch = AudioBatch(torch.zeros(1, 2, 8000), torch.tensor([8000]), 16000)
    with pytest.raises(ValueError, match=r"mono.*2 channels"):
        frontend(batch)


def test_lengths_beyond_the_waveform_are_rejected() -> None:
    frontend = build_frontend("logmel")
    batch = AudioBatch(torch.zeros(2, 8000), torch.tensor([8000, 9000]), 16000)
    with pytest.raises(ValueError, match="lengths"):
        frontend(batch)
