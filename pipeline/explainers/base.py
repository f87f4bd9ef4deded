"""The machinery every explainer shares: find a layer, run one forward and one backward, leave no trace.

:func:`explaining` is the context manager that makes an explainer side-effect free (see
``STYLE.md``): it puts the model in eval mode and, optionally, hooks one layer; on exit, also
after an error, it removes the hook and gives every module back its own train/eval flag.
:func:`gradients` takes ``torch.autograd.grad`` of the target scores with respect to the input
or the hooked activation only, so parameter ``.grad`` is never touched, frozen parameters are
fine, and a caller's ``torch.no_grad()`` does not get in the way.

Maps come back raw, at the layer's resolution. :func:`upsample` brings them to the crop grid (stretched,
as the libraries do, or aligned with each cell's receptive field);
:func:`normalize` scales each map to [0, 1]; :class:`RunningMax` scales a video's maps by a
slowly decaying maximum, so a frame's brightness means the same as the last frame's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

#: A target class per image: None (the predicted class), one int for all, one per image, or a
#: function of the batch's logits (B, C), detached, that returns one of those: it chooses after
#: the forward pass the explanation shares (the demo classifies and explains with one forward).
Target = int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], object] | None


def find_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """A layer given as a module or a name (``conv2``, ``act1``; any ``named_modules`` name)."""
    if isinstance(layer, nn.Module):
        return layer
    if hasattr(model, "layer"):  # LeNet: its error lists the layer names
        return model.layer(layer)
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"no layer {layer!r} in the model; it has {', '.join(n for n in modules if n)}")
    return modules[layer]


def resolve_targets(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """One class index per image; a wrong length or class is an error, never truncated or broadcast."""
    n, classes = logits.shape
    if callable(target):
        target = target(logits.detach())
    if target is None:
        return logits.argmax(1)
    t = torch.as_tensor(target, dtype=torch.long, device=logits.device)
    t = t.expand(n) if t.ndim == 0 else t.reshape(-1)
    if len(t) != n:
        raise ValueError(f"{len(t)} targets for a batch of {n} images; give None, one int, or one class per image")
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= classes):
        raise ValueError(f"target classes must be in 0..{classes - 1}, got {t.tolist()}")
    return t


@contextmanager
def explaining(model: nn.Module, layer: nn.Module | None = None) -> Iterator[list[torch.Tensor]]:
    """Eval mode, gradients on, and the layer's outputs collected; all undone on exit, even on error.

    The hook hands the rest of the network a detached copy of the layer's output that requires
    grad: the gradient then stops there (nothing below the layer is differentiated, or even
    recorded) and exists even when every parameter is frozen.
    """
    # Only modules in training mode are switched (and switched back): a model already in eval mode,
    # as in the demo, pays nothing per call. Per module, since a model may mix modes.
    training = [m for m in model.modules() if m.training]
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        captured.append(output.detach().requires_grad_())
        torch.set_grad_enabled(True)  # record from here up: the layers below are never differentiated
        return captured[-1]

    handle = layer.register_forward_hook(keep) if layer is not None else None
    try:
        for module in training:  # dropout off, batch norm on its running statistics: maps of the deployed model
            module.training = False
        # With a layer, the forward runs without autograd until the hook turns it on (a third faster
        # at batch 256); the context restores the caller's grad mode, also a caller's no_grad().
        with torch.set_grad_enabled(layer is None):
            yield captured
    finally:
        if handle is not None:
            handle.remove()
        for module in training:
            module.training = True


class ForwardPass:
    """One forward pass kept for its backward: the logits can pick the targets before any gradient is taken.

    Made by :meth:`Explainer.forward`; valid inside its ``with`` block. The live demo classifies
    hands from :attr:`logits`, updates its tracks, then asks for the maps of the labels it shows,
    all with one forward.
    """

    def __init__(self, explainer: "Explainer", logits: torch.Tensor, values: torch.Tensor):
        self.explainer, self.values = explainer, values
        self._logits = logits
        #: The batch's logits (B, C), detached.
        self.logits = logits.detach()

    def gradient(self, target: Target = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(values, d score / d values, targets)``: the score is each image's target logit (pre-softmax)."""
        targets = resolve_targets(target, self.logits)
        weights = F.one_hot(targets, self._logits.shape[1]).to(self._logits.dtype)
        (grad,) = torch.autograd.grad(self._logits, self.values, weights, retain_graph=True)
        return self.values.detach(), grad, targets

    def attribute(self, target: Target = None) -> torch.Tensor:
        """The explainer's raw maps (B, 1, h, w) for ``target``."""
        values, grad, _ = self.gradient(target)
        return self.explainer.maps(values, grad)


