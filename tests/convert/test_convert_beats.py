"""``beats``: BEATs checkpoints (``{"cfg", "model"}`` as unilm's BEATs_iter*.pt) → ``BeatsEncoder``.

The reference is ESPnet's ``BeatsEncoder`` (unilm's BEATs code) with random weights, saved in
BEATs' public layout. Every layer matches on real clips given the same fbank (max |diff| <= 1e-4;
``-s`` prints the maxima); end to end from the waveform the two Kaldi fbanks differ in near-silent
mel bins by float32 rounding (as torchaudio's float32 and float64 fbanks do), which the test
bounds separately.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from beats_reference import CASES, beats_layers, beats_module, make_beats, save_beats
from convert_helpers import layer_diffs
from converted_checks import check_hear, linear_smoke, task_dir

from echoic.checkpoint import load_dir, read_config
from echoic.convert import UnsafePickleError, convert, detect
from echoic.encoders import build_encoder, encoder_config
from echoic.types import AudioBatch, Features

TOLERANCE = 1e-4
END_TO_END = 2e-3
"""Bound on the waveform → layers difference: the fbank's near-silent bins (≥ 20 nats below the
frame's peak) carry float32 FFT noise, different in any two implementations."""


@pytest.fixture(scope="module")
def reference():
    return beats_module()


@pytest.fixture(scope="module")
def beats(reference, tmp_path_factory):
    """``beats(case)`` → (checkpoint file, reference model, converted echoic directory)."""
    built: dict[str, tuple] = {}

    def get(case: str):
        if case not in built:
            model = make_beats(reference, case)
            folder = tmp_path_factory.mktemp(f"beats-{case}")
            file = save_beats(model, case, folder / "BEATs_tiny.pt")
            built[case] = (file, model, convert(file, tmp_path_factory.mktemp(f"echoic-{case}")))
        return built[case]

    return get


