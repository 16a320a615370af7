"""``tera``: s3prl TERA / Mockingjay checkpoints, converted, give every hidden state of s3prl
0.4.18's own upstream expert on real clips (max |diff| <= 1e-4; ``-s`` prints the maxima), and the
``centred_mel`` frontend with CMVN gives the expert's features.

Two layouts: TERA as s3prl's runner saves it now (``Upstream_Config``, the optimiser's schedule
pickled as ``s3prl.optimizers.*``), and a legacy Mockingjay (the upstream config under ``Config``,
LayerNorm ``gamma`` / ``beta``, the schedule as ``optimizers.*``) with pre-LN blocks, per-layer
output norms and ReLU. Both are read without ``--trust-pickle``.
"""

from __future__ import annotations

import argparse
import os

import pytest
import torch
from convert_helpers import assert_batch_invariant, layer_diffs, run_on_features
from converted_checks import check_hear, linear_smoke, task_dir
from s3prl_reference import (
    TERA_CASES,
    hidden_states,
    s3prl_upstreams,
    save_tera,
    tera_expert,
    tera_features,
)

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, UnsafePickleError, convert, detect

TOLERANCE = 1e-4
FEATURES = 1e-5
"""The frontend against s3prl's preprocessor (measured 9.5e-7: the same float32 operations)."""


@pytest.fixture(scope="module")
def s3prl():
    return s3prl_upstreams()


@pytest.fixture(scope="module")
def tera(s3prl, tmp_path_factory):
    """``tera(case)`` → (checkpoint, converted directory, s3prl's expert on the checkpoint)."""
    built = {}

    def get(case):
        if case not in built:
            folder = tmp_path_factory.mktemp(case)
            path = save_tera(s3prl, case, folder / "states-1000.ckpt")
            built[case] = (path, convert(path, folder / "echoic"), tera_expert(s3prl, path))
        return built[case]

    return get


@pytest.mark.parametrize("case", sorted(TERA_CASES))
def test_every_layer_matches_s3prl_on_real_clips(case, tera, clips, record_parity):
    _, out, expert = tera(case)
    model = load_dir(out)
    for name, clip in clips.items():
        wave = torch.from_numpy(clip)
        theirs = hidden_states(expert, wave)
        features = tera_features(expert, wave)
        same, ours, mine = run_on_features(model, wave, features)
        assert len(theirs) == 4 and theirs[0].shape == (1, 1 + len(wave) // 160, 32)
        diffs, end_to_end = layer_diffs(same.layers, theirs), layer_diffs(ours.layers, theirs)
        record_parity(case, "s3prl 0.4.18", name, diffs)
        record_parity(f"{case} e2e", "s3prl 0.4.18", name, end_to_end)
        feature_diff = float((mine - features.T).abs().max())
        record_parity(f"{case} features", "s3prl 0.4.18", name, [feature_diff])
        assert feature_diff <= FEATURES, f"{case} features on {name}: {feature_diff}"
        assert max(diffs + end_to_end) <= TOLERANCE, f"{case} on {name}: {diffs}, {end_to_end}"


def test_the_family_layout_and_provenance_come_from_the_checkpoint(tera):
    path, out, _ = tera("tera")
    assert detect(path).name == "tera"
    config = read_config(out)
    assert config.encoder == "tera" and config.frontend == "centred_mel"
    front = config.frontend_config
    assert front["cmvn"] and front["target_level_db"] == -25 and front["log_offset"] == 1e-10
    assert (front["n_fft"], front["hop_length"], front["n_mels"]) == (400, 160, 80)
    assert config.embed == {"chunk_s": 15.0}  # the pretraining sequence_length (1500 frames)
    assert {"SpecHead", "Optimizer", "Args"} <= set(config.provenance["ignored"])
    legacy = read_config(tera("mockingjay-preln")[1])
    assert legacy.encoder == "mockingjay" and legacy.encoder_config["pre_norm"]
    assert legacy.encoder_config["activation"] == "relu"
    assert "encoder.layer.0.attention.LayerNorm.weight" in legacy.provenance["dropped"]


def test_an_item_in_a_padded_batch_gives_what_it_gives_alone(tera, clips):
    assert_batch_invariant(load_dir(tera("tera")[1]), clips)


def test_other_globals_are_refused_and_other_features_named(s3prl, tmp_path):
    path = save_tera(s3prl, "tera", tmp_path / "states.ckpt")
    states = torch.load(path, weights_only=False)
    states["Args"] = argparse.Namespace(hook=os.getcwd)  # a function: never on the allowlist
    torch.save(states, tmp_path / "planted.ckpt")
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.getcwd"):
        convert(tmp_path / "planted.ckpt", tmp_path / "out")
    states = torch.load(path, weights_only=False)
    states["Upstream_Config"]["audio"]["input"]["delta"] = 2
    torch.save(states, tmp_path / "deltas.ckpt")
    with pytest.raises(ConversionError, match="delta"):
        convert(tmp_path / "deltas.ckpt", tmp_path / "out2")
    states["Upstream_Config"]["audio"] = {
        "kaldi": {"feat_type": "fbank"},
        "cmvn": {"use_cmvn": True},
    }
    torch.save(states, tmp_path / "kaldi.ckpt")
    with pytest.raises(ConversionError, match="deltas"):
        convert(tmp_path / "kaldi.ckpt", tmp_path / "out3")


def test_hear_api(tera):
    check_hear(tera("tera")[1], width=32)


def test_echoic_eval_linear_on_a_real_task(tera, shared_data, tmp_path):
    linear_smoke(tera("tera")[1], task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")


def test_the_registered_base_sizes_have_the_published_parameter_counts(s3prl):
    from s3prl_reference import TERA_NET

    from echoic.encoders import build_encoder

    base = {**TERA_NET, "hidden_size": 768, "num_attention_heads": 12, "intermediate_size": 3072}
    model = s3prl["transformer"]
    theirs = model.TransformerModel(model.TransformerConfig(base), 80)
    for name in ("tera", "mockingjay"):  # logMelBase: 21.3 M
        with torch.device("meta"):
            ours = build_encoder(name)
        assert sum(p.numel() for p in ours.parameters()) == sum(
            p.numel() for p in theirs.parameters()
        )
