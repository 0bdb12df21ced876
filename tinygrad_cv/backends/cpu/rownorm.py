"""Layer, instance and group norm on the CPU: serial nogil numba kernels over the rows of the
(N, G, P, L) view (backends/rownorm.py), the rows shared out over our threads (cpu/threads.py).

Forward, per row: a pass for the mean, one for the squared deviations (float64 sums: the safe
two-pass variance), one that writes y = (x - mean) * (gamma * inv_std) + beta. Backward, per row:
one pass for sum(d_xhat) and sum(d_xhat * x_hat), x_hat recomputed from x, which also leaves
each (n, g, p)'s sums over l for dgamma and dbeta (NumPy adds those up over n); one pass for

    dx = inv_std * (gamma * dy - sum(d_xhat) / m - x_hat * sum(d_xhat * x_hat) / m)

The NumPy lines make about five temporaries of x's size each way; these make none but the output.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..rownorm import affine
from .common import SERIAL, c_array
from .threads import parallel_for


@njit(**SERIAL)
def _forward(lo, hi, x, gamma, beta, eps, y, mean, inv_std):  # pragma: no cover - compiled
    """Rows lo .. hi-1 (row = n * G + g): mean, biased variance (two passes), then y."""
    N, G, P, L = x.shape
    m = P * L
    for row in range(lo, hi):
        n, g = row // G, row % G
        s = 0.0
        for p in range(P):
            for k in range(L):
                s += x[n, g, p, k]
        mu = s / m
        q = 0.0
        for p in range(P):
            for k in range(L):
                d = x[n, g, p, k] - mu
                q += d * d
        r = 1.0 / np.sqrt(q / m + eps)
        mean[n, g], inv_std[n, g] = mu, r
        for p in range(P):
            a, b = gamma[g, p] * r, beta[g, p]
            for k in range(L):
                y[n, g, p, k] = (x[n, g, p, k] - mu) * a + b


@njit(**SERIAL)
def _backward(lo, hi, dy, x, mean, inv_std, gamma, dx, part_g, part_b):  # pragma: no cover - compiled
    """Rows lo .. hi-1: the row's two sums (and each slot's sums over l into part_g, part_b), then dx."""
    N, G, P, L = x.shape
    m = P * L
    for row in range(lo, hi):
        n, g = row // G, row % G
        mu, r = mean[n, g], inv_std[n, g]
        s1 = 0.0
        s2 = 0.0
        for p in range(P):
            a = 0.0
            b = 0.0
            for k in range(L):
                u = dy[n, g, p, k]
                a += u
                b += u * (x[n, g, p, k] - mu)
            part_b[n, g, p], part_g[n, g, p] = a, b * r          # sum dy, sum dy * x_hat
            s1 += gamma[g, p] * a
            s2 += gamma[g, p] * b
        c1, c2 = s1 / m, s2 * r / m                              # mean(d_xhat), mean(d_xhat * x_hat)
        for p in range(P):
            w = gamma[g, p]
            for k in range(L):
                xh = (x[n, g, p, k] - mu) * r
                dx[n, g, p, k] = r * (w * dy[n, g, p, k] - c1 - xh * c2)


def normalize_rows_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                           eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mean, inv_std) of each row of the (N, G, P, L) view; mean and inv_std float64 (N, G)."""
    x = c_array(x)
    N, G, P, _ = x.shape
    g, b = affine(gamma, beta, (G, P), x.dtype)
    y = np.empty_like(x)
    mean, inv_std = np.empty((N, G)), np.empty((N, G))
    parallel_for(_forward, N * G, x, g, b, float(eps), y, mean, inv_std, work=3 * x.size)
    return y, mean, inv_std


def normalize_rows_backward(grad_out: np.ndarray, x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                            gamma: np.ndarray | None, need_params: bool = True):
    """(dx, dgamma, dbeta), the last two None unless need_params."""
    x = c_array(x)
    dy = c_array(grad_out, x.dtype)
    N, G, P, _ = x.shape
    g, _ = affine(gamma, None, (G, P), x.dtype)
    dx = np.empty_like(x)
    part_g, part_b = np.empty((N, G, P)), np.empty((N, G, P))
    parallel_for(_backward, N * G, dy, x, c_array(mean, np.float64), c_array(inv_std, np.float64), g, dx,
                 part_g, part_b, work=4 * x.size)
    if not need_params:
        return dx, None, None
    return dx, part_g.sum(axis=0).astype(x.dtype), part_b.sum(axis=0).astype(x.dtype)
