"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhyay et al. 2018), for any layer.

R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.
A. Chattopadhyay, A. Sarkar, P. Howlader, V. N. Balasubramanian, "Grad-CAM++: Generalized
Gradient-based Visual Explanations for Deep Convolutional Networks", WACV 2018.

Both are ReLU(sum_k w_k A_k) over the channels A_k of one layer's output; they differ only in
the channel weights w_k, so each is a :meth:`GradCAM.weights`. HiResCAM (Draelos & Carin 2020)
keeps the gradient per cell: ReLU(sum_k g_k * A_k).

**Relative to a black crop** (``relative=True``). A crop's background is masked to black, yet
black is not "nothing" inside the network: the input normalisation moves it to -mean/std, and the
conv biases add to that, so every background cell of a layer carries the same non-zero
activation A_k(black). Grad-CAM weights it like evidence, and at fine layers most of its heat lands
on the background (``benchmarks/explain_quality.py`` measures how much). With ``relative=True`` the maps use A_k(x) - A_k(black), the change
the image makes to the all-black crop the mask leaves (DeepLIFT's difference from a reference;
Integrated Grad-CAM, Sattarzadeh et al. 2021, is its path-integrated form). A cell whose receptive
field holds only background is then 0 (to float rounding: the reference is a batch of one),
at every layer, for any architecture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.explainers.base import Explainer, explaining

INPUT = "input"
"""The layer name of the crop itself: a CAM there explains pixels (HiResCAM relative to black: gradient x input)."""


class GradCAM(Explainer):
    """Grad-CAM at a conv or activation layer (``conv1``, ``act1``, ``conv2``, ``act2``, ...).

    w_k = spatial mean of d y_c / d A_k, with y_c the pre-softmax score of the target class.
    The default layer is the last conv layer. With ``relative=False`` it equals captum's
    ``LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)``; with
    ``relative=True`` the activations are taken relative to an all-black crop (see the module).
    """

    #: Whether the method weighs each cell by its own gradient (HiResCAM); only then is the one-channel
    #: input a layer worth explaining: a per-channel weight there makes the map a multiple of the crop.
    per_cell = False

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None, relative: bool = False):
        if layer is None:
            layer = model.conv_layers()[-1]
        if layer == INPUT and not self.per_cell:
            raise ValueError(f"{type(self).__name__} at the input is a multiple of the crop (one channel, one weight); "
                             "explain the input with HiResCAM, or pick a conv layer")
        # "input": the crop itself is the layer (one channel, one cell per pixel).
        super().__init__(model, None if layer == INPUT else layer)
        self.relative = relative
        self._black: torch.Tensor | None = None

    def maps(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        acts = self._relative(acts)
        return F.relu((self.weights(acts, grads) * acts).sum(1, keepdim=True))

    def prepare(self, x: torch.Tensor) -> None:
        self._black = self.black_activation(x) if self.relative else None

    def _relative(self, acts: torch.Tensor) -> torch.Tensor:
        if not self.relative:
            return acts
        if self._black is None:
            raise RuntimeError("a relative CAM's maps need its black reference: call the explainer (or forward()), "
                               "not maps() alone")
        return acts - self._black

    def black_activation(self, x: torch.Tensor) -> torch.Tensor:
        """(1, K, h, w): the layer's output on an all-black crop shaped as ``x[:1]`` (zeros: the model normalises inside).

        Made anew for every batch (one forward of one crop), so a model whose weights, buffers or input
        normalisation change between calls (training, a study) is never explained against a stale reference.
        """
        if self.layer is None:
            return torch.zeros_like(x[:1])
        seen: list[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
        try:
            with explaining(self.model), torch.no_grad():
                self.model(torch.zeros_like(x[:1]))
        finally:
            handle.remove()
        return seen[0]

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """(B, K, 1, 1) channel weights from the layer's output and its gradient."""
        return grads.mean((2, 3), keepdim=True)


class HiResCAM(GradCAM):
    """HiResCAM (Draelos & Carin 2020): ReLU(sum_k g_k * A_k), the gradient kept per cell.

    R. L. Draelos, L. Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
    convolutional neural networks", arXiv:2011.08891, 2020. Relative to black, it is the first-order
    share of y_c(x) - y_c(black) that each cell carries; at the layer ``"input"`` it is ReLU(x * dy_c/dx),
    gradient x input (Shrikumar et al. 2016, arXiv:1605.01713): a background pixel scores exactly 0.
    """

    per_cell = True

    def maps(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return F.relu((grads * self._relative(acts)).sum(1, keepdim=True))


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: w_k = sum_ij alpha_kij ReLU(g_kij), alpha = g^2 / (2 g^2 + sum_ab A_kab g^3).

    With the paper's exponential score exp(y_c), the second and third derivatives are powers of
    the first (its eq. 19), so one backward is enough. alpha is 0 where the denominator is.
    """

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        g2 = grads.pow(2)
        denom = 2 * g2 + acts.sum((2, 3), keepdim=True) * g2 * grads
        alpha = g2 / torch.where(denom == 0, torch.ones_like(denom), denom)
        return (alpha * F.relu(grads)).sum((2, 3), keepdim=True)
