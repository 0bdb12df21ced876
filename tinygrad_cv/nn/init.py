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
           "uniform_", "normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
           "calculate_fan_out", "calculate_gain", "skip_init", "skipping"]

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


# --- PyTorch's names and formulas (torch.nn.init), beside the course's ----------------------------

def calculate_fan_out(t: Tensor) -> int:
    """Outputs one input feeds: out_features for (out, in), out * kh * kw for conv weights."""
    if t.ndim < 2:
        raise ValueError(f"fan_out needs a weight with at least 2 dimensions, got shape {t.shape}")
    return int(t.shape[0] * np.prod(t.shape[2:], dtype=np.int64))


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain: the factor that keeps activations' scale through ``nonlinearity``."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; known: linear, conv1d, "
                     f"conv2d, sigmoid, tanh, relu, leaky_relu, selu")


def _fan(t: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return calculate_fan_in(t) if mode == "fan_in" else calculate_fan_out(t)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """PyTorch's kaiming_uniform_: bound = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2)) for leaky_relu."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """PyTorch's kaiming_normal_: std = gain / sqrt(fan); with relu this is the course's he_."""
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode)))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """PyTorch's xavier_uniform_ (Glorot): bound = gain * sqrt(6 / (fan_in + fan_out))."""
    bound = gain * math.sqrt(6.0 / (calculate_fan_in(t) + calculate_fan_out(t)))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """PyTorch's xavier_normal_ (Glorot): std = gain * sqrt(2 / (fan_in + fan_out)); the course's xavier_
    uses 1/sqrt(fan_in) instead."""
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (calculate_fan_in(t) + calculate_fan_out(t))))
