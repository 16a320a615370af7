"""``msclap``: CLAP 2022 checkpoints (``{"model": CLAP state dict}``), converted to the ``cnn14``
encoder, give every block of msclap 1.3.4's Cnn14 on real clips at 44.1 kHz given the same log-mel
(max |diff| <= 1e-4), and from the waveform within the float32 noise of torchlibrosa's
convolution STFT (see the CLAP trap in docs/converting.md; ``-s`` prints the maxima).
"""

from __future__ import annotations

import pytest
import torch
from clap_reference import clap_checkpoint, cnn14_trace, make_audio_encoder, msclap_modules
from convert_helpers import layer_diffs
from converted_checks import check_hear, linear_smoke, task_dir

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, convert, detect
from echoic.encoders import build_encoder
from echoic.types import AudioBatch, Features

TOLERANCE = 1e-4
WAVEFORM_BOUND = 1e-3
SR = 44100


@pytest.fixture(scope="module")
def clips44(clips_at):
    return clips_at(SR)


@pytest.fixture(scope="module")
def checkpoint(clips44, tmp_path_factory):
    """(file, the reference AudioEncoder, the converted directory)."""
    reference = make_audio_encoder(msclap_modules(), list(clips44.values()))
    file = tmp_path_factory.mktemp("msclap") / "CLAP_weights_2022.pth"
    torch.save(clap_checkpoint(reference), file)
    return file, reference, convert(file, tmp_path_factory.mktemp("echoic-msclap"))


