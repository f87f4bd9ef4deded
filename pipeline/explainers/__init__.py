"""Explainers: gradient saliency, SmoothGrad, Grad-CAM, Grad-CAM++ and HiResCAM on whole batches.

Build one per model (and layer) and reuse it; a call returns raw maps and leaves the model as
it found it (train/eval mode, parameter ``.grad``, hooks)::

    cam = GradCAM(model, "conv2")
    maps = normalize(upsample(cam(images), 28, cam.grid))   # (B, 1, 28, 28) in [0, 1], cells on their pixels
"""

from pipeline.explainers.base import (
    Explainer,
    ForwardPass,
    RunningMax,
    Target,
    explain_all,
    explaining,
    find_layer,
    gradients,
    layer_grid,
    normalize,
    resolve_targets,
    upsample,
)
from pipeline.explainers.gradcam import INPUT, GradCAM, GradCAMPlusPlus, HiResCAM
from pipeline.explainers.saliency import Saliency, SmoothGrad

__all__ = [
    "Explainer", "ForwardPass", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "INPUT", "RunningMax", "Saliency", "SmoothGrad", "Target", "explaining",
    "explain_all", "find_layer", "gradients", "layer_grid", "normalize", "resolve_targets", "upsample",
]
