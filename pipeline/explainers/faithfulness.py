"""Faithfulness of explanation maps: remove (or restore) the pixels a map ranks first and follow the class probability.

- :func:`perturbation_curves`: **deletion** replaces the top-ranked pixels of a crop by a fill,
  **insertion** starts from the fill and puts the top-ranked pixels back (Petsiuk et al. 2018,
  RISE). A map that finds what the model uses makes the deletion curve fall fast (low area) and the
  insertion curve rise fast (high area).
- Three fills (:data:`FILLS`). ``zero`` sets pixels to black, which on a masked crop is the
  background itself: deleting a finger then draws a new silhouette, and any order that deletes the
  hand's brightest pixels first looks faithful. ``blur`` gives a removed pixel the value of a Gaussian
  blur of the whole crop (RISE's insertion canvas: a removed finger becomes a smear, and the blurred
  crop keeps a soft silhouette); ``mean`` gives it the crop's mean, which keeps no shape at all. Both
  leave less of a new, sharp shape behind than black does (the concern of ROAD, Rong et al. 2022),
  though neither is ROAD's imputation from the kept neighbours.
- :func:`random_maps` and :func:`intensity_maps`: the two baseline orders every method is
  compared with (random, and brightest pixels first).
- :func:`curve_area`: the area under a curve over the removed share 0..1.

Maps and crops are float (B, 1, S, S); the crops in [0, 1] as the model takes them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FILLS = ("zero", "blur", "mean")
"""What removed pixels become: black, a Gaussian blur of the crop (sigma :data:`BLUR_SIGMA`), or the crop's mean."""
BLUR_SIGMA = 3.0
"""Pixels; on a 28x28 crop about a finger's width, so a blurred finger is a smear, not a finger."""


def fill_images(x: torch.Tensor, fill: str) -> torch.Tensor:
    """The image each pixel of ``x`` becomes when removed: (B, 1, S, S)."""
    if fill == "zero":
        return torch.zeros_like(x)
    if fill == "mean":
        return x.mean((-2, -1), keepdim=True).expand_as(x).clone()
    if fill == "blur":
        radius = int(3 * BLUR_SIGMA)
        t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (t / BLUR_SIGMA) ** 2)
        k = k / k.sum()
        c = x.shape[1]
        padded = F.pad(x, (radius,) * 4, mode="reflect")
        out = F.conv2d(padded, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def ranking(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(B, S*S) pixel indices, highest map value first; ties in a seeded random order, not raster order."""
    flat = maps.detach().flatten(1).float()
    perm = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed))
    order = flat[:, perm].argsort(dim=1, descending=True, stable=True)
    return perm[order]


@torch.no_grad()
def perturbation_curves(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, maps: torch.Tensor,
                        mode: str = "deletion", fill: str = "zero", steps: int = 20, seed: int = 0,
                        batch: int = 512) -> torch.Tensor:
    """(B, steps + 1) probability of each target class as the top ``k / steps`` of the pixels are removed
    (``mode="deletion"``) or restored onto the fill (``mode="insertion"``), k = 0..steps.

    Deletion starts at the intact crop and ends at the fill image; insertion the other way round.
    The model runs in eval mode and is left in the mode it came in.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if maps.shape[0] != x.shape[0] or maps[0].numel() != x[0].numel():
        raise ValueError(f"maps {tuple(maps.shape)} do not match images {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        order = ranking(maps, seed)
        n = order.shape[1]
        # rank[b, pixel] = position of the pixel in image b's order: pixel is "taken" at step k when rank < cut.
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(n).expand_as(order).contiguous())
        source, fill_with = x.flatten(1), fill_images(x, fill).flatten(1)
        if mode == "insertion":
            source, fill_with = fill_with, source
        out = torch.empty(len(x), steps + 1)
        for k in range(steps + 1):
            taken = rank < round(n * k / steps)
            images = torch.where(taken, fill_with, source).view_as(x)
            for start in range(0, len(x), batch):
                p = model(images[start:start + batch]).softmax(1)
                out[start:start + batch, k] = p[torch.arange(len(p)), targets[start:start + batch]]
        return out
    finally:
        model.train(was_training)


def curve_area(curves: torch.Tensor) -> torch.Tensor:
    """(B,) area under each curve over the removed share 0..1 (trapezoids)."""
    steps = curves.shape[1] - 1
    return (curves[:, 1:] + curves[:, :-1]).sum(1) / (2 * steps)


def random_maps(shape: tuple[int, ...] | torch.Size, seed: int = 0) -> torch.Tensor:
    """Maps of uniform noise: the random-order baseline."""
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def intensity_maps(x: torch.Tensor) -> torch.Tensor:
    """The crops themselves as maps: the brightest-pixels-first baseline."""
    return x.detach().clone()
