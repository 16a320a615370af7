"""The ViT options of the converted layouts (AST, SSAST, Dasheng): strided patches, frequency-major
order, learned positions fitted per item, the distillation token, the per-bin input norm — and
that everything downstream (token times, the Embedder's pooling) reads the grid, not the order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from echoic.checkpoint import EchoicModel, ModelConfig
from echoic.embed.embedder import Embedder
from echoic.encoders import ViTConfig, ViTEncoder, build_encoder
from echoic.errors import ConfigError
from echoic.layers.bin_norm import BinNorm
from echoic.layers.grid_positions import GridPositions, fit_positions
from echoic.layers.patch_layout import PatchLayout
from echoic.types import AudioBatch, Features

HOP_S, FIRST = 0.01, 0.0125


def ast_like(**fields) -> ViTEncoder:
    torch.manual_seed(0)
    base = {
        "dim": 32,
        "depth": 2,
        "heads": 2,
        "n_bins": 48,
        "patch": (16, 16),
        "patch_stride": (10, 10),
        "flatten": "freq_major",
        "positions": "learned",
        "position_grid": (4, 6),
        "dist_token": True,
    }
    return ViTEncoder(ViTConfig(**{**base, **fields})).eval()


def features(lengths: list[int], n_bins: int = 48, seed: int = 0) -> Features:
    values = torch.randn(
        len(lengths), n_bins, max(lengths), generator=torch.Generator().manual_seed(seed)
    )
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    return Features(values * mask[:, None], torch.tensor(lengths), HOP_S, FIRST)


@pytest.mark.parametrize("flatten", ["freq_major", "time_major"])
def test_strided_patches_are_the_convolution_in_token_order(flatten):
    enc = ast_like(flatten=flatten)
    feats = features([75])
    weight = enc.patch_embed.proj.weight.reshape(32, 1, 16, 16)
    conv = F.conv2d(feats.values[:, None], weight, enc.patch_embed.proj.bias, stride=(10, 10))
    assert conv.shape[2:] == enc.grid(75) == (4, 6)  # (48 - 16) // 10 + 1, (75 - 16) // 10 + 1
    cells = conv[0].permute(1, 2, 0)  # (n_freq, n_time, D)
    expected = (
        cells.reshape(-1, 32) if flatten == "freq_major" else cells.transpose(0, 1).reshape(-1, 32)
    )
    tokens, _, _ = enc.embed_tokens(feats, add_positions=False)
    torch.testing.assert_close(tokens[0], expected, atol=1e-5, rtol=0)


def test_freq_major_coordinates_times_and_padding():
    enc = ast_like()
    out = enc(features([75, 40]))
    n_freq, n_time = out.grid
    assert (n_freq, n_time) == (4, 6) and enc.spec.flatten == "freq_major"
    for token in range(n_freq * n_time):
        f, t = divmod(token, n_time)
        assert (out.freq_index[0, token], out.time_index[0, token]) == (f, t)
        centre = FIRST + HOP_S * (t * 10 + 7.5)  # frames [10 t, 10 t + 16)
        assert out.token_times_s[0, token].item() == pytest.approx(centre, abs=1e-6)
    # 40 frames hold (40 - 16) // 10 + 1 = 3 whole patches per row: steps 3 … 5 are padding
    assert out.padding_mask[1].view(n_freq, n_time).tolist() == [[False] * 3 + [True] * 3] * 4
    assert out.patch_hop_s == pytest.approx(0.1)
    assert enc.spec.partial_last is False and enc.spec.receptive == 16 and enc.spec.stride == 10


def test_the_embedder_pools_the_same_frames_in_either_order():
    """The same weights in frequency-major and time-major order: every (time, freq) token is the
    same, and so is every frame the Embedder pools — it places tokens by their coordinates."""
    common = {"encoder_config": {}, "frontend": "kaldi_fbank", "frontend_config": {"n_mels": 128}}
    models = [
        EchoicModel(
            ModelConfig(encoder="ast_test", **{**common, "encoder_config": {"flatten": order}})
        )
        for order in ("freq_major", "time_major")
    ]
    models[1].load_state_dict(models[0].state_dict())
    clip = torch.randn(16000 * 2, generator=torch.Generator().manual_seed(3)) * 0.1
    frames = [Embedder(m, chunk_s=10.0).embed([clip])[0].frames for m in models]
    assert frames[0].shape == (19, 32)  # 198 frames → (198 - 16) // 10 + 1 time steps
    torch.testing.assert_close(frames[0], frames[1], atol=1e-5, rtol=0)
    with torch.no_grad():
        out = models[0].encoder(
            models[0].frontend(AudioBatch(clip[None], torch.tensor([32000]), 16000))
        )
    by_hand = out.last[0].reshape(12, 19, 32).mean(0)  # freq-major: rows of time steps
    torch.testing.assert_close(frames[0], by_hand, atol=1e-5, rtol=0)


def test_position_fits():
    table = torch.arange(2 * 8, dtype=torch.float32).reshape(2, 8, 1)
    assert fit_positions(table, 2, 8, "start") is table
    assert fit_positions(table, 2, 3, "start")[0, :, 0].tolist() == [0, 1, 2]
    assert fit_positions(table, 2, 3, "centre")[0, :, 0].tolist() == [3, 4, 5]  # 8/2 - 3/2 = 3
    assert fit_positions(table, 1, 4, "centre")[:, :, 0].tolist() == [[10, 11, 12, 13]]
    grown = fit_positions(table, 2, 16, "start")  # bilinear, align_corners=False
    expected = F.interpolate(table.permute(2, 0, 1)[None], size=(2, 16), mode="bilinear")
    torch.testing.assert_close(grown, expected[0].permute(1, 2, 0))
    with pytest.raises(ConfigError, match="start"):
        fit_positions(table, 2, 3, "middle")


def test_learned_positions_follow_each_items_length():
    """With a centred fit, an item's positions depend on its own length only."""
    positions = GridPositions(2, 8, 4, fit="centre")
    both = positions(2, 6, torch.tensor([6, 3]))
    assert both.shape == (2, 2, 6, 4)
    torch.testing.assert_close(both[0], positions.fitted(2, 6))
    torch.testing.assert_close(both[1, :, :3], positions.fitted(2, 3))
    assert torch.all(both[1, :, 3:] == 0)
    start = GridPositions(2, 8, 4)  # the start of the table whatever the length: shared
    assert start(2, 6, torch.tensor([6, 3])).shape == (2, 6, 4)
    separable = GridPositions(3, 8, 4, separable=True)
    torch.testing.assert_close(
        separable.fitted(3, 5), separable.freq[:, None] + separable.time[None, :5]
    )