def grids(maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """``(B, C, T, F)`` maps as ``(B, T · F, C)`` tokens (time-major), echoic's layout."""
    return [m.permute(0, 2, 3, 1).flatten(1, 2) for m in maps]


def ours_trace(model, features: Features) -> list[torch.Tensor]:
    """echoic's block 1 … 6 outputs and block 6's first convolution, as tokens."""
    with torch.no_grad():
        inner = model.encoder.block_outputs(features)
        out = model.encoder(features)
    return [*grids(inner), out.layers[1], out.layers[0]]


def test_every_block_matches_msclap_on_real_clips(checkpoint, clips44, record_parity):
    _, reference, out = checkpoint
    model = load_dir(out)
    for name, wave in clips44.items():
        mel, theirs = cnn14_trace(reference.base, torch.from_numpy(wave)[None])
        lengths = torch.tensor([mel.shape[-1]])
        features = Features(mel, lengths, model.frontend.hop_s, model.frontend.first_centre_s)
        diffs = layer_diffs(ours_trace(model, features), grids(theirs))
        record_parity("cnn14 (same mel)", "msclap 1.3.4", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: per-block max |diff| {diffs}"


def test_from_the_waveform_within_the_stft_noise(checkpoint, clips44, record_parity):
    """End to end: echoic's FFT log-mel against torchlibrosa's STFT-as-convolution (float32 DFT
    kernels): bins near the 1e-10 floor differ, the loud ones agree."""
    _, reference, out = checkpoint
    model = load_dir(out)
    for name, wave in clips44.items():
        samples = torch.from_numpy(wave)
        mel, theirs = cnn14_trace(reference.base, samples[None])
        features = model.frontend(AudioBatch(samples[None], torch.tensor([len(wave)]), SR))
        assert features.values.shape == mel.shape
        loud = mel > mel.amax(dim=1, keepdim=True) - 60.0  # within 60 dB of the frame's peak
        assert float((features.values - mel).abs()[loud].max()) <= 1e-3
        with torch.no_grad():
            layers = model.encoder(features).layers
        diffs = layer_diffs(layers, grids([theirs[6], theirs[5]]))
        record_parity("cnn14 (waveform)", "msclap + torchlibrosa", name, diffs)
        assert max(diffs) <= WAVEFORM_BOUND, f"{name}: {diffs}"


def test_the_converted_config(checkpoint):
    file, _, out = checkpoint
    config = read_config(out)
    assert config.encoder == "cnn14" and config.frontend == "centred_mel"
    assert config.encoder_config["channels"] == [64, 128, 256, 512, 1024, 2048]
    front = config.frontend_config
    assert (front["sample_rate"], front["n_fft"], front["hop_length"]) == (44100, 1024, 320)
    assert (front["mel_scale"], front["mel_norm"], front["top_db"]) == ("slaney", "slaney", None)
    assert set(config.provenance["dropped"]) == {
        "audio_encoder.base.bn0",
        "audio_encoder.base.fc1",
        "audio_encoder.base.fc_audioset",
        "audio_encoder.base.logmel_extractor",
        "audio_encoder.base.spectrogram_extractor",
        "audio_encoder.projection",
        "caption_encoder.projection",
        "logit_scale",
    }
    assert detect(file).name == "msclap" and detect(file.parent).name == "msclap"


def test_an_item_in_a_padded_batch_gives_what_it_gives_alone(checkpoint, clips44):
    _, _, out = checkpoint
    model = load_dir(out)
    long, short = clips44["librispeech"], clips44["body_percussion"]
    wave = torch.zeros(2, len(long))
    wave[0], wave[1, : len(short)] = torch.from_numpy(long), torch.from_numpy(short)
    with torch.no_grad():
        both = model(AudioBatch(wave, torch.tensor([len(long), len(short)]), SR))
        alone = model(AudioBatch(wave[1:, : len(short)], torch.tensor([len(short)]), SR))
    n = alone.layers[-1].shape[1]
    assert int((~both.padding_mask[1]).sum()) == n
    for a, b in zip(both.layers, alone.layers, strict=True):  # other lengths: other kernels
        torch.testing.assert_close(a[1, :n], b[0], atol=1e-4, rtol=1e-5)


def test_other_clap_towers_and_filters_are_refused(checkpoint, tmp_path):
    file, _, _ = checkpoint
    htsat = {
        "model": {
            "audio_encoder.base.htsat.patch_embed.proj.weight": torch.zeros(2),
            "caption_encoder.base.x": torch.zeros(1),
        }
    }
    torch.save(htsat, tmp_path / "CLAP_weights_2023.pth")
    assert detect(tmp_path / "CLAP_weights_2023.pth").name == "msclap"
    with pytest.raises(ConversionError, match="HTSAT"):
        convert(tmp_path / "CLAP_weights_2023.pth", tmp_path / "out")
    dump = torch.load(file)
    dump["model"]["audio_encoder.base.logmel_extractor.melW"] *= 1.01
    torch.save(dump, tmp_path / "odd.pth")
    with pytest.raises(ConversionError, match="mel filters"):
        convert(tmp_path / "odd.pth", tmp_path / "out2")


def test_the_registered_size_has_cnn14s_parameter_count(checkpoint):
    _, reference, _ = checkpoint
    with torch.device("meta"):
        ours = build_encoder("cnn14")
    heads = ("fc1.", "fc_audioset.", "spectrogram_extractor.", "logmel_extractor.")
    count = sum(p.numel() for n, p in reference.base.named_parameters() if not n.startswith(heads))
    assert sum(p.numel() for p in ours.parameters()) == count


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny Cnn14 in msclap's layout (the HEAR and eval checks need no reference)."""
    torch.manual_seed(0)
    encoder = build_encoder("cnn14_test")
    state = {}
    for key, value in encoder.state_dict().items():
        key = key.replace("input_norm.", "bn0.")
        if key.startswith("blocks."):
            _, k, rest = key.split(".", 2)
            key = f"conv_block{int(k) + 1}.{rest}"
        state[f"audio_encoder.base.{key}"] = value
    state["audio_encoder.base.bn0.running_mean"] = torch.full((64,), -40.0)
    state["audio_encoder.base.bn0.running_var"] = torch.full((64,), 400.0)
    state["caption_encoder.projection.linear1.weight"] = torch.zeros(2, 2)
    file = tmp_path_factory.mktemp("tiny-msclap") / "tiny.pth"
    torch.save({"model": state}, file)
    return convert(file, tmp_path_factory.mktemp("echoic-tiny-msclap"))


def test_hear_api(tiny_checkpoint):
    check_hear(tiny_checkpoint, width=32, sample_rate=SR)


def test_echoic_eval_linear(tiny_checkpoint, shared_data, tmp_path):
    linear_smoke(tiny_checkpoint, task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")
