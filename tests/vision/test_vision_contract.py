"""The image-tower registry contract: every registered size, built at a tiny input size, maps
``(B, 1, H, W)`` ink to finite ``(B, dim)`` vectors it declares unbuilt, trains, treats an image
the same alone or in a batch (eval mode), and refuses wrong input with a one-line fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from echoic.errors import ConfigError
from echoic.registry import RegistryError
from echoic.vision import (
    IMAGE_ENCODERS,
    build_image_encoder,
    describe_image_encoders,
    image_batch,
    image_encoder_config,
)

TINY = {"height": 64, "width": 96}


def test_registry_holds_the_sheet_cnns() -> None:
    assert {"sheet_cnn_test", "sheet_cnn_tiny"} <= set(IMAGE_ENCODERS.names())
    with pytest.raises(RegistryError, match="Did you mean 'sheet_cnn_tiny'"):
        IMAGE_ENCODERS.get("sheet_cnn_tin")


@pytest.mark.parametrize("name", IMAGE_ENCODERS.names())
def test_every_tower_runs_at_a_tiny_size(name: str) -> None:
    torch.manual_seed(0)
    config = image_encoder_config(name, **TINY)
    tower = build_image_encoder(name, **TINY)
    assert tower.dim == config.dim and (tower.height, tower.width) == (64, 96)
    row = {r["name"]: r for r in describe_image_encoders()}[name]
    assert row["dim"] == config.dim  # declared without building
    images = torch.rand(3, 1, 64, 96)
    out = tower(images)
    assert out.shape == (3, tower.dim) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in tower.parameters() if p.requires_grad)
    tower.eval()
    with torch.no_grad():
        together = tower(images)
        alone = torch.cat([tower(images[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", IMAGE_ENCODERS.names())
def test_wrong_input_shape_says_how_to_fix_it(name: str) -> None:
    tower = build_image_encoder(name, **TINY)
    with pytest.raises(ConfigError, match=r"reads \(B, 1, 64, 96\).*image_batch"):
        tower(torch.rand(2, 1, 64, 80))


def test_unknown_config_key_names_the_nearest() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'channels'"):
        build_image_encoder("sheet_cnn_tiny", chanels=(4, 8))


def test_too_small_images_for_the_stages_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 64 × 64 pixels"):
        build_image_encoder("sheet_cnn_tiny", height=32, width=96)


def test_image_batch_pads_blank_and_cuts_on_the_right() -> None:
    narrow = np.full((4, 3), 255, np.uint8)
    narrow[:, 0] = 0  # one black column
    wide = np.zeros((4, 7), np.uint8)
    batch = image_batch([narrow, wide], 4, 5)
    assert batch.shape == (2, 1, 4, 5) and batch.dtype == torch.float32
    assert batch[0, 0, :, 0].tolist() == [1.0] * 4  # black is ink 1
    assert batch[0, 0, :, 1:].abs().sum() == 0  # white paper and padding are 0
    assert batch[1].min() == 1.0  # the wide black image, cut to 5 columns
    with pytest.raises(ConfigError, match="h = 4"):
        image_batch([np.zeros((6, 5), np.uint8)], 4, 5)
