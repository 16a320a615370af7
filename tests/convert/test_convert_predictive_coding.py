"""``apc`` / ``npc``: s3prl APC, VQ-APC and NPC checkpoints, converted, give every hidden state of
s3prl 0.4.18's upstream experts on real clips (max |diff| <= 1e-4 given the same features; ``-s``
prints the maxima), and ``kaldi_fbank`` with CMVN gives the experts' features.

The layers are s3prl's ``hidden_states`` in its order: APC's GRU outputs; NPC's block 0, masked
conv 0, block 1, …, the sum of the masked convs (and, without cross-layer masked convolutions, the
blocks, the last masked conv and the sum).
"""

from __future__ import annotations

import pytest
import torch
from convert_helpers import assert_batch_invariant, layer_diffs, run_on_features
from converted_checks import check_hear, linear_smoke, task_dir
from s3prl_reference import (
    APC_CASES,
    NPC_CASES,
    hidden_states,
    predictive_expert,
    s3prl_upstreams,
    save_predictive,
)

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, convert, detect

TOLERANCE = 1e-4
FEATURES = 2e-3
"""The frontend against torchaudio's Kaldi fbank + CMVN: echoic's Kaldi mel bank is computed in
float64, torchaudio's in float32 — edge weights of a filter differ by up to 8e-4 relative, which
moves a log bin dominated by its edge FFT bin by up to ~3e-4 (measured 2.6e-4 before CMVN), then
divided by that bin's spread over the clip."""
END_TO_END = 5e-3
"""Bound on the waveform → layers difference (the features' difference carried through)."""
CASES = [("apc", case) for case in sorted(APC_CASES)] + [
    ("npc", case) for case in sorted(NPC_CASES)
]
LAYERS = {"apc": 3, "vq-apc": 3, "npc": 7, "npc-last": 5}


@pytest.fixture(scope="module")
def s3prl():
    return s3prl_upstreams()


@pytest.fixture(scope="module")
def predictive(s3prl, tmp_path_factory):
    """``predictive(family, case)`` → (checkpoint, converted directory, s3prl's expert)."""
    built = {}

    def get(family, case):
        if case not in built:
            folder = tmp_path_factory.mktemp(case)
            path = save_predictive(s3prl, family, case, folder / f"{case}_360hr.ckpt")
            out = convert(path, folder / "echoic")
            built[case] = (path, out, predictive_expert(s3prl, family, path))
        return built[case]

    return get


def constant_bins(expert, wave: torch.Tensor) -> torch.Tensor:
    """``(F,)`` bool: bins of the reference's fbank (before CMVN) with one value in every frame
    (its floor, log(float32 eps), in the low bins of quiet audio), where the reference's CMVN
    returns float32 rounding noise / 1e-10 and echoic 0 (``features/cmvn.py``)."""
    extractor = expert.preprocessor
    raw = extractor.extract_fn(
        wave[None],
        num_mel_bins=extractor.num_mel_bins,
        sample_frequency=16000,
        window_type="hamming",
        **extractor.kwargs,
    )
    return (raw == raw[:1]).all(0)


@pytest.mark.parametrize(("family", "case"), CASES)
def test_every_layer_matches_s3prl_on_real_clips(family, case, predictive, clips, record_parity):
    path, out, expert = predictive(family, case)
    assert detect(path).name == family and read_config(out).encoder == family
    model = load_dir(out)
    for name, clip in clips.items():
        wave = torch.from_numpy(clip)
        theirs = hidden_states(expert, wave)
        with torch.no_grad():
            features = expert.preprocessor(wave[None])  # (T, F)
        same, ours, mine = run_on_features(model, wave, features)
        assert len(theirs) == LAYERS[case] and theirs[0].shape == (1, len(features), 32)
        diffs = layer_diffs(same.layers, theirs)
        record_parity(case, "s3prl 0.4.18", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{case} on {name}: {diffs}"
        constant = constant_bins(expert, wave)
        assert torch.all(mine[constant] == 0.0)  # the reference: rounding noise / 1e-10 there
        feature_diff = float((mine[~constant] - features.T[~constant]).abs().max())
        record_parity(f"{case} features", "s3prl 0.4.18", name, [feature_diff])
        assert feature_diff <= FEATURES, f"{case} features on {name}: {feature_diff}"
        if not constant.any():  # else the reference's noise bins move its layers
            end_to_end = layer_diffs(ours.layers, theirs)
            record_parity(f"{case} e2e", "s3prl 0.4.18", name, end_to_end)
            assert max(end_to_end) <= END_TO_END, f"{case} e2e on {name}: {end_to_end}"


def test_the_frontend_and_dropped_weights(predictive):
    config = read_config(predictive("apc", "vq-apc")[1])
    front = config.frontend_config
    assert config.frontend == "kaldi_fbank" and front["window"] == "hamming" and front["cmvn"]
    assert (front["n_mels"], front["energy_floor"], front["low_freq"]) == (80, 1.0, 20.0)
    assert any(k.startswith("vq_layers.") for k in config.provenance["dropped"])
    assert "postnet.weight" in config.provenance["dropped"]
    npc = read_config(predictive("npc", "npc-last")[1])
    assert not npc.encoder_config["cross_layer"] and npc.encoder_config["activation"] == "tanh"
    assert "masked_convs.2.conv_mask" in npc.provenance["dropped"]


@pytest.mark.parametrize(("family", "case"), [("apc", "apc"), ("npc", "npc")])
def test_an_item_in_a_padded_batch_gives_what_it_gives_alone(family, case, predictive, clips):
    assert_batch_invariant(load_dir(predictive(family, case)[1]), clips)


def test_unsupported_options_are_named(s3prl, tmp_path):
    path = save_predictive(s3prl, "npc", "npc", tmp_path / "npc.ckpt")
    states = torch.load(path, weights_only=False)
    states["config"]["data"]["audio"]["subtract_mean"] = True
    torch.save(states, tmp_path / "mean.ckpt")
    with pytest.raises(ConversionError, match="subtract_mean"):
        convert(tmp_path / "mean.ckpt", tmp_path / "out")
    states = torch.load(path, weights_only=False)
    states["model"]["masked_convs.0.conv_mask"][:, :, 0] = 0.0
    torch.save(states, tmp_path / "mask.ckpt")
    with pytest.raises(ConversionError, match="conv_mask"):
        convert(tmp_path / "mask.ckpt", tmp_path / "out2")


@pytest.mark.parametrize(("family", "case"), [("apc", "apc"), ("npc", "npc")])
def test_hear_api(family, case, predictive):
    check_hear(predictive(family, case)[1], width=32)


@pytest.mark.parametrize(("family", "case"), [("apc", "apc"), ("npc", "npc")])
def test_echoic_eval_linear_on_a_real_task(family, case, predictive, shared_data, tmp_path):
    out = predictive(family, case)[1]
    linear_smoke(out, task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")


def test_the_registered_sizes_have_the_published_parameter_counts(s3prl):
    from echoic.encoders import build_encoder

    published = {  # apc_360hr / npc_360hr: the prediction head (postnet) is not converted
        "apc": s3prl["apc_model"].APC(80, 512, 3, 0.1, True),
        "npc": s3prl["npc_model"].NPC(80, 512, 4, 0.1, True, 15, 5),
    }
    for name, theirs in published.items():
        with torch.device("meta"):
            ours = build_encoder(name)
        expected = sum(p.numel() for k, p in theirs.named_parameters() if "postnet" not in k)
        assert sum(p.numel() for p in ours.parameters()) == expected, name
