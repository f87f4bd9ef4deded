"""Gradient saliency (Simonyan et al. 2013) and SmoothGrad (Smilkov et al. 2017).

K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps", arXiv:1312.6034, 2013.
D. Smilkov, N. Thorat, B. Kim, F. Viegas, M. Wattenberg, "SmoothGrad: removing noise by adding
noise", arXiv:1706.03825, 2017.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.explainers.base import Explainer, Target, explaining, gradients, resolve_targets


class Saliency(Explainer):
    """|d score_c / d input|, the pre-softmax score of the target class, max over input channels.

    Equals captum's ``Saliency(model).attribute(x, target)`` for one-channel input.
    """

    def __init__(self, model: nn.Module):
        super().__init__(model)

    def maps(self, values: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad.abs().amax(1, keepdim=True)


class SmoothGrad(Saliency):
    """Saliency averaged over ``samples`` noisy copies of each image (Smilkov et al. 2017).

    The noise's standard deviation is ``noise`` times each image's value range (the paper's
    sigma / (x_max - x_min)); the maps are the mean of the absolute gradients (as captum's
    ``NoiseTunnel`` over ``Saliency``). The target is fixed from the clean image. All copies go through one
    forward and one backward. The noise is drawn from ``seed`` on every call and shared by the
    images of a batch, so a call is reproducible and an image's map does not depend on its batch.
    """

    def __init__(self, model: nn.Module, samples: int = 25, noise: float = 0.15, seed: int = 0):
        Explainer.__init__(self, model)
        if samples < 1:
            raise ValueError(f"SmoothGrad needs at least 1 sample, got {samples}")
        self.samples, self.noise, self.seed = samples, noise, seed

    def attribute(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        x = x.detach()
        with explaining(self.model), torch.no_grad():
            targets = resolve_targets(target, self.model(x))
        gen = torch.Generator(device=x.device).manual_seed(self.seed)
        eps = torch.randn((self.samples, 1, *x.shape[1:]), generator=gen, device=x.device, dtype=x.dtype)
        dims = tuple(range(1, x.ndim))
        sigma = self.noise * (x.amax(dims, keepdim=True) - x.amin(dims, keepdim=True))
        noisy = (x + eps * sigma).flatten(0, 1)  # (samples * B, C, H, W)
        _, grad, _ = gradients(self.model, noisy, targets.repeat(self.samples))
        return self.maps(noisy, grad).unflatten(0, (self.samples, len(x))).mean(0)
