"""``ast-pth``: checkpoints of the AST and SSAST repositories (``nn.DataParallel`` state dicts),
converted, give every layer of the original code (as s3prl 0.4.18 ships it, timm 0.4.5) on real
clips (max |diff| <= 1e-4; ``-s`` prints the measured maxima).

SSAST is pretrained with non-overlapping patches and used downstream with overlapping ones: the
reference is the code's own downstream model (``pretrain_stage=False``), built for each clip's
length from the saved pretraining checkpoint — which fits the position table by centring the
shorter axis or interpolating the longer one, both exercised here (patch model: 8 × 16 table for
12 × 29 and 12 × 10 grids; frame model: 1 × 128 for 297 and 114 steps).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from convert_helpers import layer_diffs
from spectrogram_reference import hooked_layers, perturb, s3prl_modules

from echoic.checkpoint import load_dir, read_config
from echoic.convert import ConversionError, convert, detect
from echoic.convert.pickle_scan import pickled_names
from echoic.types import AudioBatch, Features

TOLERANCE = 1e-4
END_TO_END = 5e-4
"""Bound on the waveform → layers difference, which adds the two Kaldi fbanks' differences: in
near-empty mel bins (128 bins of a 512-point FFT; energies near float32 eps) float32 rounding of
the spectrum moves the log by up to ~2.5e-4 after normalisation (measured 7.4e-5 on the layers)."""
PRETRAIN_FRAMES = 256
CASES = {
    # case: ((fshape, tshape) pretraining patches, (fstride, tstride) downstream)
    "ssast-patch": ((16, 16), (10, 10)),
    "ssast-frame": ((128, 2), (128, 1)),
}


@pytest.fixture(scope="module")
def s3prl():
    return s3prl_modules()


@pytest.fixture(scope="module")
def ssast(s3prl, tmp_path_factory):
    """``ssast(case)`` → (pretraining checkpoint, converted echoic directory)."""
    built: dict[str, tuple[Path, Path]] = {}

    def get(case: str) -> tuple[Path, Path]:
        if case not in built:
            (fshape, tshape), _ = CASES[case]
            torch.manual_seed(0)
            model = s3prl[0].ASTModel(
                fshape=fshape,
                tshape=tshape,
                fstride=fshape,
                tstride=tshape,
                input_fdim=128,
                input_tdim=PRETRAIN_FRAMES,
                model_size="tiny",
                pretrain_stage=True,
            )
            file = tmp_path_factory.mktemp(case) / "SSAST-Tiny-400.pth"
            torch.save(torch.nn.DataParallel(perturb(model)).state_dict(), file)
            built[case] = (file, convert(file, tmp_path_factory.mktemp(f"echoic-{case}")))
        return built[case]

    return get


def downstream(s3prl, case: str, file: Path, frames: int):
    """SSAST's downstream model for ``frames`` frames, loaded from the pretraining ``file``."""
    (fshape, tshape), (fstride, tstride) = CASES[case]
    return (
        s3prl[0]
        .ASTModel(
            fshape=fshape,
            tshape=tshape,
            fstride=fstride,
            tstride=tstride,
            input_fdim=128,
            input_tdim=frames,
            model_size="tiny",
            pretrain_stage=False,
            load_pretrained_mdl_path=str(file),
        )
        .eval()
    )


def features_of(values: torch.Tensor) -> Features:
    """The reference's ``(T, F)`` features as echoic Features ``(1, F, T)``."""
    return Features(values.T[None].contiguous(), torch.tensor([values.shape[0]]), 0.01, 0.0125)


def compare(echoic_model, reference, features, wave):
    """(per-layer diffs with the reference's features, end-to-end diffs, summary-token diffs)."""
    theirs = hooked_layers(reference.v.blocks, lambda: reference(features[None])[1])
    with torch.no_grad():
        same = echoic_model.encoder(features_of(features))
        batch = AudioBatch(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), 16000)
        ours = echoic_model(batch)
    patches = [h[:, 2:] for h in theirs]
    assert same.cls_layers is not None and same.dist_layers is not None
    summary = layer_diffs(
        same.cls_layers + same.dist_layers, [h[:, 0] for h in theirs] + [h[:, 1] for h in theirs]
    )
    return layer_diffs(same.layers, patches), layer_diffs(ours.layers, patches), summary


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_layer_matches_the_ssast_code_on_real_clips(case, s3prl, ssast, clips, record_parity):
    file, out = ssast(case)
    model = load_dir(out)
    for name, wave in clips.items():
        frames = 1 + (len(wave) - 400) // 160
        reference = downstream(s3prl, case, file, frames)
        features = s3prl[1].FeatureExtractor(target_length=frames)(torch.from_numpy(wave)[None])
        diffs, end_to_end, summary = compare(model, reference, features, wave)
        record_parity(case, "s3prl 0.4.18", name, diffs)
        record_parity(f"{case} e2e", "s3prl 0.4.18", name, end_to_end)
        assert max(diffs + summary) <= TOLERANCE, f"{case} on {name}: {diffs}, {summary}"
        assert max(end_to_end) <= END_TO_END, f"{case} on {name} from the waveform: {end_to_end}"