@contextmanager
def _forward(model: nn.Module, x: torch.Tensor, layer: nn.Module | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    with explaining(model, layer) as captured:
        if layer is None:
            x = x.detach().requires_grad_()
        logits = model(x)
        if layer is not None and len(captured) != 1:
            raise ValueError(f"the layer ran {len(captured)} times in one forward; pick a layer that runs once")
        yield logits, (x if layer is None else captured[0])


def gradients(model: nn.Module, x: torch.Tensor, target: Target = None, layer: nn.Module | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward, one backward: ``(values, d score / d values, targets)`` for a whole batch.

    ``values`` is the layer's output, or the input when ``layer`` is None; the score is the
    pre-softmax logit of each image's target class. The images of a batch do not interact
    (eval mode), so one backward of the one-hot weighted logits gives every image its own gradient.
    """
    with _forward(model, x, layer) as (logits, values):
        targets = resolve_targets(target, logits)
        (grad,) = torch.autograd.grad(logits, values, F.one_hot(targets, logits.shape[1]).to(logits.dtype))
    return values.detach(), grad, targets


class Explainer:
    """An explainer built once and reused: it keeps the model (and layer), never tensors of a call.

    A method says how its maps come from the explained values (the input, or a layer's output) and
    their gradient, in :meth:`maps`; the forward and backward are shared.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module | None = None):
        self.model = model
        self.layer = None if layer is None else find_layer(model, layer)
        #: (step, offset) of the maps' cells on the input pixels, for :func:`upsample`.
        self.grid = (1.0, 0.0) if self.layer is None else layer_grid(model, self.layer)

    def maps(self, values: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Raw maps (B, 1, h, w) from the explained values and the gradient of the target score."""
        raise NotImplementedError

    def prepare(self, x: torch.Tensor) -> None:
        """Called with each batch before its forward: a method that needs a reference computes it here."""

    @contextmanager
    def forward(self, x: torch.Tensor) -> Iterator[ForwardPass]:
        """One forward of a float batch (B, C, H, W), kept for :meth:`ForwardPass.attribute`."""
        self.prepare(x)
        with _forward(self.model, x, self.layer) as (logits, values):
            yield ForwardPass(self, logits, values)

    def attribute(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        """Raw maps (B, 1, h, w) for a float batch (B, C, H, W)."""
        self.prepare(x)
        values, grad, _ = gradients(self.model, x, target, self.layer)
        return self.maps(values, grad)

    def __call__(self, x: torch.Tensor, target: Target = None) -> torch.Tensor:
        return self.attribute(x, target)


# ---------------------------------------------------------------------------------------------
# Maps: to the crop grid, and to [0, 1]


def layer_grid(model: nn.Module, layer: nn.Module) -> tuple[float, float]:
    """``(step, offset)``: cell i of the layer's output is centred on input pixel ``step * i + offset``.

    Walks the conv and pool layers up to ``layer`` in registration order (the order they run in
    a sequential model such as LeNet). LeNet-5's conv2 cells sit on pixels 6.5, 8.5, ... 20.5 of
    the 28x28 crop: a valid-padded map covers the crop's centre, not the whole crop.
    """
    step, offset = 1.0, 0.0
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (module.kernel_size, module.stride, module.padding)
            k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, s, p))
            d = module.dilation[0] if isinstance(module, nn.Conv2d) else 1
            offset += step * (d * (k - 1) / 2 - p)
            step *= s
        if module is layer:
            return step, offset
    raise ValueError("the layer is not a module of the model")


def upsample(maps: torch.Tensor, size: int = 28, grid: tuple[float, float] | None = None) -> torch.Tensor:
    """Bilinear resize of (B, 1, h, w) maps to (B, 1, size, size).

    Without ``grid``, the map is stretched over the image, as captum's ``interpolate`` and
    pytorch-grad-cam do (``F.interpolate``, ``align_corners=False``). With ``grid`` (an
    explainer's ``.grid``, from :func:`layer_grid`), each cell lands on the pixel its receptive
    field is centred on, and the edge cells extend to the border.
    """
    h, w = maps.shape[-2:]
    # Bilinear is separable: two small matrix products, ~5x faster than F.interpolate on CPU.
    return _weights(size, h, grid).to(maps) @ maps @ _weights(size, w, grid).to(maps).T


@lru_cache(maxsize=64)
def _weights(size: int, n: int, grid: tuple[float, float] | None) -> torch.Tensor:
    """(size, n): how much each of n cells gives each of size output pixels (1-D bilinear)."""
    pixels = torch.arange(size, dtype=torch.float64)
    pos = (pixels + 0.5) * (n / size) - 0.5 if grid is None else (pixels - grid[1]) / grid[0]
    pos = pos.clamp(0, n - 1)  # past the outer cell centres: the outer cells' values
    lo = pos.floor().long()
    frac = (pos - lo)[:, None]
    return (F.one_hot(lo, n) * (1 - frac) + F.one_hot((lo + 1).clamp(max=n - 1), n) * frac).float()


def normalize(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-image min-max to [0, 1]; a constant map becomes all zeros (it shows nothing)."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (hi - lo).clamp_min(eps)


class RunningMax:
    """Video normaliser: maps / a running maximum that decays slowly, clipped to [0, 1].

    Min-max per frame stretches every frame to full brightness, so a hand with little evidence
    flickers as bright as a clear one. Here a frame's peak raises the scale at once, and the
    scale decays by ``decay`` per frame, so brightness compares across frames. Keep one per
    tracked hand (or one per stream) and :meth:`reset` it when the track is lost.
    """

    def __init__(self, decay: float = 0.95, eps: float = 1e-12):
        self.decay, self.eps = decay, eps
        self.scale: torch.Tensor | None = None

    def __call__(self, maps: torch.Tensor) -> torch.Tensor:
        peak = maps.detach().amax()
        self.scale = peak if self.scale is None else torch.maximum(peak, self.scale * self.decay)
        return (maps / self.scale.clamp_min(self.eps)).clamp(0, 1)

    def reset(self) -> None:
        self.scale = None


def explain_all(explainers: dict[str, Explainer], x: torch.Tensor, targets: torch.Tensor, size: int,
                batch: int = 256, progress: bool = False, desc: str = "explain") -> dict[str, torch.Tensor]:
    """Each explainer's maps for float images ``x``: upsampled to ``size`` with every cell on the pixel its
    receptive field is centred on, and min-max normalised per image."""
    from tqdm import tqdm

    out: dict[str, list[torch.Tensor]] = {name: [] for name in explainers}
    for start in tqdm(range(0, len(x), batch), desc=desc, unit="batch", disable=not progress, leave=False):
        xb, tb = x[start:start + batch], targets[start:start + batch]
        for name, explainer in explainers.items():
            out[name].append(normalize(upsample(explainer(xb, tb), size, explainer.grid)))
    return {name: torch.cat(maps) for name, maps in out.items()}
