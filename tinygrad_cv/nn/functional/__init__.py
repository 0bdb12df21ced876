"""tinygrad_cv.nn.functional: PyTorch's torch.nn.functional names, as recorded tensor ops.

    import tinygrad_cv.nn.functional as F
    loss = F.cross_entropy(F.linear(x, w, b), labels)
"""
from __future__ import annotations

from .activation import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import avg_pool2d, conv2d, max_pool2d
from .conv_transpose import conv_transpose2d
from .dropout import dropout
from .linear import linear, maxout
from .loss import binary_cross_entropy, cross_entropy, mse_loss, nll_loss, svm_loss
from .norm_variants import group_norm, instance_norm, layer_norm
from .normalization import batch_norm
from .upsample import interpolate

__all__ = [
    "linear", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "interpolate",
    "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax", "log_softmax",
    "cross_entropy", "nll_loss", "binary_cross_entropy", "mse_loss", "svm_loss",
    "dropout", "batch_norm", "layer_norm", "group_norm", "instance_norm", "maxout",
]
