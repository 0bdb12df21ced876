"""The model zoo by name: the one list that ``tgcv train``, ``summary`` and ``maps`` read.

    from tinygrad_cv.models import registry
    spec = registry.get("vgg16")
    spec.input_shape             # (3, 224, 224): one example, without the batch
    model = spec.build()         # a fresh VGG16
    registry.names(mnist=True)   # ['lenet5']: the models that train on the shipped digits

Each entry names a zero-argument constructor, the input shape the model was designed
for (C, H, W), one line describing it, and whether it trains on MNIST (1x28x28 digits,
10 classes: ``tgcv train`` and ``tgcv maps`` accept only those).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..nn.module import Module
from .alexnet import alexnet
from .densenet import densenet121
from .inception import inception_module
from .lenet import lenet5
from .mobilenet import mobilenet_v1
from .resnet import resnet18, resnet34, resnet50
from .vgg import vgg16, vgg19
from .wide_resnet import wide_resnet

__all__ = ["ModelSpec", "MODELS", "get", "names"]


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry: ``build()`` makes a fresh model for inputs of ``input_shape`` (C, H, W)."""

    name: str
    build: Callable[[], Module]
    input_shape: tuple[int, int, int]
    description: str
    mnist: bool = False            # trains on the shipped 1x28x28 digits, 10 classes


def _spec(name: str, build: Callable[[], Module], shape: tuple[int, int, int], description: str,
          mnist: bool = False) -> tuple[str, ModelSpec]:
    return name, ModelSpec(name, build, shape, description, mnist)


MODELS: dict[str, ModelSpec] = dict([
    _spec("lenet5", lenet5, (1, 28, 28), "LeNet-5: two conv/pool stages and a 400-120-84-10 MLP", mnist=True),
    _spec("alexnet", alexnet, (3, 227, 227), "AlexNet (2012): five convs, three pools, three FC layers"),
    _spec("vgg16", vgg16, (3, 224, 224), "VGG16: thirteen 3x3 convs in five stages, three FC layers"),
    _spec("vgg19", vgg19, (3, 224, 224), "VGG19: sixteen 3x3 convs in five stages, three FC layers"),
    _spec("resnet18", resnet18, (3, 224, 224), "ResNet-18: residual blocks of two 3x3 convs"),
    _spec("resnet34", resnet34, (3, 224, 224), "ResNet-34: residual blocks of two 3x3 convs, deeper stages"),
    _spec("resnet50", resnet50, (3, 224, 224), "ResNet-50: bottleneck blocks (1x1, 3x3, 1x1)"),
    _spec("densenet121", densenet121, (3, 224, 224),
          "DenseNet-121: dense blocks, each layer sees all earlier maps (cat), k=32"),
    _spec("wrn28_10", lambda: wide_resnet(28, 10), (3, 32, 32),
          "Wide ResNet 28-10 for CIFAR: pre-activation blocks, 10x wider (160/320/640)"),
    _spec("wrn16_8", lambda: wide_resnet(16, 8), (3, 32, 32),
          "Wide ResNet 16-8 for CIFAR: pre-activation blocks, 8x wider (128/256/512)"),
    _spec("mobilenet_v1", mobilenet_v1, (3, 224, 224), "MobileNet v1: depthwise-separable convs"),
    # the course's GoogLeNet example: 28x28x256 in, 128 1x1, 192 3x3, 96 5x5 filters
    _spec("inception_naive", lambda: inception_module(256, 128, 192, 96), (256, 28, 28),
          "the course's naive inception module on 28x28x256"),
    _spec("inception", lambda: inception_module(256, 128, 192, 96, 64, 64, 64), (256, 28, 28),
          "the same inception module with 1x1 bottlenecks"),
])


def names(*, mnist: bool | None = None) -> list[str]:
    """The registered names, in order; ``mnist=True``: only those that train on the digits."""
    return [n for n, s in MODELS.items() if mnist is None or s.mnist == mnist]


def get(name: str, *, mnist: bool | None = None) -> ModelSpec:
    """The entry called ``name``; ValueError listing the names to choose from otherwise."""
    choices = names(mnist=mnist)
    if name in choices:
        return MODELS[name]
    if name in MODELS:                     # a zoo model, but not one that trains on the digits
        raise ValueError(f"model {name!r} does not take MNIST digits; choose one of {', '.join(choices)}")
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(choices)}")
