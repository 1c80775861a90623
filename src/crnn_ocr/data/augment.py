"""Training augmentation: a whole float batch (N, C, H, W) in [0, 1] at once, each image with
its own random parameters, in a handful of tensor operations (far cheaper on a CPU than
per-image PIL transforms in loader workers). The parameters are drawn in a fixed order from
one generator, so a seeded run repeats."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator) * (hi - lo) + lo


def warp_grid(shape: torch.Size, generator: torch.Generator | None = None, elastic: float = 0.0) -> torch.Tensor:
    """A ``grid_sample`` grid for a batch of ``shape``: a small random affine warp per image
    (rotation, slant, scale, shift), plus with ``elastic`` > 0 a smooth random warp of about
    that many pixels (handwriting: letters that lean, stretch and bend differently within one
    word), random at points 24 pixels apart and interpolated smoothly in between."""
    n, _, height, width = shape
    angle = _uniform(n, -3, 3, generator) * math.pi / 180
    shear = _uniform(n, -0.3, 0.3, generator)  # horizontal shift per pixel of height: slanted writing
    sx, sy = _uniform(n, 0.9, 1.05, generator), _uniform(n, 0.85, 1.05, generator)
    tx, ty = _uniform(n, -0.03, 0.03, generator), _uniform(n, -0.08, 0.08, generator)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid works in coordinates normalised to [-1, 1] on both axes; for a wide image a
    # pixel-space rotation or shear must be rescaled by the aspect ratio to stay one.
    aspect = height / width
    theta = torch.zeros(n, 2, 3)
    # Inverse map from output to input coordinates: rotation, then horizontal shear, then scale.
    theta[:, 0, 0] = cos / sx
    theta[:, 0, 1] = (-sin + shear) * aspect / sx
    theta[:, 1, 0] = sin / aspect / sy
    theta[:, 1, 1] = cos / sy
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(shape), align_corners=False)
    if elastic > 0:
        knots = torch.randn(n, 2, max(2, height // 24 + 1), max(2, width // 24 + 1), generator=generator)
        knots *= _uniform(n, 0, elastic, generator).view(n, 1, 1, 1)  # each image its own strength, in pixels
        field = F.interpolate(knots, size=(height, width), mode="bicubic", align_corners=True)
        to_grid = torch.tensor([2 / width, 2 / height]).view(1, 2, 1, 1)  # pixels -> grid units
        grid = grid + (field * to_grid).permute(0, 2, 3, 1)
    return grid


def erase_strips(x: torch.Tensor, generator: torch.Generator | None, share: float) -> torch.Tensor:
    """Occlusion, as SpecAugment masks stretches of time: ``share`` of the images each get one
    vertical strip, 1 pixel to half the image's height wide, painted the image's median (its
    paper), so that a letter must sometimes be read from the letters around it."""
    n, _, height, width = x.shape
    chosen = torch.rand(n, generator=generator) < share
    strip = (torch.rand(n, generator=generator) * (height // 2)).long().clamp_(max=width - 1) + 1
    start = (torch.rand(n, generator=generator) * (width - strip + 1)).long()
    columns = torch.arange(width).view(1, width)
    hidden = chosen.view(n, 1) & (columns >= start.view(n, 1)) & (columns < (start + strip).view(n, 1))
    paper = x.flatten(1).median(dim=1).values.view(n, 1, 1, 1)
    return torch.where(hidden.view(n, 1, 1, width), paper, x)


def augment_batch(x: torch.Tensor, generator: torch.Generator | None = None, elastic: float = 0.0,
                  degrade: float = 0.0, erase: float = 0.0) -> torch.Tensor:
    """Random small warp (``warp_grid``, one ``grid_sample`` for the batch), thinner or thicker
    strokes, blur, noise and contrast. ``degrade`` > 0: that share of the images is also made
    as another scanner or camera might: one of low contrast (30-60% of it), low resolution (a
    third to a half, scaled back up) or strong noise. ``erase`` > 0: that share of the images
    also loses a vertical strip (``erase_strips``)."""
    n, _, height, width = x.shape
    x = F.grid_sample(x, warp_grid(x.shape, generator, elastic), mode="bilinear", padding_mode="border",
                      align_corners=False)
    # Thinner or thicker strokes: a 3x3 min or max filter (ink is darker than background).
    morph = torch.rand(n, generator=generator)
    thick, thin = morph < 0.15, morph > 0.85
    if thick.any():
        x[thick] = -F.max_pool2d(-x[thick], 3, stride=1, padding=1)
    if thin.any():
        x[thin] = F.max_pool2d(x[thin], 3, stride=1, padding=1)
    blur = torch.rand(n, generator=generator) < 0.3
    if blur.any():
        k = torch.tensor([0.25, 0.5, 0.25])
        kernel = (k[:, None] * k[None, :]).expand(x.shape[1], 1, 3, 3)
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])
    if erase > 0:  # drawn only then, as below: with it off, the random stream is what it always was
        x = erase_strips(x, generator, erase)
    if degrade > 0:  # drawn only then: with it off, the random stream is what it always was
        chosen = torch.rand(n, generator=generator) < degrade
        kind = torch.where(chosen, torch.randint(1, 4, (n,), generator=generator), 0)  # 1, 2, 3: which
        faint, low_res, noisy = kind == 1, kind == 2, kind == 3
        faint_contrast, strong_sigma = _uniform(n, 0.3, 0.6, generator), _uniform(n, 0.06, 0.1, generator)
        factor = float(_uniform(n, 2, 3, generator)[0])  # one factor for the batch: one resize down and up
        if low_res.any():
            small = F.interpolate(x[low_res], scale_factor=1 / factor, mode="bilinear", antialias=True)
            x[low_res] = F.interpolate(small, size=(height, width), mode="bilinear")
    sigma = _uniform(n, 0, 0.06, generator)
    if degrade > 0:
        sigma = torch.where(noisy, strong_sigma, sigma)
    x = x + torch.randn(x.shape, generator=generator) * sigma.view(n, 1, 1, 1)
    contrast = _uniform(n, 0.7, 1.1, generator)
    if degrade > 0:
        contrast = torch.where(faint, faint_contrast, contrast)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast.view(n, 1, 1, 1) + mean).clamp_(0, 1)
