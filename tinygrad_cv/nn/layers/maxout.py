"""Maxout: each output is the max of k linear pieces of the input."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ...tensors import Tensor


class Maxout(Module):
    """max_k (x W_k^T + b_k) with weight (out_features * pieces, in_features), rows grouped by output.

    Generalizes ReLU (max(0, w^T x + b) is a two-piece maxout with one piece fixed at 0) and never
    saturates; costs ``pieces`` times the parameters of a Linear.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2, bias: bool = True):
        super().__init__()
        if pieces < 1:
            raise ValueError(f"Maxout needs pieces >= 1, got {pieces}")
        self.in_features, self.out_features, self.pieces = in_features, out_features, pieces
        self.weight = Parameter(np.zeros((out_features * pieces, in_features), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.zeros(out_features * pieces, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if bias:
            bound = 1 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        return F.maxout(x, self.weight, self.bias, self.pieces)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"
