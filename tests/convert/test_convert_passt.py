"""``passt``: PaSST checkpoints (the model's state dict, as its releases are saved), converted, give
every layer of hear21passt 0.0.26's ``PaSST`` from the waveform on real clips at 32 kHz — its
``AugmentMelSTFT`` frontend included (max |diff| <= 1e-4; ``-s`` prints the maxima).
"""

from __future__ import annotations

import pytest
import torch
from convert_helpers import layer_diffs
from converted_checks import check_hear, linear_smoke, task_dir
from passt_reference import make_mel, make_passt, passt_layers, passt_modules

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, convert, detect
from echoic.encoders import build_encoder
from echoic.types import AudioBatch

TOLERANCE = 1e-4
SR = 32000


@pytest.fixture(scope="module")
def passt():
    return passt_modules()


@pytest.fixture(scope="module")
def clips32(clips_at):
    return clips_at(SR)


@pytest.fixture(scope="module")
def checkpoint(passt, tmp_path_factory):
    """(checkpoint file, the reference PaSST, its frontend, the converted directory)."""
    model = make_passt(passt[0])
    file = tmp_path_factory.mktemp("passt") / "passt-tiny-f128-p16-s10.pt"
    torch.save(model.state_dict(), file)
    return file, model, make_mel(passt[1]), convert(file, tmp_path_factory.mktemp("echoic-passt"))


def run(model, wave):
    with torch.no_grad():
        return model(AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), SR))


def ours_with_summary(out):
    """echoic's layers with the CLS and distillation tokens put back in front, as PaSST has them."""
    return [
        torch.cat([c[:, None], d[:, None], x], dim=1)
        for c, d, x in zip(out.cls_layers, out.dist_layers, out.layers, strict=True)
    ]


