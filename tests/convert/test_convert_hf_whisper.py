"""``hf-whisper``: transformers Whisper folders → the ``whisper_encoder`` on ``whisper_logmel``.

Against transformers (random tiny Whisper, real clips): the frontend equals
``WhisperFeatureExtractor`` frame for frame (80 and 128 mels, Whisper's 30-s window), every encoder
layer equals ``WhisperEncoder(output_hidden_states=True)`` on the extractor's features and, end
to end, on the waveform (echoic pads to Whisper's window as Whisper does), and the truncated mode
equals a Whisper whose table is cut to the clip (max |diff| <= 1e-4; ``-s`` prints the maxima).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from convert_helpers import layer_diffs
from converted_checks import check_hear, linear_smoke, task_dir
from whisper_reference import encoder_layers, extractor, make_whisper, whisper_features

from echoic.checkpoint import EchoicModel, load_dir, read_config
from echoic.convert import convert, detect
from echoic.encoders import build_encoder, encoder_config
from echoic.encoders.whisper import WHISPER_SIZES, whisper_sinusoids
from echoic.features.base import build_frontend
from echoic.types import AudioBatch, Features

TOLERANCE = 1e-4
HALF_WINDOW = 200
"""Samples of silence after a clip that make Whisper's frames past its end pure silence."""


@pytest.fixture(scope="module")
def whisper(transformers_module, tmp_path_factory):
    """(folder with model + preprocessor config, reference WhisperModel, feature extractor)."""
    model = make_whisper(transformers_module)
    folder = tmp_path_factory.mktemp("hf-whisper")
    model.save_pretrained(folder)
    features = extractor(transformers_module)
    features.save_pretrained(folder)
    return folder, model, features


@pytest.fixture(scope="module")
def converted_whisper(whisper, tmp_path_factory):
    return convert(whisper[0], tmp_path_factory.mktemp("echoic-whisper"))


def whisper_encoder_class() -> type:
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder


def run(model: EchoicModel, waves: list[np.ndarray]):
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    with torch.no_grad():
        return model(AudioBatch(batch, lengths, 16000))


