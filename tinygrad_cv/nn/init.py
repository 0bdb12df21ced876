"""Weight initialization, in place on a tensor's data; every function returns the tensor.

The course's forms: small_random_ (std 0.01), xavier_ (std 1/sqrt(fan_in)), he_ (std
sqrt(2/fan_in)). PyTorch's default layer init uses kaiming_uniform_ with a = sqrt(5),
which is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
from __future__ import annotations

import math

import numpy as np

from ..random import rng
from ..tensor import Tensor

__all__ = ["calculate_fan_in", "small_random_", "xavier_", "he_", "zeros_", "ones_", "constant_",
           "uniform_", "normal_", "kaiming_uniform_"]


def calculate_fan_in(t: Tensor) -> int:
    """Inputs feeding one output: in_features for (out, in), in/groups * kh * kw for conv weights."""
    if t.ndim < 2:
        raise ValueError(f"fan_in needs a weight with at least 2 dimensions, got shape {t.shape}")
    return int(t.shape[1] * np.prod(t.shape[2:], dtype=np.int64))


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data[...] = values
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(t, rng().normal(mean, std, t.shape))


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(t, rng().uniform(a, b, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    t.data[...] = value
    return t


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def small_random_(t: Tensor, std: float = 0.01) -> Tensor:
    """Gaussian with a small std: fine for shallow nets, activations vanish in deep ones."""
    return normal_(t, 0.0, std)


def xavier_(t: Tensor) -> Tensor:
    """"Xavier" as the course writes it: std = 1/sqrt(fan_in), keeps tanh activations' scale."""
    return normal_(t, 0.0, 1.0 / math.sqrt(calculate_fan_in(t)))


def he_(t: Tensor) -> Tensor:
    """He / Kaiming: std = sqrt(2/fan_in), the factor 2 makes up for ReLU zeroing half the inputs."""
    return normal_(t, 0.0, math.sqrt(2.0 / calculate_fan_in(t)))


def kaiming_uniform_(t: Tensor, a: float = 0.0) -> Tensor:
    """PyTorch's kaiming_uniform_ (leaky_relu gain): bound = sqrt(2/(1+a^2)) * sqrt(3/fan_in)."""
    fan_in = calculate_fan_in(t)
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound)
