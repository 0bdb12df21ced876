"""The deep toy networks the course argues with: an MLP and a CNN of any depth, for gradient flow.

    deep_mlp(depth=6, act="tanh", init="small")            # 784 -> 100 x 6 -> 10
    deep_cnn(depth=20, residual=True, bn=False, init="he") # 1x28x28 digits -> 10 classes

Both take the shipped digits (the MLP flattened, the CNN as 1x28x28) and end in 10 class
scores. Only the knob being compared differs between two builds with the same seed, so
``tgcv flow cnn --compare plain,residual`` sets the same weights in both nets.

The CNN: a 3x3 stride-2 stem conv (1 -> width channels, 28x28 -> 14x14) and its
activation, then ``depth // 2`` blocks of two 3x3 convs (width -> width, padding 1),
then global average pooling and Linear(width, 10). A block computes
``act(bn2(conv2(act(bn1(conv1(x))))))`` when plain and ``act(bn2(conv2(...)) + x)``
with the identity shortcut (ResNet's BasicBlock without a downsample); ``bn=False``
leaves out the BatchNorm2d layers (the convs then have biases).
"""
from __future__ import annotations

from .. import nn
from ..tensors import Tensor

__all__ = ["ACTIVATIONS", "INITS", "deep_mlp", "deep_cnn", "DeepBlock"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
INITS = {  # name -> fill of a weight tensor; "small": std 0.01, "xavier": 1/sqrt(fan_in), "he": sqrt(2/fan_in)
    "small": nn.init.small_random_,
    "xavier": nn.init.xavier_,
    "he": nn.init.he_,
}


def _check(act: str, init: str, depth: int) -> None:
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")


def _init(model: nn.Module, init: str) -> None:
    fill = INITS[init]
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fill(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def deep_mlp(depth: int = 6, width: int = 100, act: str = "tanh", init: str = "small",
             bn: bool = False) -> nn.Sequential:
    """784 -> width x depth -> 10: Linear, [BatchNorm1d,] act per hidden layer; biases zero."""
    _check(act, init, depth)
    sizes = [784] + [width] * depth + [10]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < depth:
            layers += ([nn.BatchNorm1d(b)] if bn else []) + [ACTIVATIONS[act]()]
    model = nn.Sequential(*layers)
    _init(model, init)
    return model


class DeepBlock(nn.Module):
    """Two 3x3 convs of ``width`` channels, [BatchNorm2d after each,] the activation; with
    ``residual`` the block's input is added before the last activation (an identity shortcut)."""

    def __init__(self, width: int, residual: bool, bn: bool, act: str):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(width) if bn else nn.Identity()
        self.act1 = ACTIVATIONS[act]()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not bn)
        self.bn2 = nn.BatchNorm2d(width) if bn else nn.Identity()
        self.act2 = ACTIVATIONS[act]()
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + x if self.residual else out)

    def extra_repr(self) -> str:
        return "residual" if self.residual else "plain"


def deep_cnn(depth: int = 20, width: int = 16, residual: bool = False, bn: bool = False, act: str = "relu",
             init: str = "he") -> nn.Sequential:
    """A stem conv, ``depth // 2`` two-conv blocks, global average pooling and an FC layer (module doc)."""
    _check(act, init, depth)
    if depth < 2 or depth % 2:
        raise ValueError(f"the CNN's depth counts the convs of its two-conv blocks: give an even number >= 2, "
                         f"got {depth}")
    model = nn.Sequential(
        nn.Conv2d(1, width, 3, stride=2, padding=1), ACTIVATIONS[act](),
        *[DeepBlock(width, residual, bn, act) for _ in range(depth // 2)],
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(width, 10))
    _init(model, init)
    return model
