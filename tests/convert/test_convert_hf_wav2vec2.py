"""``hf-wav2vec2``: transformers' wav2vec 2.0 / HuBERT / WavLM / data2vec-audio folders, converted,
give every layer of the reference on real clips (max |diff| <= 1e-4; run with ``-s`` to see the
measured maxima)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from convert_helpers import HF_CASES, layer_diffs, make_hf_model, reference_layers
from safetensors.torch import load_file, save_file

from echoic.checkpoint import load_dir, read_config
from echoic.convert import convert
from echoic.types import AudioBatch

TOLERANCE = 1e-4
CASES = sorted(HF_CASES)


def echoic_layers(model, waves: list[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """echoic's layers for a (padded) batch of clips, and the padding mask."""
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        out = model(AudioBatch(batch, lengths, 16000))
    return out.layers, out.padding_mask


@pytest.mark.parametrize("case", CASES)
def test_every_layer_matches_transformers_on_real_clips(
    case, hf_folder, converted, clips, record_parity, transformers_module
):
    _, reference = hf_folder(case)
    model = load_dir(converted(case))
    version = f"transformers {transformers_module.__version__}"
    for name, wave in clips.items():
        ours, _ = echoic_layers(model, [wave])
        theirs = reference_layers(reference, torch.from_numpy(wave)[None])
        diffs = layer_diffs(ours, theirs)
        record_parity(case, version, name, diffs)
        assert max(diffs) <= TOLERANCE, f"{case} on {name}: per-layer max |diff| {diffs}"


@pytest.mark.parametrize("case", CASES)
def test_a_padded_item_gives_the_reference_on_the_item_alone(case, hf_folder, converted, clips):
    """Batch invariance: echoic masks padding everywhere (also in wav2vec 2.0 base's GroupNorm and
    between data2vec's positional convolutions), so each item of a padded batch gives what the
    reference gives on that clip alone."""
    _, reference = hf_folder(case)
    model = load_dir(converted(case))
    waves = [clips["librispeech"], clips["body_percussion"][:12000]]
    ours, padding = echoic_layers(model, waves)
    for i, wave in enumerate(waves):
        theirs = reference_layers(reference, torch.from_numpy(wave)[None])
        valid = int((~padding[i]).sum())
        assert valid == theirs[0].shape[1]
        diffs = layer_diffs([layer[i : i + 1, :valid] for layer in ours], theirs)
        assert max(diffs) <= TOLERANCE, f"{case}, item {i}: {diffs}"


@pytest.mark.parametrize("case", ["wav2vec2-stable", "wavlm-stable"])
def test_padded_batches_match_the_reference_with_an_attention_mask(
    case, hf_folder, converted, clips
):
    """Layer-norm models take padded batches in transformers too (with attention_mask)."""
    _, reference = hf_folder(case)
    model = load_dir(converted(case))
    waves = [clips["librispeech"], clips["esc50"][:20000]]
    ours, padding = echoic_layers(model, waves)
    batch = torch.zeros(2, len(waves[0]))
    mask = torch.zeros(2, len(waves[0]), dtype=torch.long)
    for i, w in enumerate(waves):
        batch[i, : len(w)], mask[i, : len(w)] = torch.from_numpy(w), 1
    theirs = reference_layers(reference, batch, attention_mask=mask)
    valid = ~padding
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        diff = float((a[valid] - b[valid]).abs().max())
        assert diff <= TOLERANCE, f"{case}, layer {i}: {diff}"


def test_do_normalize_becomes_the_per_item_waveform_frontend(transformers_module, tmp_path, clips):
    """preprocessor_config.json's do_normalize: the frontend normalises each item, as
    Wav2Vec2FeatureExtractor does; the full echoic model equals extractor + reference."""
    reference = make_hf_model(transformers_module, "wav2vec2-stable")
    reference.save_pretrained(tmp_path / "hf")
    extractor = transformers_module.Wav2Vec2FeatureExtractor(do_normalize=True)
    extractor.save_pretrained(tmp_path / "hf")
    out = convert(tmp_path / "hf", tmp_path / "echoic")
    config = read_config(out)
    assert config.frontend == "waveform" and config.frontend_config["per_item"] is True
    wave = clips["esc50"] * 0.3 + 0.01
    inputs = extractor(wave, sampling_rate=16000, return_tensors="pt").input_values
    diffs = layer_diffs(
        echoic_layers(load_dir(out), [wave])[0], reference_layers(reference, inputs)
    )
    assert max(diffs) <= TOLERANCE, diffs


