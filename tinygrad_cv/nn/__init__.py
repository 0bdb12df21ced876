"""tinygrad_cv.nn: PyTorch's torch.nn names (Module, layers, init, functional).

    from tinygrad_cv import nn
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    model.state_dict().keys()   # '0.weight', '0.bias', '2.weight', '2.bias'
"""
from __future__ import annotations

from . import functional, init
from .layers import (ELU, AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BCELoss, Conv2d, ConvTranspose2d, CrossEntropyLoss, Dropout,
                     Flatten, GroupNorm, Identity, InstanceNorm2d, LayerNorm, LeakyReLU, ModuleDict, ModuleList, Linear,
                     LogSoftmax, MaxPool2d, Maxout, MSELoss, NLLLoss,
                     ReLU, Sequential, Sigmoid, Softmax, Tanh, Upsample)
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "functional", "init",
           "Linear", "Conv2d", "ConvTranspose2d", "Upsample", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d",
           "LayerNorm", "GroupNorm", "InstanceNorm2d", "Dropout",
           "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Maxout",
           "Flatten", "Identity", "Sequential", "ModuleList", "ModuleDict", "CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss"]