def test_the_original_ast_layout_matches_the_ast_code(s3prl, clips, tmp_path, record_parity):
    """An AST-repository model (strides 10, no pretraining sizes in the file; the DeiT heads and
    the ``mlp_head`` classifier are dropped) on the 3-s clips it was built for."""
    torch.manual_seed(0)
    frames = 298
    model = s3prl[2].ASTModel(
        label_dim=10,
        input_tdim=frames,
        imagenet_pretrain=False,
        audioset_pretrain=False,
        model_size="tiny224",
        verbose=False,
    )
    perturb(model).eval()
    file = tmp_path / "audioset_tiny.pth"
    torch.save(torch.nn.DataParallel(model).state_dict(), file)
    assert detect(file).name == "ast-pth"
    out = convert(file, tmp_path / "echoic")
    config = read_config(out)
    assert config.encoder == "ast" and config.encoder_config["position_grid"] == [12, 29]
    assert {"v.head.weight", "mlp_head.1.weight"} <= set(config.provenance["dropped"])
    echoic_model = load_dir(out)
    normed: list[torch.Tensor] = []
    model.v.norm.register_forward_hook(lambda _m, _a, output: normed.append(output))
    _, audio, _ = s3prl
    for name in ("librispeech", "esc50"):
        wave = clips[name]
        features = audio.FeatureExtractor(target_length=frames)(torch.from_numpy(wave)[None])
        theirs = hooked_layers(model.v.blocks, lambda f=features: (model(f[None]), normed[-1])[1])
        with torch.no_grad():
            same = echoic_model.encoder(features_of(features))
        diffs = layer_diffs(same.layers, [h[:, 2:] for h in theirs])
        record_parity("ast (repo)", "s3prl 0.4.18", name, diffs)
        assert max(diffs) <= TOLERANCE, f"{name}: {diffs}"


def test_ssast_configs_follow_the_downstream_code(ssast):
    patch = read_config(ssast("ssast-patch")[1])
    assert patch.encoder == "ssast"
    enc = patch.encoder_config
    assert enc["patch"] == [16, 16] and enc["patch_stride"] == [10, 10]
    assert enc["position_grid"] == [8, 16] and enc["position_fit"] == "centre"
    assert enc["heads"] == 3 and enc["norm_eps"] == 1e-6 and enc["flatten"] == "freq_major"
    dropped = set(patch.provenance["dropped"])
    assert {"p_input_tdim", "mask_embed", "cpredlayer.0.weight", "v.head_dist.weight"} <= dropped
    frame = read_config(ssast("ssast-frame")[1]).encoder_config
    assert frame["patch"] == [128, 2] and frame["patch_stride"] == [128, 1]
    assert frame["position_grid"] == [1, 128]


def test_detection_reads_names_without_unpickling(ssast, tmp_path):
    file, _ = ssast("ssast-patch")
    assert detect(file).name == "ast-pth" and detect(file.parent).name == "ast-pth"
    assert {"module.v.pos_embed", "module.p_input_tdim"} <= pickled_names(file)
    torch.save({"module.v.pos_embed": torch.zeros(1)}, tmp_path / "other.pth")
    assert detect(tmp_path / "other.pth") is None
    (tmp_path / "notes.pth").write_bytes(b"not a pickle")
    assert pickled_names(tmp_path / "notes.pth") == set()


def test_the_legacy_torch_format_is_read_too(ssast, tmp_path):
    """Files saved before PyTorch 1.6 (or with ``_use_new_zipfile_serialization=False``) are a
    row of pickles, not a zip: detected from the same opcodes, loaded by the same safe reader."""
    file, out = ssast("ssast-patch")
    legacy = tmp_path / "legacy" / "SSAST-Tiny-400.pth"
    legacy.parent.mkdir()
    torch.save(torch.load(file), legacy, _use_new_zipfile_serialization=False)
    assert detect(legacy).name == "ast-pth"
    again = load_dir(convert(legacy, tmp_path / "echoic"))
    for a, b in zip(load_dir(out).state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_table_that_fits_no_grid_is_refused(ssast, tmp_path):
    file, _ = ssast("ssast-patch")
    state = torch.load(file)
    for key in ("module.p_input_fdim", "module.p_input_tdim"):
        del state[key]
    state["module.v.pos_embed"] = state["module.v.pos_embed"][:, :-5]
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(ConversionError, match="fits no 128-bin grid"):
        convert(tmp_path / "odd.pth", tmp_path / "out")
