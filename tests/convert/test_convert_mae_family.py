"""AudioMAE, EAT and M2D: converters from the public key layouts, checked for self-consistency
(no PyPI package runs them, so parity against the originals is unverified — docs/converting.md).

Each family: a tiny random checkpoint saved as its repository saves it is detected by its own
converter only, converted, loaded, saved and loaded again (the same weights and outputs), has
``depth + 1`` layers, and its layers 0 and 1 equal the first block computed by hand from the
*source* tensors (``mae_family_layouts``: the image the source feeds, a ``conv2d`` with its kernel,
its token order and table, explicit LayerNorm → qkv → softmax → proj → MLP).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mae_family_layouts import (
    DEPTH,
    DIM,
    EAT_HEADS,
    IMAGE,
    eat_model_state,
    layer_norm,
    patch_tokens,
    post_ln_block,
    pre_ln_block,
    save_audiomae,
    save_eat,
    save_m2d,
)

from echoic.checkpoint import EchoicModel, load_dir, read_config, save
from echoic.convert import ConversionError, convert, detect
from echoic.types import Features

TOLERANCE = 2e-5
HEADS = DIM // 64


def features(n_bins: int, n_frames: int, seed: int = 3) -> Features:
    values = torch.randn(1, n_bins, n_frames, generator=torch.Generator().manual_seed(seed))
    return Features(values, torch.tensor([n_frames]), 0.01, 0.0125)


def run(model: EchoicModel, feats: Features):
    with torch.no_grad():
        return model.encoder(feats)


def round_trip(model_dir: Path, tmp_path: Path) -> EchoicModel:
    """load → save → load: the same weights and outputs."""
    model = load_dir(model_dir)
    again = load_dir(save(model, tmp_path / "again"))
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert read_config(tmp_path / "again").provenance == read_config(model_dir).provenance
    return again


def check(out, cls0: torch.Tensor, tokens0: torch.Tensor, block) -> None:
    """layers 0 and 1 (CLS and tokens) against the hand computation."""
    assert len(out.layers) == DEPTH + 1 and out.cls_layers is not None
    torch.testing.assert_close(out.cls_layers[0][0], cls0[0], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(out.layers[0][0], tokens0, atol=TOLERANCE, rtol=0)
    expected = block(torch.cat([cls0, tokens0]))
    torch.testing.assert_close(out.cls_layers[1][0], expected[0], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(out.layers[1][0], expected[1:], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("n_frames", [96, 70])  # the whole table; a shorter input (4 steps)
def test_audiomae_first_block_by_hand(tmp_path, n_frames):
    state = save_audiomae(tmp_path / "ckpt" / "pretrained.pth")
    assert detect(tmp_path / "ckpt").name == "audiomae"
    model = round_trip(convert(tmp_path / "ckpt", tmp_path / "out"), tmp_path)
    assert model.config.encoder == "audiomae" and model.config.frontend == "kaldi_fbank"
    feats = features(128, n_frames)
    # AudioMAE's image is (time, freq); the conv drops a partial last patch; tokens t * 8 + f
    usable = n_frames // 16 * 16
    image = feats.values[0, :, :usable].T
    pos = state["pos_embed"][0]
    tokens = patch_tokens(image, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"])
    tokens0 = tokens + pos[1 : 1 + tokens.shape[0]]  # time-major rows: a shorter input's first
    cls0 = state["cls_token"][0] + pos[:1]
    check(run(model, feats), cls0, tokens0, lambda x: pre_ln_block(x, state, HEADS))


@pytest.mark.parametrize("layout", ["pretrained", "finetuned"])
def test_eat_first_block_by_hand(tmp_path, layout):
    state = eat_model_state()
    save_eat(tmp_path / "ckpt" / "EAT-base_epoch30_pt.pt", state, finetuned=layout == "finetuned")
    assert detect(tmp_path / "ckpt").name == "eat"
    out_dir = convert(tmp_path / "ckpt", tmp_path / "out")  # no --trust-pickle: defaultdicts read
    model = round_trip(out_dir, tmp_path)
    config = model.config.encoder_config
    assert model.config.encoder == "eat" and config["post_norm"] and config["heads"] == EAT_HEADS
    feats = features(128, 96)
    image = feats.values[0].T  # (time, freq)
    tokens = patch_tokens(
        image, state[f"{IMAGE}local_encoder.proj.weight"], state[f"{IMAGE}local_encoder.proj.bias"]
    )
    tokens = tokens + state[f"{IMAGE}fixed_positional_encoder.positions"][0]
    cls = state[f"{IMAGE}extra_tokens"][0]  # no position: prepended after them
    x0 = layer_norm(
        torch.cat([cls, tokens]),
        state[f"{IMAGE}context_encoder.norm.weight"],
        state[f"{IMAGE}context_encoder.norm.bias"],
    )
    check(run(model, feats), x0[:1], x0[1:], lambda x: post_ln_block(x, state, EAT_HEADS))
    dropped = read_config(out_dir).provenance["dropped"]
    assert f"{IMAGE}decoder.proj.weight" in dropped
    if layout == "finetuned":
        assert {"fc_norm.weight", "head.weight"} <= set(dropped)


@pytest.mark.parametrize("training", [True, False])
def test_m2d_first_block_by_hand(tmp_path, training):
    folder = tmp_path / "m2d_vit_base-80x96p16x16-240101"
    name = "checkpoint-300.pth" if training else "weights_ep69.pth"
    state = save_m2d(folder / name, training=training)
    assert detect(folder).name == "m2d"
    model = round_trip(convert(folder, tmp_path / "out"), tmp_path)
    cfg = model.config
    assert (
        cfg.encoder == "m2d"
        and cfg.frontend == "centred_mel"
        and cfg.embed["freq_pool"] == "concat"
    )
    assert (cfg.frontend_config["mean"], cfg.frontend_config["std"]) == pytest.approx((-6.5, 4.5))
    assert cfg.frontend_config["sample_rate"] == 16000 and cfg.frontend_config["n_mels"] == 80
    feats = features(80, 90)  # 5 full patches + a partial one, which M2D zero-pads
    image = torch.nn.functional.pad(feats.values[0], (0, 6))  # (freq, time)
    pos = state["pos_embed"][0]
    tokens = patch_tokens(image, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"])
    tokens0 = tokens + pos[1:]  # frequency-major f * 6 + t: the table as it is
    cls0 = state["cls_token"][0] + pos[:1]
    check(run(model, feats), cls0, tokens0, lambda x: pre_ln_block(x, state, HEADS))


def test_m2d_rate_from_the_release_name_and_default_statistics(tmp_path):
    folder = tmp_path / "m2d_as_vit_base-80x96p16x16p32k-240413_enconly"
    state = save_m2d(folder / "weights.pth", training=False)
    del state["norm_stats"]
    torch.save(state, folder / "weights.pth")
    config = read_config(convert(folder, tmp_path / "out"))
    front = config.frontend_config
    assert (front["sample_rate"], front["n_fft"], front["hop_length"], front["f_max"]) == (
        32000,
        800,
        320,
        16000,
    )
    assert (front["mean"], front["std"]) == pytest.approx((-7.1, 4.2))
    assert config.provenance["norm_stats"].startswith("absent")


def test_each_layout_is_detected_by_its_own_converter_only(tmp_path):
    save_audiomae(tmp_path / "a" / "pretrained.pth")
    save_m2d(tmp_path / "m2d_vit_base-80x96p16x16-x" / "checkpoint-300.pth")
    save_eat(tmp_path / "e" / "eat.pt", eat_model_state())
    from echoic.convert import CONVERTERS

    for folder, expected in (
        ("a", "audiomae"),
        ("m2d_vit_base-80x96p16x16-x", "m2d"),
        ("e", "eat"),
    ):
        found = [name for name, c in CONVERTERS.items() if c.detect(tmp_path / folder)]
        assert found == [expected], (folder, found)


def test_refusals_name_the_reason(tmp_path):
    state = save_audiomae(tmp_path / "ft" / "finetuned.pth")
    state["fc_norm.weight"], state["fc_norm.bias"] = (
        state.pop("norm.weight"),
        state.pop("norm.bias"),
    )
    torch.save({"model": state}, tmp_path / "ft" / "finetuned.pth")
    with pytest.raises(ConversionError, match="global pooling"):
        convert(tmp_path / "ft", tmp_path / "o1")
    eat = eat_model_state()
    eat[f"{IMAGE}context_encoder.blocks.0.norm1.weight"] = torch.ones(DIM)
    save_eat(tmp_path / "prenet" / "eat.pt", eat)
    with pytest.raises(ConversionError, match="pre-net blocks"):
        convert(tmp_path / "prenet", tmp_path / "o2")
    eat = eat_model_state()
    eat["unknown.weight"] = torch.ones(2)
    save_eat(tmp_path / "unknown" / "eat.pt", eat)
    with pytest.raises(ConversionError, match=r"unknown\.weight"):
        convert(tmp_path / "unknown", tmp_path / "o3")


@pytest.mark.parametrize("family", ["audiomae", "eat", "m2d"])
def test_converted_families_pass_the_hear_contract(tmp_path, family):
    from converted_checks import check_hear

    if family == "audiomae":
        save_audiomae(tmp_path / "ckpt" / "pretrained.pth")
        source = tmp_path / "ckpt"
    elif family == "eat":
        save_eat(tmp_path / "ckpt" / "eat.pt", eat_model_state())
        source = tmp_path / "ckpt"
    else:
        source = tmp_path / "m2d_vit_base-80x96p16x16-x"
        save_m2d(source / "weights.pth", training=False)
    check_hear(convert(source, tmp_path / "out"), DIM)


def test_defaultdicts_rebuild_as_plain_dicts_without_running_anything(tmp_path):
    import collections
    import os

    from echoic.convert.safe_pickle import UnsafePickleError, load_pickle

    path = tmp_path / "state.pt"
    torch.save({"m": collections.defaultdict(list, {"a": [1]}), "w": torch.ones(2)}, path)
    with pytest.raises(UnsafePickleError, match=r"collections\.defaultdict"):
        load_pickle(path)  # not unless a converter asks for it
    loaded = load_pickle(path, stubs=("collections.defaultdict",))
    assert type(loaded["m"]) is dict and loaded["m"] == {"a": [1]}
    torch.save({"m": collections.defaultdict(os.getcwd)}, path)  # a factory that is code
    with pytest.raises(UnsafePickleError, match="getcwd"):
        load_pickle(path, stubs=("collections.defaultdict",))
