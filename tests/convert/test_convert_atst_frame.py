"""``atst-frame``: ATST-Frame checkpoints, converted, give every layer of avex 1.4.0's ``FrameAST``
from the waveform on real clips — its frontend as avex's ``load_model`` builds it included
(max |diff| <= 1e-4; ``-s`` prints the maxima).

Two files: FrameAST_small at its published size, saved as the bare encoder state dict that avex's
``load_model`` reads (the reference is what ``load_model`` returns, frontend included), and a tiny
FrameAST saved as the published Lightning archives are (teacher + student + projectors).
"""

from __future__ import annotations

import pytest
import torch
from atst_reference import atst_layers, atst_module, lightning_archive, make_atst
from convert_helpers import layer_diffs
from converted_checks import check_hear, linear_smoke, task_dir

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, convert, detect
from echoic.encoders import build_encoder
from echoic.types import AudioBatch

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def atst():
    return atst_module()


@pytest.fixture(scope="module")
def small(atst, tmp_path_factory):
    """(file, avex's load_model result in eval mode, converted directory): FrameAST_small."""
    torch.manual_seed(0)
    encoder = atst.FrameAST_small()
    from spectrogram_reference import perturb

    perturb(encoder, 1)
    file = tmp_path_factory.mktemp("atst") / "atst_frame_small_encoder.pt"
    torch.save(encoder.state_dict(), file)
    reference = atst.load_model(str(file), device="cpu").eval()  # load_model leaves it training
    return file, reference, convert(file, tmp_path_factory.mktemp("echoic-atst-small"))


@pytest.fixture(scope="module")
def archive(atst, tmp_path_factory):
    """(file, the tiny reference FrameAST, converted directory): a Lightning archive."""
    model = make_atst(atst)
    file = tmp_path_factory.mktemp("atst-ckpt") / "atst_frame_tiny.ckpt"
    torch.save(lightning_archive(model), file)
    return file, model, convert(file, tmp_path_factory.mktemp("echoic-atst"))


def run(model, wave):
    with torch.no_grad():
        return model(AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), 16000))


def features_of(reference, wave):
    """avex's frontend: MelSpectrogram → AmplitudeToDB(top_db=80) → MinMax, ``(1, 1, 64, T)``."""
    with torch.no_grad():
        return reference.transform(torch.from_numpy(wave)[None, None])


def test_every_layer_matches_avex_on_real_clips(small, archive, clips, record_parity):
    _, reference, out = small
    _, tiny, tiny_out = archive
    for label, model, ref in (("atst_frame_small", out, reference), ("atst_frame", tiny_out, tiny)):
        ours = load_dir(model)
        for name, wave in clips.items():
            theirs = atst_layers(ref, features_of(reference, wave))
            diffs = layer_diffs(run(ours, wave).layers, theirs)
            record_parity(label, "avex 1.4.0", name, diffs)
            assert max(diffs) <= TOLERANCE, f"{label} {name}: per-layer max |diff| {diffs}"


def test_the_frontend_is_avexs(small, clips):
    """``centred_mel`` with ATST's settings against avex's chain (MinMax as a mean / std)."""
    _, reference, out = small
    model = load_dir(out)
    for wave in clips.values():
        ours = model.frontend(
            AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), 16000)
        )
        theirs = features_of(reference, wave)[:, 0]
        assert ours.values.shape == theirs.shape
        assert float((ours.values - theirs).abs().max()) <= 1e-6


def test_the_converted_configs(small, archive):
    for (file, _, out), dim, heads, dropped in (
        (small, 384, 6, ["mask_embed"]),
        (
            archive,
            128,
            2,
            [
                "mask_embed",
                "model.student.encoder",
                "model.student.predictor",
                "model.student.projector",
                "model.teacher.projector",
            ],
        ),
    ):
        config = read_config(out)
        assert config.encoder == "atst_frame" and config.frontend == "centred_mel"
        enc = config.encoder_config
        assert (enc["dim"], enc["depth"], enc["heads"]) == (dim, 12 if dim == 384 else 3, heads)
        assert enc["patch"] == [64, 4] and enc["patch_stride"] == [64, 4]
        assert enc["position_grid"] == [1, 250] and enc["qkv_bias"] is False
        assert enc["cls_token"] is False
        front = config.frontend_config
        assert (front["n_fft"], front["f_min"], front["f_max"], front["top_db"]) == (
            1024,
            60.0,
            7800.0,
            80.0,
        )
        assert config.embed == {"chunk_s": 10.0}
        assert config.provenance["dropped"] == dropped
        assert detect(file).name == "atst-frame" and detect(file.parent).name == "atst-frame"


def test_the_cnn_patch_embedding_variant(atst, clips, small, tmp_path):
    """``patch_embed="CNN"`` (a strided Conv2d instead of the Linear over rearranged patches)."""
    _, reference, _ = small
    model = make_atst(atst, patch_embed="CNN")
    torch.save(model.state_dict(), tmp_path / "cnn.pt")
    ours = load_dir(convert(tmp_path / "cnn.pt", tmp_path / "out"))
    wave = clips["esc50"]
    diffs = layer_diffs(run(ours, wave).layers, atst_layers(model, features_of(reference, wave)))
    assert max(diffs) <= TOLERANCE, diffs


def test_unpublished_variants_are_refused(archive, tmp_path):
    file, _, _ = archive
    dump = torch.load(file)
    dump["hyper_parameters"]["pos_type"] = "interpolate"
    torch.save(dump, tmp_path / "interp.ckpt")
    with pytest.raises(ConversionError, match="pos_type"):
        convert(tmp_path / "interp.ckpt", tmp_path / "out")
    dump["hyper_parameters"]["pos_type"] = "cut"
    dump["state_dict"]["model.teacher.extra.weight"] = torch.zeros(2)
    torch.save(dump, tmp_path / "extra.ckpt")
    with pytest.raises(ConversionError, match=r"model\.teacher\.extra\.weight"):
        convert(tmp_path / "extra.ckpt", tmp_path / "out2")


def test_the_registered_sizes_have_frame_ast_parameter_counts(atst):
    """FrameAST_base and _small, less the pretraining mask and the unused CLS position row."""
    for name, factory in (
        ("atst_frame", atst.FrameAST_base),
        ("atst_frame_small", atst.FrameAST_small),
    ):
        with torch.device("meta"):
            ours = build_encoder(name)
        reference = factory()  # its stochastic-depth rates are read with .item(): not on meta
        count = sum(p.numel() for p in reference.parameters()) - 2 * reference.embed_dim
        assert sum(p.numel() for p in ours.parameters()) == count, name


def test_hear_api(archive):
    check_hear(archive[2], width=128)


def test_echoic_eval_linear(archive, shared_data, tmp_path):
    linear_smoke(archive[2], task_dir(shared_data, tmp_path / "tasks"), tmp_path / "out")
