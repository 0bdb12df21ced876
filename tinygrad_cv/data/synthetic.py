"""Small 2-D classification sets for the lessons (decision boundaries you can plot).

Each returns (X float32 (N, 2), y int64 (N,)), ordered by class, and is fully
determined by its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["spiral", "moons", "circles", "xor", "blobs"]


def _out(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.astype(np.float32), y.astype(np.int64)


def _check(name: str, n: int, noise: float, min_n: int = 1) -> None:
    if n < min_n:
        raise ValueError(f"{name}: need at least {min_n} points, got n={n}")
    if noise < 0:
        raise ValueError(f"{name}: noise must be >= 0, got {noise}")


def spiral(n_per_class: int = 100, classes: int = 3, noise: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CS231n's spiral: `classes` arms, radius 0..1; `noise` is the std of the angle jitter.

    Not linearly separable: the classic case where a linear classifier fails and a
    two-layer net succeeds.
    """
    _check("spiral", n_per_class, noise)
    if classes < 1:
        raise ValueError(f"spiral: classes must be >= 1, got {classes}")
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), classes)
    j = np.repeat(np.arange(classes), n_per_class)
    # each arm covers 4 radians of angle, as in the CS231n notes
    t = np.linspace(0.0, 4.0, n_per_class)[None, :] + 4.0 * np.arange(classes)[:, None]
    t = t.ravel() + rng.standard_normal(n_per_class * classes) * noise
    return _out(np.c_[r * np.sin(t), r * np.cos(t)], j)


def moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (as scikit-learn's make_moons); Gaussian noise of std `noise`."""
    _check("moons", n, noise, 2)
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    a_out = np.linspace(0.0, np.pi, n_out)
    a_in = np.linspace(0.0, np.pi, n_in)
    x = np.r_[np.c_[np.cos(a_out), np.sin(a_out)], np.c_[1.0 - np.cos(a_in), 0.5 - np.sin(a_in)]]
    x = x + rng.standard_normal(x.shape) * noise
    return _out(x, np.r_[np.zeros(n_out), np.ones(n_in)])


def circles(n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A unit circle (class 0) around a circle of radius `factor` (class 1), plus Gaussian noise."""
    _check("circles", n, noise, 2)
    if not 0.0 < factor < 1.0:
        raise ValueError(f"circles: factor (inner radius / outer radius) must be in (0, 1), got {factor}")
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    a_out = np.linspace(0.0, 2 * np.pi, n_out, endpoint=False)
    a_in = np.linspace(0.0, 2 * np.pi, n_in, endpoint=False)
    x = np.r_[np.c_[np.cos(a_out), np.sin(a_out)], factor * np.c_[np.cos(a_in), np.sin(a_in)]]
    x = x + rng.standard_normal(x.shape) * noise
    return _out(x, np.r_[np.zeros(n_out), np.ones(n_in)])


def xor(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform in [-1, 1]^2, class 1 where x0 and x1 have opposite signs; then Gaussian noise.

    The labels come from the clean points, so `noise` blurs the boundary. Ordered by class.
    """
    _check("xor", n, noise)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
    x = x + rng.standard_normal(x.shape) * noise
    order = np.argsort(y, kind="stable")
    return _out(x[order], y[order])


def blobs(
    n: int = 200,
    centers: int | Sequence[Sequence[float]] = 3,
    std: float = 0.5,
    seed: int = 0,
    box: tuple[float, float] = (-5.0, 5.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs, one class per center; `centers` is a count (drawn uniformly
    in `box`) or a (k, 2) list of coordinates. Points are spread evenly over the classes."""
    _check("blobs", n, std)
    rng = np.random.default_rng(seed)
    if isinstance(centers, (int, np.integer)):
        if centers < 1:
            raise ValueError(f"blobs: centers must be >= 1, got {centers}")
        c = rng.uniform(box[0], box[1], size=(int(centers), 2))
    else:
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] < 1:
            raise ValueError(f"blobs: centers must be (k, 2) coordinates, got shape {c.shape}")
    k = c.shape[0]
    y = np.repeat(np.arange(k), [n // k + (i < n % k) for i in range(k)])
    x = c[y] + rng.standard_normal((n, 2)) * std
    return _out(x, y)
