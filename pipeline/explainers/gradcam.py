"""Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhyay et al. 2018), for any layer.

R. R. Selvaraju, M. Cogswell, A. Das, R. Vedantam, D. Parikh, D. Batra, "Grad-CAM: Visual
Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.
A. Chattopadhyay, A. Sarkar, P. Howlader, V. N. Balasubramanian, "Grad-CAM++: Generalized
Gradient-based Visual Explanations for Deep Convolutional Networks", WACV 2018.

Both are ReLU(sum_k w_k A_k) over the channels A_k of one layer's output; they differ only in
the channel weights w_k, so each is a :meth:`GradCAM.weights`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.explainers.base import Explainer


class GradCAM(Explainer):
    """Grad-CAM at a conv or activation layer (``conv1``, ``act1``, ``conv2``, ``act2``, ...).

    w_k = spatial mean of d y_c / d A_k, with y_c the pre-softmax score of the target class.
    The default layer is the last conv layer. Equals captum's
    ``LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)``.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None):
        if layer is None:
            layer = model.conv_layers()[-1]
        super().__init__(model, layer)

    def maps(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return F.relu((self.weights(acts, grads) * acts).sum(1, keepdim=True))

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """(B, K, 1, 1) channel weights from the layer's output and its gradient."""
        return grads.mean((2, 3), keepdim=True)


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