@pytest.mark.parametrize("n_mels", [80, 128])
def test_frontend_equals_whisper_feature_extractor(
    n_mels, clips, transformers_module, record_parity
):
    """Every frame echoic returns (centre inside the clip) equals the extractor's, in Whisper's
    30-s window; a clip filling the window exactly (its end reflected) too, and a padded batch
    gives each item what it gives alone."""
    reference = extractor(transformers_module, n_mels, window_s=30)
    frontend = build_frontend("whisper_logmel", {"n_mels": n_mels})
    full = np.tile(clips["esc50"], 11)[: 30 * 16000]  # 30 s exactly
    cases = {**clips, "esc50x10 (30 s)": full, "librispeech[:12345]": clips["librispeech"][:12345]}
    for name, wave in cases.items():
        ours = frontend(AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), 16000))
        n = int(ours.lengths[0])
        assert n == -(-len(wave) // 160)
        theirs = whisper_features(reference, wave)[0]
        diff = float((ours.values[0] - theirs[:, :n]).abs().max())
        record_parity(f"whisper_logmel{n_mels}", "WhisperFeatureExtractor", name, [diff])
        assert diff <= TOLERANCE, f"{name}: {diff}"
    waves = [clips["librispeech"], clips["body_percussion"][:9001]]
    batch = run_frontend(frontend, waves)
    for i, wave in enumerate(waves):
        alone = run_frontend(frontend, [wave])
        n = int(alone.lengths[0])
        assert torch.equal(batch.values[i, :, :n], alone.values[0])
        assert torch.all(batch.values[i, :, n:] == 0)


def run_frontend(frontend, waves: list[np.ndarray]) -> Features:
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.full((len(waves), int(lengths.max())), 0.5)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    return frontend(AudioBatch(batch, lengths, 16000))


def test_every_layer_matches_whisper_encoder_on_the_extractors_features(
    whisper, converted_whisper, clips, record_parity, transformers_module
):
    """The encoder alone: the extractor's features (the clip padded to the 4-s window) through
    both encoders, every token of every layer."""
    _, reference, features_of = whisper
    model = load_dir(converted_whisper)
    version = f"transformers {transformers_module.__version__}"
    for name, wave in clips.items():
        features = whisper_features(features_of, wave)
        lengths = torch.tensor([features.shape[-1]])
        with torch.no_grad():
            ours = model.encoder(Features(features, lengths, 0.01, 0.0)).layers
        diffs = layer_diffs(ours, encoder_layers(reference.encoder, features))
        record_parity("whisper", version, name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: {diffs}"


def test_end_to_end_waveform_equals_extractor_plus_encoder(
    whisper, converted_whisper, clips, record_parity
):
    """echoic on the waveform (whisper_logmel + the encoder padding to Whisper's window with the
    item's silence frame) = WhisperFeatureExtractor + WhisperEncoder, on the clip's tokens. The
    clip ends in 12.5 ms of silence, so that Whisper's frames past its end are silence too."""
    _, reference, features_of = whisper
    model = load_dir(converted_whisper)
    for name, clip in clips.items():
        wave = np.concatenate([clip, np.zeros(HALF_WINDOW, np.float32)])
        ours = run(model, [wave]).layers
        n = ours[0].shape[1]
        theirs = encoder_layers(reference.encoder, whisper_features(features_of, wave))
        diffs = layer_diffs(ours, [layer[:, :n] for layer in theirs])
        record_parity("whisper (waveform)", "+ WhisperFeatureExtractor", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: {diffs}"


def test_a_clip_ending_in_sound_differs_only_through_the_frames_past_its_end(
    whisper, converted_whisper, clips, record_parity
):
    """Without the trailing silence, Whisper's one or two frames centred past the clip's end hold
    the clip's last samples where echoic has the silence frame: layer 0 (convolutions) still
    matches on every token whose convolutions do not reach them; later layers differ a little
    everywhere (attention). The measured difference is printed."""
    _, reference, features_of = whisper
    model = load_dir(converted_whisper)
    wave = clips["librispeech"]  # 3 s of speech, cut mid-word
    ours = run(model, [wave]).layers
    n = ours[0].shape[1]
    theirs = [
        layer[:, :n]
        for layer in encoder_layers(reference.encoder, whisper_features(features_of, wave))
    ]
    diffs = layer_diffs(ours, theirs)
    record_parity("whisper (end in sound)", "+ WhisperFeatureExtractor", "librispeech", diffs)
    frames = -(-len(wave) // 160)  # frames centred inside the clip
    reach = (frames - 1) // 2  # the first token whose convolutions read frame `frames`
    assert float((ours[0][:, :reach] - theirs[0][:, :reach]).abs().max()) <= TOLERANCE


def test_truncated_mode_equals_whisper_with_the_table_cut_to_the_clip(
    whisper, converted_whisper, clips, transformers_module, record_parity
):
    """``pad_to_max=False``: only the clip's tokens, the first rows of the table — what a
    WhisperEncoder with ``max_source_positions`` = the clip's token count computes on the clip's
    frames (clips cut to whole tokens: an odd last frame has no counterpart there)."""
    _, reference, features_of = whisper
    config = read_config(converted_whisper)
    config.encoder_config = {**config.encoder_config, "pad_to_max": False}
    model = EchoicModel(config).eval()
    model.load_state_dict(load_dir(converted_whisper).state_dict())
    for name, clip in clips.items():
        wave = clip[: len(clip) // 320 * 320]
        ours = run(model, [wave]).layers
        n = ours[0].shape[1]
        short = whisper_encoder_class()(
            transformers_module.WhisperConfig(
                **{**reference.config.to_dict(), "max_source_positions": n}
            )
        )
        state = reference.encoder.state_dict()
        state["embed_positions.weight"] = state["embed_positions.weight"][:n]
        short.load_state_dict(state)
        features = whisper_features(features_of, wave)[:, :, : 2 * n]
        diffs = layer_diffs(ours, encoder_layers(short.eval(), features))
        record_parity("whisper (truncated)", "WhisperEncoder, n rows", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: {diffs}"


@pytest.mark.parametrize("pad_to_max", [True, False])
def test_a_padded_item_gives_what_it_gives_alone(converted_whisper, clips, pad_to_max):
    config = read_config(converted_whisper)
    config.encoder_config = {**config.encoder_config, "pad_to_max": pad_to_max}
    model = EchoicModel(config).eval()
    model.load_state_dict(load_dir(converted_whisper).state_dict())
    waves = [clips["librispeech"], clips["body_percussion"][:9001]]
    both = run(model, waves)
    for i, wave in enumerate(waves):
        alone = run(model, [wave])
        n = alone.layers[0].shape[1]
        assert int((~both.padding_mask[i]).sum()) == n
        diffs = layer_diffs([layer[i : i + 1, :n] for layer in both.layers], alone.layers)
        assert max(diffs) <= TOLERANCE, diffs


def test_longer_than_the_window_is_refused_with_the_fix(converted_whisper):
    model = load_dir(converted_whisper)
    with pytest.raises(Exception, match=r"exceed .* positions .* chunks of at most 4 s"):
        run(model, [np.zeros(16000 * 5, np.float32)])


@pytest.mark.parametrize(
    "model_class", ["WhisperForConditionalGeneration", "WhisperForAudioClassification"]
)
def test_head_classes_keep_the_encoder_and_drop_the_rest(
    model_class, whisper, converted_whisper, transformers_module, tmp_path, clips
):
    _, reference, _ = whisper
    fields = {"use_weighted_layer_sum": True} if "Classification" in model_class else {}
    other = make_whisper(transformers_module, model_class, **fields)
    encoder = other.model.encoder if hasattr(other, "model") else other.encoder
    encoder.load_state_dict(reference.encoder.state_dict())
    other.save_pretrained(tmp_path / "hf")
    out = convert(tmp_path / "hf", tmp_path / "echoic")
    dropped = read_config(out).provenance["dropped"]
    expected = (
        {"decoder"} if "Generation" in model_class else {"classifier", "projector", "layer_weights"}
    )
    assert expected <= set(dropped), dropped
    wave = clips["esc50"]
    diffs = layer_diffs(
        run(load_dir(out), [wave]).layers, run(load_dir(converted_whisper), [wave]).layers
    )
    assert max(diffs) == 0.0


def test_converted_config_provenance_and_detection(whisper, converted_whisper):
    folder, reference, _ = whisper
    for path in (folder, folder / "config.json", folder / "model.safetensors"):
        found = detect(path)
        assert found is not None and found.name == "hf-whisper", path
    config = read_config(converted_whisper)
    assert config.encoder == "whisper_encoder" and config.frontend == "whisper_logmel"
    assert config.frontend_config["chunk_length_s"] == 4.0 and config.embed == {"chunk_s": 4.0}
    assert config.encoder_config["max_positions"] == 200 and config.encoder_config["pad_to_max"]
    prov = config.provenance
    assert prov["format"] == "hf-whisper" and prov["dropped"] == ["decoder"]
    assert prov["preprocessor"] == "preprocessor_config.json"
    table = reference.encoder.embed_positions.weight
    torch.testing.assert_close(table, whisper_sinusoids(*table.shape), atol=1e-6, rtol=0)
    assert json.loads((converted_whisper / "config.json").read_text())["model"]["encoder"] == (
        "whisper_encoder"
    )


@pytest.mark.parametrize("size", sorted(WHISPER_SIZES))
def test_published_sizes_have_whispers_parameter_counts(size, transformers_module):
    """Each public encoder size, built on the meta device: transformers' parameters less the
    position table (a buffer here), plus the key biases echoic's fused projection carries
    (Whisper's key has none; a key bias changes no attention weight)."""
    dim, depth, heads, n_bins = WHISPER_SIZES[size]
    hf = transformers_module.WhisperConfig(
        d_model=dim,
        encoder_layers=depth,
        encoder_attention_heads=heads,
        encoder_ffn_dim=4 * dim,
        num_mel_bins=n_bins,
    )
    with torch.device("meta"):
        reference = whisper_encoder_class()(hf)
        ours = build_encoder("whisper_encoder", dim=dim, depth=depth, heads=heads, n_bins=n_bins)
    count = sum(p.numel() for n, p in reference.named_parameters() if "embed_positions" not in n)
    assert sum(p.numel() for p in ours.parameters()) == count + depth * dim
    assert ours.positions.shape == reference.embed_positions.weight.shape


def test_registered_sizes():
    tiny = encoder_config("whisper_encoder")
    assert (tiny.dim, tiny.depth, tiny.heads, tiny.n_bins) == WHISPER_SIZES["tiny"]
    assert tiny.max_positions == 1500 and tiny.pad_to_max
    assert encoder_config("whisper_test").max_positions * 2 * 160 >= 16000 * 1.3


def test_hear_api(converted_whisper):
    check_hear(converted_whisper, width=64)


def test_echoic_eval_linear_on_a_real_task(converted_whisper, shared_data, tmp_path):
    linear_smoke(converted_whisper, task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")
