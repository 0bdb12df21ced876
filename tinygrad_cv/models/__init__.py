"""Model zoo: classic vision architectures built from tinygrad_cv.nn, PyTorch-style names."""
from __future__ import annotations

from .lenet import LeNet5, lenet5

__all__ = ["LeNet5", "lenet5"]

# the course's case studies and the summary (models engineer)
from .alexnet import AlexNet, alexnet
from .densenet import DenseBlock, DenseLayer, DenseNet, Transition, densenet121
from .inception import InceptionModule, inception_module
from .mobilenet import MobileNetV1, mobilenet_v1
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50
from .summary import Summary, skip_init, summary
from .vgg import VGG, vgg16, vgg19
from .wide_resnet import WideBasic, WideResNet, wide_resnet
from . import registry  # noqa: E402  (after the models it lists)

__all__ += ["AlexNet", "alexnet", "VGG", "vgg16", "vgg19", "ResNet", "BasicBlock", "Bottleneck", "resnet18",
            "resnet34", "resnet50", "MobileNetV1", "mobilenet_v1", "InceptionModule", "inception_module",
            "DenseNet", "DenseBlock", "DenseLayer", "Transition", "densenet121", "WideResNet", "WideBasic",
            "wide_resnet", "Summary", "summary", "skip_init", "registry"]
