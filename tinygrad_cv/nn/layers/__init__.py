"""The layers, one small file per job; re-exported by tinygrad_cv.nn."""
from __future__ import annotations

from .activation import ELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import Flatten, Identity, ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .dropout import Dropout
from .linear import Linear
from .loss import BCELoss, CrossEntropyLoss, MSELoss, NLLLoss
from .maxout import Maxout
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .upsample import Upsample

__all__ = ["Linear", "Conv2d", "ConvTranspose2d", "Upsample", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d",
           "LayerNorm", "GroupNorm", "InstanceNorm2d", "Dropout",
           "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Maxout",
           "Flatten", "Identity", "Sequential", "ModuleList", "ModuleDict", "CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss"]
