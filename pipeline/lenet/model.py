"""The LeNet-5 family: one configurable class and a registry of named variants.

LeNet-5 as this project uses it (input 1x28x28)::

    conv1 6@5x5 -> act1 -> pool1 (2) -> conv2 16@5x5 -> act2 -> pool2 (2) -> flatten 256
    -> fc1 120 -> act3 -> fc2 84 -> act4 -> fc3 N

The variants change one of: the activation, the pooling, the input padding, the number of conv
layers (one, two, or two and an extra 3x3 ``conv3``), the kernel size of conv1 and conv2 (3, 5 or
7, unpadded as in LeNet-5, so the maps before fc1 shrink as the kernel grows), the channels, the
hidden fully connected layers, batch norm and dropout.

Activations are separate, non-inplace modules with names (``act1``, ``act2``, ...), so Grad-CAM
can hook a layer before or after its non-linearity: ``model.layer("conv2")``, ``model.layer("act2")``.
The model takes floats in [0, 1] and applies its own input normalisation (saved with it), and
divides its logits by a temperature fitted on validation, so its probabilities are calibrated.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from pipeline.errors import UserError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class _AvgPool2x2(torch.autograd.Function):
    """2x2, stride-2 average pooling of even-sized maps: four strided views summed forward, and
    PyTorch's own pooling gradient backward (faster than autograd's through the views)."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        v = x.reshape(b, c, h // 2, 2, w // 2, 2)
        return (v[:, :, :, 0, :, 0] + v[:, :, :, 0, :, 1] + v[:, :, :, 1, :, 0] + v[:, :, :, 1, :, 1]) * 0.25

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.ops.aten.avg_pool2d_backward(grad, x, [2, 2], [2, 2], [0, 0], False, True, None)


#: Inputs with fewer elements use PyTorch's pooling kernel (measured: faster below about 16 LeNet crops).
FAST_POOL_MIN = 1 << 16


class AvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` with a fast path for 2x2, stride-2 pooling of even-sized maps (every LeNet here).

    PyTorch's CPU kernel takes about 1.6 ms for LeNet-5's first pooling at batch 256 on one thread;
    the sum of the four strided views takes 0.4 ms (the gradient is PyTorch's own). Values and
    gradients are bit-identical to PyTorch's (the same four additions in the same order; x 0.25
    equals / 4 in floating point). Training and batched explanations run through it. Small inputs
    (the demo's few crops, where several small operations cost more than one kernel call), other
    settings, and exports use PyTorch's kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # _exporting() first: a test of the batch size would become a guard in an exported graph.
        if (not _exporting() and self.kernel_size in (2, (2, 2)) and self.stride in (2, (2, 2))
                and self.padding in (0, (0, 0)) and not self.ceil_mode and self.divisor_override is None
                and x.dim() == 4 and x.numel() >= FAST_POOL_MIN and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0):
            return _AvgPool2x2.apply(x)
        return super().forward(x)


def _exporting() -> bool:
    """True while torch.export / torch.compile traces the model: they get PyTorch's own pooling operator."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and getattr(compiler, "is_compiling", lambda: False)())


POOLS = {"avg": AvgPool2d, "max": nn.MaxPool2d}


@dataclass(frozen=True)
class LeNetConfig:
    """Architecture of a LeNet-5 variant.

    Attributes:
        num_classes: outputs of the last layer.
        activation: ``relu``, ``tanh`` or ``sigmoid``.
        pool: ``avg`` or ``max`` (2x2, stride 2).
        channels: output channels of conv1 and conv2 (6, 16 in LeNet-5); one entry builds conv1 only
            (conv1 -> act1 -> pool1 -> fc1).
        kernel: kernel size of conv1 and conv2 (5 in LeNet-5), without padding.
        conv3: channels of an extra 3x3 conv layer after conv2 (0: none; needs two ``channels``).
        hidden: sizes of the hidden fully connected layers.
        batch_norm: batch norm after each conv layer.
        dropout: dropout before each fully connected layer (0: none).
        in_size: input side in pixels.
        pad: zero padding added around the input (2 makes a 28x28 crop the 32x32 of the 1998 paper).
        mean, std: input normalisation, applied inside the model to inputs in [0, 1].
        zero_background: keep a black (masked) background exactly zero through the feature layers:
            conv layers without bias, and no mean subtracted from the input (``mean`` is then 0). With
            ReLU or tanh and either pooling, a cell whose receptive field holds only background is 0,
            so Grad-CAM (a weighted sum of activations) cannot light it up. It does not hold with
            batch norm or sigmoid. Off by default: measured on people never seen it scores as the
            biased design does (benchmarks/leave_one_source_out.py, 0.756 against 0.766), but it has
            not yet been measured for what it does to the explanations (issue 13).
    """

    num_classes: int = 10
    activation: str = "relu"
    pool: str = "avg"
    channels: tuple[int, ...] = (6, 16)
    kernel: int = 5
    conv3: int = 0
    hidden: tuple[int, ...] = (120, 84)
    batch_norm: bool = False
    dropout: float = 0.0
    in_size: int = 28
    pad: int = 0
    mean: float = 0.0
    std: float = 1.0
    zero_background: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"], d["hidden"] = list(self.channels), list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, values: dict) -> "LeNetConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown model setting(s) {', '.join(unknown)}: the checkpoint comes from another version; upgrade the package")
        values = dict(values)
        for key in ("channels", "hidden"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


#: Named variants. Each differs from ``lenet5`` in one respect, so a study isolates that respect.
VARIANTS: dict[str, dict] = {
    "lenet5": {},
    "lenet5-max": {"pool": "max"},
    "lenet5-tanh": {"activation": "tanh"},
    "lenet5-sigmoid": {"activation": "sigmoid"},
    # As in 1998: tanh, average pooling, and the 28x28 input padded to 32x32 (5x5x16 = 400 features).
    "lenet5-classic": {"activation": "tanh", "pool": "avg", "pad": 2},
    "lenet5-shallow": {"channels": (6,)},  # one conv layer fewer: conv1 -> pool1 -> fc1 (864 features)
    "lenet5-deep": {"conv3": 32},  # one conv layer more: a 3x3 conv3 after conv2
    "lenet5-k3": {"kernel": 3},  # 3x3 kernels: 5x5x16 = 400 features
    "lenet5-k7": {"kernel": 7},  # 7x7 kernels: 2x2x16 = 64 features
    "lenet5-narrow": {"channels": (3, 8)},
    "lenet5-wide": {"channels": (12, 32)},
    "lenet5-hidden1": {"hidden": (120,)},  # one hidden fully connected layer fewer
    "lenet5-hidden3": {"hidden": (120, 84, 84)},  # one more
    "lenet5-bn": {"batch_norm": True},
    "lenet5-dropout": {"dropout": 0.3},
}


class LeNet(nn.Module):
    """A LeNet-5 variant built from a :class:`LeNetConfig`."""

    def __init__(self, config: LeNetConfig = LeNetConfig()):
        super().__init__()
        if config.activation not in ACTIVATIONS:
            raise UserError(f"unknown activation {config.activation!r}; choose {', '.join(ACTIVATIONS)}")
        if config.pool not in POOLS:
            raise UserError(f"unknown pooling {config.pool!r}; choose {', '.join(POOLS)}")
        if len(config.channels) not in (1, 2):
            raise UserError(f"channels must name 1 or 2 conv layers, got {list(config.channels)}")
        if config.kernel < 1 or config.kernel % 2 == 0:
            raise UserError(f"kernel size must be odd and positive, got {config.kernel}")
        if config.conv3 and len(config.channels) != 2:
            raise UserError("conv3 comes after conv2: it needs two channels entries")
        if config.zero_background and (config.batch_norm or config.activation == "sigmoid"):
            raise UserError("zero_background holds only without batch norm and with relu or tanh")
        self.config = config
        act, pool = ACTIVATIONS[config.activation], POOLS[config.pool]
        bias, k = not config.zero_background, config.kernel
        layers: list[tuple[str, nn.Module]] = []
        side, in_channels = config.in_size + 2 * config.pad, 1
        for i, channels in enumerate(config.channels, start=1):
            layers.append((f"conv{i}", nn.Conv2d(in_channels, channels, k, padding=config.pad if i == 1 else 0, bias=bias)))
            if config.batch_norm:
                layers.append((f"bn{i}", nn.BatchNorm2d(channels)))
            layers.append((f"act{i}", act()))
            side -= k - 1
            if i == 2 and config.conv3:
                layers.append(("conv3", nn.Conv2d(channels, config.conv3, 3, padding=1, bias=bias)))
                if config.batch_norm:
                    layers.append(("bn3", nn.BatchNorm2d(config.conv3)))
                layers.append(("act3", act()))
                channels = config.conv3
            layers.append((f"pool{i}", pool(2)))
            side //= 2
            in_channels = channels
            if side < 1:
                raise UserError(f"input size {config.in_size} is too small for these conv layers (kernel {k}); "
                                "use a larger input or a smaller kernel")
        n_act, out_channels = len(config.channels) + (1 if config.conv3 else 0), in_channels
        self.features = nn.Sequential(OrderedDict(layers))
        head: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
        width = out_channels * side * side
        for i, hidden in enumerate(config.hidden, start=1):
            if config.dropout:
                head.append((f"drop{i}", nn.Dropout(config.dropout)))
            head.append((f"fc{i}", nn.Linear(width, hidden)))
            n_act += 1
            head.append((f"act{n_act}", act()))
            width = hidden
        if config.dropout:
            head.append((f"drop{len(config.hidden) + 1}", nn.Dropout(config.dropout)))
        head.append((f"fc{len(config.hidden) + 1}", nn.Linear(width, config.num_classes)))
        self.classifier = nn.Sequential(OrderedDict(head))
        self.register_buffer("mean", torch.tensor(0.0 if config.zero_background else float(config.mean)))
        self.register_buffer("std", torch.tensor(float(config.std)))
        #: Divides the logits: 1 while training, then fitted on validation (:mod:`pipeline.training.calibration`).
        self.register_buffer("temperature", torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a (B, 1, S, S) float batch in [0, 1] (divided by the calibrated temperature)."""
        return self.classifier(self.features((x - self.mean) / self.std)) / self.temperature

    def layer(self, name: str) -> nn.Module:
        """A named layer (``conv1``, ``act1``, ``conv2``, ``act2``, ``fc1`` ...)."""
        for part in (self.features, self.classifier):
            if hasattr(part, name):
                return getattr(part, name)
        names = [n for part in (self.features, self.classifier) for n, _ in part.named_children()]
        raise UserError(f"no layer {name!r} in this model; it has {', '.join(names)}")

    def conv_layers(self) -> list[str]:
        """Names of the conv layers, first to last (the Grad-CAM candidates)."""
        return [n for n, m in self.features.named_children() if isinstance(m, nn.Conv2d)]


def build_model(name: str, num_classes: int, **overrides) -> LeNet:
    """Build a registered variant by name, e.g. ``build_model("lenet5-max", 6)``."""
    if name not in VARIANTS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(VARIANTS)}")
    config = replace(LeNetConfig(num_classes=num_classes), **{**VARIANTS[name], **overrides})
    return LeNet(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: LeNet) -> int:
    """Multiply-accumulates for one input image (conv and linear layers)."""
    macs = 0
    hooks = []

    def conv_hook(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1] * (module.in_channels // module.groups)
        macs += out[0].numel() * k

    def linear_hook(module: nn.Linear, _inp, _out) -> None:
        nonlocal macs
        macs += module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, model.config.in_size, model.config.in_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return macs


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 crops -> floats in [0, 1], what the models take."""
    return images.float().div_(255.0)


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits for uint8 or float images, in eval mode (the model's mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = []
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            x = to_float(x) if x.dtype == torch.uint8 else x
            out.append(model(x.to(device)).cpu())
        if not out:  # an empty batch still has the model's number of outputs
            out.append(model(to_float(images[:0]) if images.dtype == torch.uint8 else images[:0]).cpu())
        return torch.cat(out)
    finally:
        model.train(was_training)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of correct top-1 predictions."""
    return float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")