@pytest.mark.parametrize("style", ["weight_g_v", "folded"])
def test_positional_weight_norm_in_every_spelling(style, hf_folder, converted, tmp_path, clips):
    """Hub checkpoints store the positional convolution's weight norm as weight_g / weight_v
    (older transformers), parametrizations.weight.original0/1 (newer), or folded into weight."""
    folder, _ = hf_folder("wavlm")
    state = load_file(str(folder / "model.safetensors"))
    name = "encoder.pos_conv_embed.conv"
    g = state.pop(f"{name}.parametrizations.weight.original0")
    v = state.pop(f"{name}.parametrizations.weight.original1")
    if style == "weight_g_v":
        state[f"{name}.weight_g"], state[f"{name}.weight_v"] = g, v
    else:
        state[f"{name}.weight"] = g * v / torch.linalg.vector_norm(v, dim=(0, 1), keepdim=True)
    (tmp_path / "hf").mkdir()
    save_file(state, str(tmp_path / "hf" / "model.safetensors"))
    (tmp_path / "hf" / "config.json").write_text((folder / "config.json").read_text())
    ours = echoic_layers(load_dir(convert(tmp_path / "hf", tmp_path / "out")), [clips["esc50"]])
    base = echoic_layers(load_dir(converted("wavlm")), [clips["esc50"]])
    assert max(layer_diffs(ours[0], base[0])) <= 1e-5


def test_head_classes_keep_the_base_model_and_drop_the_heads(transformers_module, tmp_path, clips):
    reference = make_hf_model(transformers_module, "hubert")
    ctc = transformers_module.HubertForCTC(
        reference.config.__class__(**{**reference.config.to_dict(), "vocab_size": 12})
    )
    ctc.hubert.load_state_dict(reference.state_dict())
    ctc.eval().save_pretrained(tmp_path / "ctc")
    out = convert(tmp_path / "ctc", tmp_path / "echoic")
    assert "lm_head" in read_config(out).provenance["dropped"]
    wave = clips["librispeech"]
    diffs = layer_diffs(
        echoic_layers(load_dir(out), [wave])[0],
        reference_layers(reference, torch.from_numpy(wave)[None]),
    )
    assert max(diffs) <= TOLERANCE


def test_data_parallel_module_prefix_in_a_pickled_state_dict(hf_folder, converted, tmp_path, clips):
    """pytorch_model.bin saved from an nn.DataParallel wrapper: every key starts with 'module.'
    (read through the safe unpickler)."""
    folder, reference = hf_folder("data2vec-audio")
    (tmp_path / "hf").mkdir()
    state = {f"module.{k}": v.clone() for k, v in reference.state_dict().items()}
    torch.save(state, tmp_path / "hf" / "pytorch_model.bin")
    (tmp_path / "hf" / "config.json").write_text((folder / "config.json").read_text())
    out = convert(tmp_path / "hf", tmp_path / "echoic")
    ours = echoic_layers(load_dir(out), [clips["body_percussion"]])[0]
    base = echoic_layers(load_dir(converted("data2vec-audio")), [clips["body_percussion"]])[0]
    assert max(layer_diffs(ours, base)) == 0.0
    assert read_config(out).provenance["origin"] == "pytorch_model.bin"


def test_provenance_licence_and_card(hf_folder, tmp_path):
    from echoic.cards import find_card
    from echoic.convert.base import sha256_file

    folder, _ = hf_folder("wav2vec2")
    (tmp_path / "hf").mkdir()
    for name in ("config.json", "model.safetensors"):
        (tmp_path / "hf" / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "hf" / "README.md").write_text(
        "---\nlicense: apache-2.0\ntags: [audio]\n---\n# x\n"
    )
    out = convert(tmp_path / "hf", tmp_path / "echoic")
    config = read_config(out)
    prov = config.provenance
    assert prov["format"] == "hf-wav2vec2" and prov["converted_from"] == "hf"
    assert prov["origin"] == "model.safetensors"
    assert prov["sha256"] == sha256_file(tmp_path / "hf" / "model.safetensors")
    assert prov["licence"] == config.licence == "apache-2.0"
    assert config.encoder == "wav2vec2" and config.encoder_config["cls_token"] is False
    card = find_card(out)
    assert card.kind == "converted" and card.licence == "apache-2.0"
    assert card.describe()["origin"]["source"] == "converted from hf"
    raw = json.loads((out / "config.json").read_text())
    assert raw["model"]["provenance"]["converted_from"] == "hf"


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm", "data2vec_audio"])
def test_registered_base_sizes_have_the_published_parameter_counts(family, transformers_module):
    """The family names are the base models: as many parameters as transformers' defaults
    (less the pretraining mask vector, which echoic does not keep)."""
    from echoic.encoders import build_encoder

    names = {
        "wav2vec2": "Wav2Vec2",
        "hubert": "Hubert",
        "wavlm": "WavLM",
        "data2vec_audio": "Data2VecAudio",
    }
    prefix = names[family]
    config = getattr(transformers_module, f"{prefix}Config")()
    with torch.device("meta"):
        reference = getattr(transformers_module, f"{prefix}Model")(config)
        ours = build_encoder(family)
    count = sum(p.numel() for n, p in reference.named_parameters() if n != "masked_spec_embed")
    assert sum(p.numel() for p in ours.parameters()) == count
