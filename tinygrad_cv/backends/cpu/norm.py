"""Batch normalization on the CPU: one pass per channel for the statistics and the output,
one for the gradients (serial nogil kernels, the channels shared out over our threads).

Not part of the six-kernel interface (backends/interface.py): nn/functional/normalization.py
runs these when the numba backend is selected and its NumPy lines otherwise; the math is the
same, written for people there. The input is viewed as (N, C, L), L = H*W (1 for (N, C)):

    mean[c] = sum x / m,  var[c] = sum (x - mean)^2 / m,  m = N*L     (biased, as PyTorch)
    y = gamma * (x - mean) * inv_std + beta,  inv_std = 1 / sqrt(var + eps)
    dx = gamma * inv_std * (up - sum(up)/m - x_hat * sum(up * x_hat)/m)   (training)

The NumPy version makes six temporaries of x's size per forward and backward; these make none
but the output (ResNet-18's 20 batch norms at batch 16: about 12 ms a step less).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .common import SERIAL, c_array, wide_vectors
from .threads import parallel_for


@njit(**SERIAL)
def _train_forward(lo, hi, x, gamma, beta, eps, y, mean, var, inv_std):  # pragma: no cover - compiled
    """Channels lo .. hi-1: the batch's mean and biased variance (two passes, float64 sums), then y."""
    wide_vectors()
    N, C, L = x.shape
    m = N * L
    for c in range(lo, hi):
        s = 0.0
        for n in range(N):
            for k in range(L):
                s += x[n, c, k]
        mu = s / m
        q = 0.0
        for n in range(N):
            for k in range(L):
                d = x[n, c, k] - mu
                q += d * d
        v = q / m
        r = 1.0 / np.sqrt(v + eps)
        mean[c], var[c], inv_std[c] = mu, v, r
        scale = gamma[c] * r
        shift = beta[c] - mu * scale
        for n in range(N):
            for k in range(L):
                y[n, c, k] = x[n, c, k] * scale + shift


@njit(**SERIAL)
def _affine(lo, hi, x, scale, shift, y):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of (N, C) planes: y[n, c] = x[n, c] * scale[c] + shift[c]."""
    wide_vectors()
    N, C, L = x.shape
    for t in range(lo, hi):
        n, c = t // C, t % C
        a, b = scale[c], shift[c]
        for k in range(L):
            y[n, c, k] = x[n, c, k] * a + b


@njit(**SERIAL)
def _train_backward(lo, hi, up, x, mean, inv_std, gamma, dx, dgamma, dbeta):  # pragma: no cover - compiled
    """Channels lo .. hi-1: sum(up), sum(up * x_hat), then dx, x_hat recomputed from x."""
    wide_vectors()
    N, C, L = x.shape
    m = N * L
    for c in range(lo, hi):
        mu, r = mean[c], inv_std[c]
        s1 = 0.0
        s2 = 0.0
        for n in range(N):
            for k in range(L):
                u = up[n, c, k]
                s1 += u
                s2 += u * (x[n, c, k] - mu)
        s2 *= r                                    # sum(up * x_hat)
        dgamma[c], dbeta[c] = s2, s1
        g = gamma[c] * r
        a, b = s1 / m, s2 / m
        for n in range(N):
            for k in range(L):
                xh = (x[n, c, k] - mu) * r
                dx[n, c, k] = g * (up[n, c, k] - a - xh * b)


@njit(**SERIAL)
def _eval_backward(lo, hi, up, x, mean, inv_std, dgamma, dbeta):  # pragma: no cover - compiled
    """Channels lo .. hi-1 of the parameter gradients with fixed statistics: sum(up * x_hat), sum(up)."""
    wide_vectors()
    N, C, L = x.shape
    for c in range(lo, hi):
        mu, r = mean[c], inv_std[c]
        s1 = 0.0
        s2 = 0.0
        for n in range(N):
            for k in range(L):
                u = up[n, c, k]
                s1 += u
                s2 += u * (x[n, c, k] - mu)
        dgamma[c], dbeta[c] = s2 * r, s1


def _nc_l(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], a.shape[1], -1)


def _vec(v: np.ndarray | None, c: int, fill: float, dtype: np.dtype) -> np.ndarray:
    return np.full(c, fill, dtype) if v is None else c_array(np.asarray(v).reshape(-1), dtype)


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, eps: float,
                       mean: np.ndarray | None = None, var: np.ndarray | None = None):
    """(y, mean, var, inv_std). With mean and var None: the batch's statistics (var biased);
    else normalizes with the given ones (eval mode). x (N, C, ...), float."""
    x = c_array(x)
    C, dt = x.shape[1], x.dtype
    g, b = _vec(gamma, C, 1.0, dt), _vec(beta, C, 0.0, dt)
    y = np.empty_like(x)
    if mean is None:
        mean, var, inv_std = np.empty(C, dt), np.empty(C, dt), np.empty(C, dt)
        parallel_for(_train_forward, C, _nc_l(x), g, b, float(eps), _nc_l(y), mean, var, inv_std, work=3 * x.size)
        return y, mean, var, inv_std
    mean, var = c_array(np.asarray(mean), dt), c_array(np.asarray(var), dt)
    inv_std = (1 / np.sqrt(var + dt.type(eps))).astype(dt, copy=False)
    scale = g * inv_std
    parallel_for(_affine, x.shape[0] * C, _nc_l(x), scale, b - mean * scale, _nc_l(y), work=2 * x.size)
    return y, mean, var, inv_std


def batch_norm_backward(up: np.ndarray, x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                        gamma: np.ndarray | None, training: bool):
    """(dx, dgamma, dbeta) for batch_norm_forward's output; training: the statistics were the batch's."""
    x = c_array(x)
    up = c_array(up, x.dtype)
    C, dt = x.shape[1], x.dtype
    g = _vec(gamma, C, 1.0, dt)
    dgamma, dbeta = np.empty(C, dt), np.empty(C, dt)
    dx = np.empty_like(x)
    if training:
        parallel_for(_train_backward, C, _nc_l(up), _nc_l(x), mean, inv_std, g, _nc_l(dx), dgamma, dbeta,
                     work=5 * x.size)
    else:
        parallel_for(_eval_backward, C, _nc_l(up), _nc_l(x), mean, inv_std, dgamma, dbeta, work=2 * x.size)
        scale = g * inv_std
        parallel_for(_affine, x.shape[0] * C, _nc_l(up), scale, np.zeros(C, dt), _nc_l(dx), work=2 * x.size)
    return dx, dgamma, dbeta
