"""Layer, instance and group norm as one computation: the (N, G, P, L) view and its formulas.

Each of the three norms normalises groups of values that never cross examples. Written as a
4-D view of x, one row per (example n, group g), each row holding P parameter slots of L
values each (m = P*L values per row):

    layer norm     (N, 1, m, 1)        N = the leading axes, m = prod(normalized_shape)
    group norm     (N, G, C/G, H*W)    G groups of C/G channels
    instance norm  (N, C, 1, H*W)      one group per channel

gamma and beta are viewed as (G, P): one per element of normalized_shape, or one per channel.
Per row, with biased variance (divide by m, as PyTorch):

    mean = sum(x) / m,    var = sum((x - mean)^2) / m,    inv_std = 1 / sqrt(var + eps)
    x_hat = (x - mean) * inv_std,    y = gamma[g, p] * x_hat + beta[g, p]

The variance is taken in two passes (the mean first, then the squared deviations from it), in
float64: the one-pass E[x^2] - E[x]^2 subtracts two nearly equal numbers when the values sit
far from zero (at 1e8 with unit spread, float64 keeps no correct digit of the variance).
mean and inv_std come back as float64 (N, G) arrays, so the backward recomputes the same x_hat.

Backward, with d_xhat = gamma[g, p] * dy and the means taken over the row:

    dx = inv_std * (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat))
    dgamma[g, p] = sum over n, l of dy * x_hat,    dbeta[g, p] = sum over n, l of dy
"""
from __future__ import annotations

import numpy as np


def affine(gamma: np.ndarray | None, beta: np.ndarray | None, shape: tuple[int, int],
           dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(gamma, beta) as C-contiguous (G, P) arrays of ``dtype``; a missing one is ones or zeros."""
    g = np.ones(shape, dtype) if gamma is None else np.ascontiguousarray(np.reshape(gamma, shape), dtype)
    b = np.zeros(shape, dtype) if beta is None else np.ascontiguousarray(np.reshape(beta, shape), dtype)
    return g, b