def test_every_layer_matches_passt_on_real_clips(checkpoint, clips32, record_parity):
    _, reference, mel, out = checkpoint
    model = load_dir(out)
    for name, wave in clips32.items():
        with torch.no_grad():
            features = mel(torch.from_numpy(wave)[None])
        diffs = layer_diffs(ours_with_summary(run(model, wave)), passt_layers(reference, features))
        record_parity("passt", "hear21passt 0.0.26", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: per-layer max |diff| {diffs}"


def test_the_frontend_is_passts_bit_for_bit(checkpoint, clips32):
    """Pre-emphasis, centred STFT with a symmetric 800-sample window in 1024 points, Kaldi mel
    filters to 15 kHz (built in float32 as torchaudio builds them), ln(x + 1e-5), (x + 4.5) / 5."""
    _, _, mel, out = checkpoint
    model = load_dir(out)
    for wave in clips32.values():
        samples = torch.from_numpy(wave)
        ours = model.frontend(AudioBatch(samples[None], torch.tensor([len(wave)]), SR)).values
        with torch.no_grad():
            theirs = mel(samples[None])
        assert ours.shape == theirs.shape and ours.shape[-1] == 1 + (len(wave) - 1) // 320
        assert torch.equal(ours, theirs)


def test_the_pooled_output_is_passts(checkpoint, clips32):
    """PaSST's ``features``: the mean of the CLS and distillation tokens after the final norm."""
    _, reference, mel, out = checkpoint
    wave = clips32["esc50"]
    result = run(load_dir(out), wave)
    with torch.no_grad():
        _, features = reference(mel(torch.from_numpy(wave)[None])[:, None])
    pooled = (result.cls_layers[-1] + result.dist_layers[-1]) / 2
    torch.testing.assert_close(pooled, features, atol=TOLERANCE, rtol=0)


def test_the_converted_config(checkpoint):
    file, _, _, out = checkpoint
    config = read_config(out)
    assert config.encoder == "passt" and config.frontend == "passt_mel"
    enc = config.encoder_config
    assert (enc["dim"], enc["depth"], enc["heads"]) == (128, 3, 2)  # dim / 64 heads, as timm's
    assert enc["patch_stride"] == [10, 10] and enc["position_grid"] == [12, 99]
    assert enc["positions"] == "learned_separable" and enc["flatten"] == "freq_major"
    assert enc["dist_token"] is True and enc["norm_eps"] == 1e-6
    assert config.frontend_config["hop_length"] == 320 and config.frontend_config["f_max"] == 15000
    assert config.embed == {"chunk_s": 9.9}
    assert set(config.provenance["dropped"]) == {"head", "head_dist"}
    assert detect(file).name == "passt" and detect(file.parent).name == "passt"


def test_wrapped_state_dicts_give_the_same_model(checkpoint, tmp_path):
    """``{"model": …}``, ``module.`` (DataParallel) and hear21passt's ``PasstBasicWrapper``
    (``net.`` + ``device_proxy``) all give the release's weights."""
    _, reference, _, out = checkpoint
    state = reference.state_dict()
    wrapped = {
        "model.pt": {"model": state},
        "module.pt": {f"module.{k}": v for k, v in state.items()},
        "wrapper.pt": {**{f"net.{k}": v for k, v in state.items()}, "device_proxy": torch.zeros(1)},
    }
    expected = load_dir(out).state_dict()
    for name, dump in wrapped.items():
        torch.save(dump, tmp_path / name)
        assert detect(tmp_path / name).name == "passt", name
        got = load_dir(convert(tmp_path / name, tmp_path / f"out-{name}")).state_dict()
        assert all(torch.equal(got[k], v) for k, v in expected.items()), name


@pytest.mark.parametrize(("fields", "stride"), [({"stride": 16}, 16), ({"distilled": False}, 10)])
def test_stride_16_and_undistilled_variants(passt, clips32, tmp_path, fields, stride):
    """The ``*_s16`` releases (no overlap: an 8 × 62 table) and a model without a distillation
    token (``new_pos_embed`` of one row)."""
    reference = make_passt(passt[0], **fields)
    file = tmp_path / "variant.pt"
    torch.save(reference.state_dict(), file)
    model = load_dir(convert(file, tmp_path / "out"))
    assert model.encoder.config.patch_stride == (stride, stride)
    wave = clips32["librispeech"]
    with torch.no_grad():
        theirs = passt_layers(reference, make_mel(passt[1])(torch.from_numpy(wave)[None]))
    out = run(model, wave)
    summary = [out.cls_layers] + ([out.dist_layers] if fields.get("distilled", True) else [])
    ours = [
        torch.cat([*(s[i][:, None] for s in summary), x], dim=1) for i, x in enumerate(out.layers)
    ]
    assert max(layer_diffs(ours, theirs)) <= TOLERANCE


def test_a_checkpoint_no_stride_fits_is_refused(checkpoint, tmp_path):
    _, reference, _, _ = checkpoint
    state = dict(reference.state_dict())
    state["freq_new_pos_embed"] = state["freq_new_pos_embed"][:, :, :5]
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(ConversionError, match="fits no patch stride"):
        convert(tmp_path / "odd.pt", tmp_path / "out")


def test_the_hop_follows_the_stfthop_release_names(checkpoint, tmp_path):
    _, reference, _, _ = checkpoint
    file = tmp_path / "passt-s-f128-stfthop160-p16-s10-ap.473-swa.pt"
    torch.save(reference.state_dict(), file)
    config = read_config(convert(file, tmp_path / "out"))
    assert config.frontend_config["hop_length"] == 160
    assert config.embed == {"chunk_s": 4.95, "overlap_s": 1.2375}


def test_the_registered_size_has_passt_s_parameter_count(passt):
    with torch.device("meta"):
        ours = build_encoder("passt")
    reference = passt[0].PaSST(embed_dim=768, depth=12, num_heads=12, stride=10, distilled=True)
    heads = ("head.", "head_dist.", "new_pos_embed")  # heads dropped, token positions folded
    count = sum(p.numel() for n, p in reference.named_parameters() if not n.startswith(heads))
    assert sum(p.numel() for p in ours.parameters()) == count


def test_hear_api(checkpoint):
    check_hear(checkpoint[3], width=128, sample_rate=SR)


def test_echoic_eval_linear(checkpoint, shared_data, tmp_path):
    linear_smoke(checkpoint[3], task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")
