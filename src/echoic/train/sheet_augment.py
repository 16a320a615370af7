"""Augmented views of sheet snippets: audio clips and score images, drawn from one generator.

Audio (:func:`augment_audio`, ``(B, S)`` float clips, each valid for its ``durations_s``):

* crop: a ``crop_s`` window at a uniform start inside the snippet's sounding part (the whole
  snippet, zero-padded, when shorter); ``crop_s=None`` keeps the clip and only shifts it later by
  up to ``max_shift_s`` (zeros in front, the end cut): a time shift, no pitch change;
* gain: uniform in ``± gain_db``;
* noise: with probability ``noise_p``, white noise at a uniform SNR in ``snr_db`` (against the
  clip's RMS over its sounding part).

Images (:func:`augment_images`, ``(B, 1, H, W)`` ink, each ``widths`` pixels wide before padding):

* crop: a window of a uniform fraction in ``crop`` of the image's width, at a uniform start,
  moved to the left edge (the rest blank);
* affine: rotation ``± max_rotate_deg``, isotropic scale in ``scale``, horizontal shear
  ``± max_shear_deg`` (in pixel space, about the centre), translation ``± max_translate`` pixels
  ``(y, x)``, bilinear;
* line thickness: half the items thicker (blend towards a 2 × 2 dilation by up to ``thicken``),
  half thinner (ink raised to a power in [1, 2]: anti-aliased edges fade);
* noise: Gaussian, standard deviation uniform in ``[0, noise_std]``, clamped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["AudioAugmentConfig", "ImageAugmentConfig", "augment_audio", "augment_images"]


@dataclass
class AudioAugmentConfig:
    """Audio views (module docstring); the defaults are the SSL views."""

    crop_s: float | None = 3.0
    max_shift_s: float = 0.1
    gain_db: float = 6.0
    snr_db: tuple[float, float] = (15.0, 40.0)
    noise_p: float = 0.8


@dataclass
class ImageAugmentConfig:
    """Image views (module docstring); the defaults are the SSL views."""

    crop: tuple[float, float] = (0.6, 1.0)
    max_translate: tuple[int, int] = (8, 16)
    max_rotate_deg: float = 2.0
    scale: tuple[float, float] = (0.92, 1.08)
    max_shear_deg: float = 3.0
    thicken: float = 0.7
    noise_std: float = 0.08


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_audio(
    waves: torch.Tensor,
    durations_s: torch.Tensor,
    sample_rate: int,
    config: AudioAugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """``(B, S)`` clips → ``(B, crop)`` (or ``(B, S)`` without a crop) augmented views."""
    n, length = waves.shape
    valid = (durations_s * sample_rate).round().long().clamp(1, length)
    if config.crop_s is not None:
        size = round(config.crop_s * sample_rate)
        room = (valid - size).clamp_min(0).float()
        starts = (torch.rand(n, generator=generator) * (room + 1)).floor().long()
        padded = F.pad(waves, (0, max(0, size - length)))
        out = torch.stack([padded[i, s : s + size] for i, s in enumerate(starts.tolist())])
        valid = (valid - starts).clamp(1, size)
    else:
        shifts = (torch.rand(n, generator=generator) * config.max_shift_s * sample_rate).long()
        out = torch.zeros_like(waves)
        for i, shift in enumerate(shifts.tolist()):
            out[i, shift:] = waves[i, : length - shift]
        valid = (valid + shifts).clamp(1, length)
    gain = 10 ** (_uniform(n, -config.gain_db, config.gain_db, generator) / 20)
    out = out * gain[:, None]
    sounding = torch.arange(out.shape[1])[None, :] < valid[:, None]
    rms = ((out**2 * sounding).sum(1) / valid).sqrt()
    snr = _uniform(n, config.snr_db[0], config.snr_db[1], generator)
    on = (torch.rand(n, generator=generator) < config.noise_p).float()
    noise = torch.randn(out.shape, generator=generator)
    return out + noise * (on * rms / 10 ** (snr / 20))[:, None]


def _affine(
    n: int, height: int, width: int, c: ImageAugmentConfig, g: torch.Generator
) -> torch.Tensor:
    """``(n, 2, 3)`` output→input maps in ``affine_grid``'s normalised coordinates."""
    angle = torch.deg2rad(_uniform(n, -c.max_rotate_deg, c.max_rotate_deg, g))
    shear = torch.tan(torch.deg2rad(_uniform(n, -c.max_shear_deg, c.max_shear_deg, g)))
    zoom = _uniform(n, c.scale[0], c.scale[1], g)
    ty = _uniform(n, -c.max_translate[0], c.max_translate[0], g)
    tx = _uniform(n, -c.max_translate[1], c.max_translate[1], g)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # pixel-space linear map (rotation · shear · zoom), inverted: the grid reads input positions
    a = torch.stack(
        [torch.stack([cos, cos * shear - sin], -1), torch.stack([sin, sin * shear + cos], -1)], 1
    )
    a = a * zoom[:, None, None]
    inverse = torch.linalg.inv(a)
    to_pixels = torch.tensor([width / 2.0, height / 2.0])
    linear = inverse * to_pixels[None, None, :] / to_pixels[None, :, None]
    offset = -(linear @ torch.stack([tx / (width / 2.0), ty / (height / 2.0)], -1)[..., None])
    return torch.cat([linear, offset], dim=2)


def augment_images(
    images: torch.Tensor,
    widths: torch.Tensor,
    config: ImageAugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """``(B, 1, H, W)`` ink → augmented views of the same shape (module docstring)."""
    n, _, height, width = images.shape
    out = torch.zeros_like(images)
    widths = widths.clamp(1, width)
    keep = (
        (_uniform(n, config.crop[0], config.crop[1], generator) * widths)
        .round()
        .long()
        .clamp_min(1)
    )
    starts = (torch.rand(n, generator=generator) * (widths - keep + 1)).floor().long()
    for i, (start, size) in enumerate(zip(starts.tolist(), keep.tolist(), strict=True)):
        out[i, :, :, :size] = images[i, :, :, start : start + size]
    grid = F.affine_grid(
        _affine(n, height, width, config, generator), list(out.shape), align_corners=False
    )
    out = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    thick = F.max_pool2d(F.pad(out, (0, 1, 0, 1)), 2, stride=1)
    alpha = _uniform(n, 0.0, config.thicken, generator)[:, None, None, None]
    power = _uniform(n, 1.0, 2.0, generator)[:, None, None, None]
    thicker = (torch.rand(n, generator=generator) < 0.5)[:, None, None, None]
    out = torch.where(thicker, out + alpha * (thick - out), out.clamp_min(0) ** power)
    sigma = _uniform(n, 0.0, config.noise_std, generator)[:, None, None, None]
    out = out + sigma * torch.randn(out.shape, generator=generator)
    return out.clamp(0.0, 1.0)