def test_distillation_token_is_exposed_next_to_the_cls():
    out = ast_like()(features([60]))
    assert out.cls_layers is not None and out.dist_layers is not None
    assert len(out.dist_layers) == 3 and out.dist_layers[0].shape == (1, 32)
    assert not torch.equal(out.cls_layers[-1], out.dist_layers[-1])
    assert ast_like(dist_token=False)(features([60])).dist_layers is None
    assert build_encoder("vit_test")(features([60], n_bins=128)).dist_layers is None


def test_bin_norm_is_batch_norm_in_evaluation():
    norm = BinNorm(48)
    reference = torch.nn.BatchNorm2d(48).eval()
    with torch.no_grad():
        for module in (norm, reference):
            module.weight.uniform_(0.5, 2.0)
            module.bias.uniform_(-1, 1)
            module.running_mean.uniform_(-3, 3)
            module.running_var.uniform_(0.5, 4)
        reference.load_state_dict({**norm.state_dict(), "num_batches_tracked": torch.tensor(0)})
    values = torch.randn(2, 48, 30)
    norm.train()  # fixed statistics also while training
    expected = reference(values[:, :, None]).squeeze(2)
    torch.testing.assert_close(norm(values), expected)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="position_grid"):
        ViTConfig(dim=32, depth=1, heads=2, positions="learned")
    with pytest.raises(ConfigError, match="needs cls_token"):
        ViTConfig(dim=32, depth=1, heads=2, cls_token=False, dist_token=True)
    with pytest.raises(ConfigError, match="freq_major"):
        ViTConfig(dim=32, depth=1, heads=2, flatten="freq_majr")
    with pytest.raises(ConfigError, match="at most the patch size"):
        ViTConfig(dim=32, depth=1, heads=2, patch_stride=(20, 10))
    # strided patches need not tile the bins: AST's 128 bins hold 12 rows of 16 every 10
    assert PatchLayout(128, (16, 16), (10, 10)).freq_tokens == 12
    assert ViTConfig(dim=30, depth=1, heads=2, positions="learned", position_grid=(1, 4)).dim == 30


def test_too_short_for_one_strided_patch():
    enc = ast_like()
    out = enc(features([12]))  # fewer frames than a patch is long
    assert out.grid == (4, 0) and out.last.shape == (1, 0, 32)
    assert out.cls_layers is not None and torch.isfinite(out.cls_layers[-1]).all()


@pytest.mark.parametrize(
    "family", ["ast_test", "ssast_test", "dasheng_test", "passt_test", "atst_frame_test"]
)
def test_every_objective_trains_the_converted_layouts(family):
    """A converted AST / SSAST / Dasheng / PaSST / ATST-Frame can be trained further like an echoic
    ViT by every objective that accepts its spec (``check_encoder``); the others refuse it up front
    with a reason. mae and ssast accept every one; EAT needs a CLS token, which Dasheng and
    ATST-Frame have not."""
    from echoic.objectives import OBJECTIVES, build_objective
    from echoic.types import TrainBatch

    refused: dict[str, str] = {}
    for name in OBJECTIVES.names():
        torch.manual_seed(0)
        encoder = build_encoder(family)
        try:
            OBJECTIVES.get(name).check_encoder(encoder.spec)
        except ConfigError as err:
            refused[name] = str(err)
            continue
        # audio–text objectives: the tiny text tower and one caption per clip
        text_config = {"text": "text_test"} if OBJECTIVES.get(name).needs_text else None
        objective = build_objective(name, encoder, text_config).train()
        bins = encoder.spec.n_bins
        values = torch.randn(2, bins, 128, generator=torch.Generator().manual_seed(0))
        text = objective.caption_tokenizer()(["a dog", "rain"]) if objective.needs_text else None
        batch = TrainBatch.of(Features(values, torch.tensor([128, 100]), HOP_S, FIRST), text=text)
        objective(batch, torch.Generator().manual_seed(0)).loss.backward()
        assert all(p.grad is not None for p in encoder.parameters()), (family, name)
    assert not {"mae", "ssast"} & refused.keys(), refused
    no_cls = family in ("dasheng_test", "atst_frame_test")
    assert ("eat" in refused) == no_cls, refused
    if no_cls:
        assert "CLS" in refused["eat"]
