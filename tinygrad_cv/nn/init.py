"""Weight initialization, in place on a tensor's data; every function returns the tensor.

The course's forms: small_random_ (std 0.01), xavier_ (std 1/sqrt(fan_in)), he_ (std
sqrt(2/fan_in)). PyTorch's default layer init uses kaiming_uniform_ with a = sqrt(5),
which is uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).

Inside ``with skip_init():`` the random initialisers draw nothing and leave the
tensor as it is (the layers allocate zeros): building VGG16 for a summary then takes a
fraction of a second instead of drawing 138M random numbers.
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from ..random import rng
from ..tensors import Tensor

__all__ = ["calculate_fan_in", "small_random_", "xavier_", "he_", "zeros_", "ones_", "constant_",
           "uniform_", "normal_", "kaiming_uniform_", "skip_init", "skipping"]

_state = threading.local()          # skip_init() depth, per thread


@contextmanager
def skip_init() -> Iterator[None]:
    """Build models without drawing their initial weights (the idea of PyTorch's skip_init).

    ``with skip_init(): m = vgg16()``: inside the block every random initialiser here
    (normal_, uniform_ and the ones built on them) returns its tensor untouched, so the
    weights stay as the layer allocated them, all zeros. For summaries and shape
    questions only -- a net of zeros computes zeros and cannot break its symmetry to learn.
    Nests; other threads keep initialising as usual.
    """
    _state.depth = skipping() + 1
    try:
        yield
    finally:
        _state.depth -= 1


def skipping() -> int:
    """How many ``skip_init()`` blocks this thread is in (0: initialisers draw as usual)."""
    return getattr(_state, "depth", 0)


def calculate_fan_in(t: Tensor) -> int:
    """Inputs feeding one output: in_features for (out, in), in/groups * kh * kw for conv weights."""
    if t.ndim < 2:
        raise ValueError(f"fan_in needs a weight with at least 2 dimensions, got shape {t.shape}")
    return int(t.shape[1] * np.prod(t.shape[2:], dtype=np.int64))


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data[...] = values
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    if skipping():
        return t
    return _fill(t, rng().normal(mean, std, t.shape))


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    if skipping():
        return t
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
