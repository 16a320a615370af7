"""``hf-ast``: transformers' Audio Spectrogram Transformer folders, converted, give every layer of
the reference on real clips (max |diff| <= 1e-4; ``-s`` prints the measured maxima).

transformers' ``ASTModel`` only takes inputs of its ``max_length`` frames (its position table is
added as is), so the reference is built for the 3-s clips' 298 frames. The 1.2-s body-percussion
clip (115 frames) is compared with the same reference cut to 115 frames — its table's first 10
time columns, which is what echoic's ``position_fit="start"`` takes for a shorter input.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from convert_helpers import layer_diffs
from safetensors.torch import load_file, save_file
from spectrogram_reference import AST_TINY, ast_feature_extractor, hf_ast_layers, make_hf_ast

from echoic.checkpoint import load_dir, read_config
from echoic.convert import convert, detect
from echoic.encoders import build_encoder
from echoic.types import AudioBatch, Features

TOLERANCE = 1e-4
END_TO_END = 5e-4
"""Bound on the waveform → layers difference, which adds the two Kaldi fbanks' differences: in
near-empty mel bins (128 bins of a 512-point FFT; energies near float32 eps) float32 rounding of
the spectrum moves the log by up to ~2.5e-4 after normalisation (measured 7.4e-5 on the layers)."""
FRAMES = 298  # 3 s at 16 kHz: 1 + (48000 - 400) // 160


@pytest.fixture(scope="module")
def hf_ast(transformers_module, tmp_path_factory):
    """(folder written by save_pretrained with its feature extractor, reference, extractor,
    converted echoic directory)."""
    model = make_hf_ast(transformers_module, FRAMES)
    extractor = ast_feature_extractor()[0](max_length=FRAMES)
    folder = tmp_path_factory.mktemp("hf-ast")
    model.save_pretrained(folder)
    extractor.save_pretrained(folder)
    return folder, model, extractor, convert(folder, tmp_path_factory.mktemp("echoic-ast"))


def reference_for(transformers_module, model, frames: int):
    """The reference with its table cut to the first time columns of a ``frames`` input."""
    if frames == FRAMES:
        return model
    short = make_hf_ast(transformers_module, frames)
    state = model.state_dict()
    table = state["embeddings.position_embeddings"][0]
    n_time = (frames - 16) // 10 + 1
    grid = table[2:].reshape(12, -1, table.shape[-1])[:, :n_time].reshape(-1, table.shape[-1])
    state["embeddings.position_embeddings"] = torch.cat([table[:2], grid])[None]
    short.load_state_dict(state)
    return short.eval()


def features_of(input_values: torch.Tensor) -> Features:
    """The extractor's ``(1, T, F)`` values as echoic Features ``(1, F, T)``."""
    values = input_values.transpose(1, 2).contiguous()
    n = values.shape[-1]
    return Features(values, torch.tensor([n]), hop_s=0.01, first_centre_s=0.0125)