def run(model, waves: list[np.ndarray]):
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        return model(AudioBatch(batch, lengths, 16000))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_layer_matches_espnet_beats_on_real_clips(case, beats, clips, record_parity):
    """The reference's own fbank (torchaudio's Kaldi fbank, BEATs' normalisation) through both."""
    _, model, out = beats(case)
    ours_model = load_dir(out)
    for name, wave in clips.items():
        samples = torch.from_numpy(wave)
        fbank = model.preprocess(samples[None]).transpose(1, 2).contiguous()  # (1, 128, T)
        features = Features(fbank, torch.tensor([fbank.shape[-1]]), 0.01, 399 / 32000)
        with torch.no_grad():
            ours = ours_model.encoder(features).layers
        diffs = layer_diffs(ours, beats_layers(model, samples))
        record_parity(case, "espnet 202511", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{case} on {name}: {diffs}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_end_to_end_from_the_waveform(case, beats, clips, record_parity):
    _, model, out = beats(case)
    ours_model = load_dir(out)
    for name, wave in clips.items():
        diffs = layer_diffs(
            run(ours_model, [wave]).layers, beats_layers(model, torch.from_numpy(wave))
        )
        record_parity(f"{case} (waveform)", "espnet + torchaudio", name, diffs)
        assert max(diffs) <= END_TO_END, f"{case} on {name}: {diffs}"


def test_frontend_matches_torchaudio_kaldi_above_the_float32_noise(beats, clips, record_parity):
    """echoic's kaldi_fbank with the "beats" preset = BEATs' preprocess (torchaudio.compliance.
    kaldi.fbank of waveform × 32768, (x - 15.41663) / (2 × 6.55582)) on every bin within 15 nats
    of its frame's peak; below that both are float32 noise."""
    _, model, out = beats("beats")
    frontend = load_dir(out).frontend
    for name, wave in clips.items():
        samples = torch.from_numpy(wave)
        theirs = model.preprocess(samples[None])[0].T
        ours = frontend(AudioBatch(samples[None], torch.tensor([len(wave)]), 16000)).values[0]
        assert ours.shape == theirs.shape
        raw = theirs * 2 * 6.55582 + 15.41663
        audible = raw > raw.amax(dim=0, keepdim=True) - 15.0
        diff = float((ours - theirs).abs()[audible].max())
        record_parity("kaldi_fbank beats", "torchaudio 2.11 kaldi", name, [diff])
        assert diff <= TOLERANCE, f"{name}: {diff}"


def test_a_padded_item_gives_what_it_gives_alone(beats, clips):
    _, _, out = beats("beats")
    model = load_dir(out)
    waves = [clips["librispeech"], clips["body_percussion"][:9001]]
    both = run(model, waves)
    for i, wave in enumerate(waves):
        alone = run(model, [wave])
        n = alone.layers[0].shape[1]
        assert int((~both.padding_mask[i]).sum()) == n
        diffs = layer_diffs([layer[i : i + 1, :n] for layer in both.layers], alone.layers)
        assert max(diffs) <= TOLERANCE, diffs


def test_token_order_and_times(beats, clips):
    """Time-major tokens (BEATs flattens its (time, freq) patch grid): 8 per 16-frame step."""
    _, _, out = beats("beats")
    output = run(load_dir(out), [clips["esc50"]])
    n_freq, n_time = output.grid
    frames = 1 + (len(clips["esc50"]) - 400) // 160  # Kaldi frames; partial last patch dropped
    assert n_freq == 8 and n_time == frames // 16
    assert torch.equal(output.time_index[0, :16], torch.arange(16) // 8)
    assert torch.equal(output.freq_index[0, :16], torch.arange(16) % 8)
    torch.testing.assert_close(
        output.token_times_s[0, ::8],
        399 / 32000 + 0.01 * (16 * torch.arange(n_time) + 7.5),
        rtol=0,
        atol=1e-6,
    )


@pytest.mark.parametrize("spelling", ["parametrizations", "folded"])
def test_positional_weight_norm_spellings(spelling, beats, tmp_path, clips):
    file, _, out = beats("beats")
    checkpoint = torch.load(file, weights_only=True)
    state = checkpoint["model"]
    name = "encoder.pos_conv.0"
    g, v = state.pop(f"{name}.weight_g"), state.pop(f"{name}.weight_v")
    if spelling == "folded":
        state[f"{name}.weight"] = g * v / torch.linalg.vector_norm(v, dim=(0, 1), keepdim=True)
    else:
        state[f"{name}.parametrizations.weight.original0"] = g
        state[f"{name}.parametrizations.weight.original1"] = v
    torch.save(checkpoint, tmp_path / "BEATs.pt")
    wave = clips["esc50"]
    ours = run(load_dir(convert(tmp_path / "BEATs.pt", tmp_path / "out")), [wave]).layers
    assert max(layer_diffs(ours, run(load_dir(out), [wave]).layers)) <= 1e-5


def test_a_finetuned_checkpoint_drops_the_predictor(beats, tmp_path, clips):
    file, _, out = beats("beats")
    checkpoint = torch.load(file, weights_only=True)
    checkpoint["cfg"] = {**checkpoint["cfg"], "finetuned_model": True, "predictor_class": 5}
    checkpoint["model"]["predictor.weight"] = torch.randn(5, 64)
    checkpoint["model"]["predictor.bias"] = torch.randn(5)
    torch.save(checkpoint, tmp_path / "BEATs_ft.pt")
    converted = convert(tmp_path / "BEATs_ft.pt", tmp_path / "out")
    prov = read_config(converted).provenance
    assert prov["finetuned"] is True and "predictor" in prov["dropped"]
    wave = clips["body_percussion"]
    diffs = layer_diffs(run(load_dir(converted), [wave]).layers, run(load_dir(out), [wave]).layers)
    assert max(diffs) == 0.0


def test_unknown_weights_fail_and_shared_tables_must_agree(beats, tmp_path):
    file, _, _ = beats("beats")
    checkpoint = torch.load(file, weights_only=True)
    checkpoint["model"]["encoder.extra.weight"] = torch.zeros(3)
    torch.save(checkpoint, tmp_path / "extra.pt")
    with pytest.raises(Exception, match=r"not mapped .*encoder\.extra\.weight"):
        convert(tmp_path / "extra.pt", tmp_path / "a")
    checkpoint = torch.load(file, weights_only=True)
    key = "encoder.layers.2.self_attn.relative_attention_bias.weight"
    checkpoint["model"][key] = checkpoint["model"][key] + 1.0
    torch.save(checkpoint, tmp_path / "unshared.pt")
    with pytest.raises(Exception, match="shares one table"):
        convert(tmp_path / "unshared.pt", tmp_path / "b")


class _Planted:
    def __reduce__(self):  # would write a file if ever unpickled
        return (open, ("/tmp/echoic-beats-planted", "w"))


def test_detection_reads_names_only_and_loading_is_safe(beats, tmp_path):
    file, _, _ = beats("beats")
    assert detect(file) is not None and detect(file).name == "beats"
    assert detect(file.parent).name == "beats"  # a folder holding one checkpoint
    (tmp_path / "other.pt").write_bytes(b"not a zip")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    assert detect(tmp_path / "other.pt") is None and detect(tmp_path / "plain.pt") is None
    checkpoint = torch.load(file, weights_only=True)
    checkpoint["extra"] = _Planted()
    torch.save(checkpoint, tmp_path / "planted.pt", pickle_module=pickle)
    assert detect(tmp_path / "planted.pt").name == "beats"
    with pytest.raises(UnsafePickleError, match=r"refused to unpickle the global .*open"):
        convert(tmp_path / "planted.pt", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not Path("/tmp/echoic-beats-planted").exists()


def test_converted_config(beats):
    from echoic.features.kaldi import KALDI_FBANK_PRESETS

    file, _, out = beats("beats")
    config = read_config(out)
    assert config.encoder == "beats" and config.frontend == "kaldi_fbank"
    for key, value in KALDI_FBANK_PRESETS["beats"].items():
        assert config.frontend_config[key] == value
    encoder = config.encoder_config
    assert encoder["deep_norm"] and encoder["gated_rel_pos"] and not encoder["patch_bias"]
    assert (encoder["dim"], encoder["embed_dim"], encoder["pos_conv_kernel"]) == (64, 48, 128)
    prov = config.provenance
    assert prov["format"] == "beats" and prov["origin"] == file.name
    assert prov["dropped"] == ["shared relative_attention_bias copies (2)"]


def test_the_registered_size_has_beats_parameter_count(reference):
    """``beats`` = BEATs iter3 (768 wide, 12 blocks, 512-wide patches, DeepNorm, gated bias)."""
    cfg = {
        **CASES["beats"],
        "encoder_layers": 12,
        "encoder_embed_dim": 768,
        "encoder_ffn_embed_dim": 3072,
        "encoder_attention_heads": 12,
        "embed_dim": 512,
    }
    theirs = reference.BeatsEncoder(input_size=1, beats_config=cfg)  # its init cannot run on meta
    with torch.device("meta"):
        ours = build_encoder("beats")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    config = encoder_config("beats")
    assert (config.rel_pos_buckets, config.rel_pos_max_distance, config.deep_norm) == (
        320,
        800,
        True,
    )


def test_hear_api(beats):
    check_hear(beats("beats")[2], width=64)


def test_echoic_eval_linear_on_a_real_task(beats, shared_data, tmp_path):
    linear_smoke(beats("beats")[2], task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")
