"""Layer, instance and group norm in readable NumPy: each row of the (N, G, P, L) view
normalised by its own mean and biased variance (backends/rownorm.py has the view and the
formulas). The statistics and x_hat are computed in float64, then y is cast to x's dtype.
"""
from __future__ import annotations

import numpy as np


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, G, P, L) -> (N, G, P*L): one row per (example, group)."""
    N, G, P, L = a.shape
    return a.reshape(N, G, P * L)


def _x_hat(x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray) -> np.ndarray:
    return (x - mean[:, :, None, None]) * inv_std[:, :, None, None]


def normalize_rows_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                           eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mean, inv_std): mean and var over each row (two passes, float64), then
    y = gamma[g, p] * (x - mean) * inv_std + beta[g, p]."""
    rows = _rows(x).astype(np.float64)
    mean = rows.mean(axis=2)                                         # (N, G)
    var = ((rows - mean[:, :, None]) ** 2).mean(axis=2)              # biased: divide by m
    inv_std = 1.0 / np.sqrt(var + eps)
    y = _x_hat(x.astype(np.float64), mean, inv_std)
    if gamma is not None:
        y = y * gamma[None, :, :, None]
    if beta is not None:
        y = y + beta[None, :, :, None]
    return y.astype(x.dtype), mean, inv_std


def normalize_rows_backward(grad_out: np.ndarray, x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                            gamma: np.ndarray | None, need_params: bool = True):
    """(dx, dgamma, dbeta); dgamma and dbeta are None unless need_params. Means over each row:
    dx = inv_std * (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat)), d_xhat = gamma * dy."""
    dy = grad_out.astype(np.float64)
    x_hat = _x_hat(x.astype(np.float64), mean, inv_std)
    d_xhat = dy if gamma is None else dy * gamma[None, :, :, None]
    m1 = _rows(d_xhat).mean(axis=2)[:, :, None, None]                # mean(d_xhat)
    m2 = _rows(d_xhat * x_hat).mean(axis=2)[:, :, None, None]        # mean(d_xhat * x_hat)
    dx = (inv_std[:, :, None, None] * (d_xhat - m1 - x_hat * m2)).astype(x.dtype)
    if not need_params:
        return dx, None, None
    dgamma = (dy * x_hat).sum(axis=(0, 3)).astype(x.dtype)          # dy/dgamma = x_hat
    dbeta = dy.sum(axis=(0, 3)).astype(x.dtype)                      # dy/dbeta = 1
    return dx, dgamma, dbeta