def test_every_layer_matches_transformers_on_real_clips(
    hf_ast, clips, record_parity, transformers_module
):
    _, model, extractor, out = hf_ast
    echoic_model = load_dir(out)
    version = f"transformers {transformers_module.__version__}"
    for name, wave in clips.items():
        frames = 1 + (len(wave) - 400) // 160
        reference = reference_for(transformers_module, model, frames)
        inputs = extractor(wave, sampling_rate=16000, return_tensors="pt").input_values
        inputs = inputs[:, :frames]
        theirs = hf_ast_layers(reference, inputs)
        with torch.no_grad():  # the encoder on the reference's own features: the conversion
            same = echoic_model.encoder(features_of(inputs))
            batch = AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), 16000)
            ours = echoic_model(batch)  # end to end: echoic's Kaldi fbank too
        patches = [h[:, 2:] for h in theirs]
        diffs = layer_diffs(same.layers, patches)
        record_parity("ast (hf)", version, name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: per-layer max |diff| {diffs}"
        assert same.cls_layers is not None and same.dist_layers is not None
        cls = layer_diffs(same.cls_layers, [h[:, 0] for h in theirs])
        dist = layer_diffs(same.dist_layers, [h[:, 1] for h in theirs])
        assert max(cls + dist) <= TOLERANCE, (cls, dist)
        end_to_end = layer_diffs(ours.layers, patches)
        record_parity("ast (hf) e2e", ast_feature_extractor()[1], name, end_to_end)
        assert max(end_to_end) <= END_TO_END, f"{name} from the waveform: {end_to_end}"


def test_pooled_output_is_the_mean_of_cls_and_distillation_tokens(hf_ast, clips):
    _, model, extractor, out = hf_ast
    wave = clips["librispeech"]
    inputs = extractor(wave, sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        pooled = model(inputs).pooler_output
        ours = load_dir(out).encoder(features_of(inputs))
    assert ours.cls_layers is not None and ours.dist_layers is not None
    mean = (ours.cls_layers[-1] + ours.dist_layers[-1]) / 2
    assert float((mean - pooled).abs().max()) <= TOLERANCE


def test_the_converted_config_is_the_ast_layout(hf_ast):
    folder, _, _, out = hf_ast
    config = read_config(out)
    assert config.encoder == "ast" and config.frontend == "kaldi_fbank"
    enc = config.encoder_config
    assert enc["patch_stride"] == [10, 10] and enc["flatten"] == "freq_major"
    assert enc["position_grid"] == [12, 29] and enc["position_fit"] == "start"
    assert enc["dist_token"] is True and enc["norm_eps"] == 1e-12
    front = config.frontend_config
    assert front["window"] == "hanning" and front["n_mels"] == 128
    assert front["mean"] == pytest.approx(-4.2677393) and front["std"] == pytest.approx(9.1379948)
    assert config.embed == {"chunk_s": 2.9, "overlap_s": 0.725}  # the table: 29 steps of 100 ms
    prov = config.provenance
    assert prov["format"] == "hf-ast" and prov["normalisation"] == "preprocessor_config.json"
    assert detect(folder).name == "hf-ast" and detect(folder / "config.json").name == "hf-ast"


def test_transformers_4_names_and_a_classification_head(hf_ast, transformers_module, tmp_path):
    """Hub checkpoints (written by transformers 4) name the weights ``encoder.layer.{i}.attention
    .attention.query`` …; an ``ASTForAudioClassification`` keeps them under
    ``audio_spectrogram_transformer.`` next to its ``classifier``, which is dropped."""
    folder, _, _, out = hf_ast
    state = load_file(str(folder / "model.safetensors"))
    old: dict[str, torch.Tensor] = {}
    renames = {
        "attention.q_proj": "attention.attention.query",
        "attention.k_proj": "attention.attention.key",
        "attention.v_proj": "attention.attention.value",
        "attention.o_proj": "attention.output.dense",
        "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    }
    for key, value in state.items():
        new = key.replace("layers.", "encoder.layer.", 1)
        for v5, v4 in renames.items():
            new = new.replace(v5, v4)
        old[f"audio_spectrogram_transformer.{new}"] = value
    old["classifier.layernorm.weight"] = torch.ones(64)
    old["classifier.dense.weight"] = torch.zeros(527, 64)
    (tmp_path / "hf").mkdir()
    save_file(old, str(tmp_path / "hf" / "model.safetensors"))
    hf = json.loads((folder / "config.json").read_text())
    hf["architectures"] = ["ASTForAudioClassification"]
    (tmp_path / "hf" / "config.json").write_text(json.dumps(hf))
    converted = convert(tmp_path / "hf", tmp_path / "echoic")
    assert "classifier" in read_config(converted).provenance["dropped"]
    for a, b in zip(
        load_dir(out).state_dict().values(), load_dir(converted).state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_a_short_clip_in_a_padded_batch_gives_what_it_gives_alone(hf_ast, clips):
    _, _, _, out = hf_ast
    model = load_dir(out)
    waves = [clips["esc50"], clips["body_percussion"]]
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(2, int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        both = model(AudioBatch(batch, lengths, 16000))
        alone = model(AudioBatch(batch[1:, : len(waves[1])], lengths[1:], 16000))
    valid = ~both.padding_mask[1]
    assert int(valid.sum()) == alone.last.shape[1] == 12 * 10
    np.testing.assert_allclose(both.last[1][valid].numpy(), alone.last[0].numpy(), atol=1e-5)


def test_the_registered_base_size_has_the_published_parameter_count(transformers_module):
    config = transformers_module.ASTConfig()
    with torch.device("meta"):
        reference = transformers_module.ASTModel(config)
        ours = build_encoder("ast")
    count = sum(p.numel() for p in reference.parameters())
    # the summary tokens' two position rows are folded into the tokens themselves
    assert sum(p.numel() for p in ours.parameters()) == count - 2 * config.hidden_size
    assert AST_TINY["hidden_size"] < config.hidden_size


def test_without_qkv_biases(transformers_module, clips, tmp_path):
    model = make_hf_ast(transformers_module, FRAMES, qkv_bias=False)
    model.save_pretrained(tmp_path / "hf")
    ours = load_dir(convert(tmp_path / "hf", tmp_path / "echoic"))
    assert "blocks.0.attn.qkv.bias" not in ours.encoder.state_dict()
    extractor = ast_feature_extractor()[0](max_length=FRAMES)
    inputs = extractor(clips["esc50"], sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        same = ours.encoder(features_of(inputs))
    diffs = layer_diffs(same.layers, [h[:, 2:] for h in hf_ast_layers(model, inputs)])
    assert max(diffs) <= TOLERANCE, diffs
