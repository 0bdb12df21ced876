"""Layer, instance and group norm as numba.cuda kernels: one block per row of the (N, G, P, L)
view (backends/rownorm.py has the view and the formulas).

The block's threads stride along their row (thread t reads values t, t + B, t + 2B, ...,
neighbouring threads neighbouring values) and each keeps a float64 partial sum (started as
float64(0.0): on the simulator a bare 0.0 plus a float32 value stays float32); the partial sums
meet in shared memory and are halved B -> B/2 -> ... -> 1 (a tree reduction, log2 B steps,
synchronised between steps). The forward reduces twice (the mean, then the squared deviations
from it: the safe two-pass variance), then writes y; the backward reduces sum(d_xhat) and
sum(d_xhat * x_hat) together, then writes dx. dgamma and dbeta: one thread per (g, p) adds
its slot up over n and l, so no atomics are needed and every sum is deterministic.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from .cuda import _dev, _launch
from .rownorm import affine

# Threads per row, a power of two for the halving. The simulator (NUMBA_ENABLE_CUDASIM=1) runs
# every thread as a Python thread and polls them all at each syncthreads: a 128-thread block
# costs it about a quarter of a second, so there the same code runs with 4 (two halving steps).
_BLOCK = 4 if hasattr(cuda, "simulator_init") else 128
# The reduction's shared buffer is dynamic shared memory (size given at launch), not a
# cuda.shared.array of fixed size: the simulator makes a fixed-size one when the first thread
# of a block reaches it, unguarded, so two threads could each make their own and sum garbage
# (seen once in a full test run: a negative variance, "math domain error"); the dynamic one is
# one buffer per block from the start: 8 * _BLOCK bytes, one float64 partial sum per thread.


@cuda.jit(device=True)
def _block_sum(buf, t, v):  # pragma: no cover - device code
    """The sum of every thread's v over the block (buf: shared, _BLOCK float64), given to every thread."""
    buf[t] = v
    cuda.syncthreads()
    half = _BLOCK // 2
    while half > 0:
        if t < half:
            buf[t] += buf[t + half]
        cuda.syncthreads()
        half //= 2
    total = buf[0]
    cuda.syncthreads()              # everyone has read buf[0] before buf is written again
    return total


@cuda.jit
def _rows_fwd(x, gamma, beta, L, eps, y, mean, inv_std):  # pragma: no cover - device code
    """Block = row of x (rows, m), m = P * L: its mean, biased variance, then y."""
    row, t = cuda.blockIdx.x, cuda.threadIdx.x
    m = x.shape[1]
    G = gamma.shape[0]
    g = row % G
    buf = cuda.shared.array(0, float64)          # 8 * _BLOCK bytes, given at launch
    s = float64(0.0)
    for k in range(t, m, _BLOCK):
        s += x[row, k]
    mu = _block_sum(buf, t, s) / m
    q = float64(0.0)
    for k in range(t, m, _BLOCK):
        d = x[row, k] - mu
        q += d * d
    r = 1.0 / math.sqrt(_block_sum(buf, t, q) / m + eps)
    if t == 0:
        mean[row], inv_std[row] = mu, r
    for k in range(t, m, _BLOCK):
        p = k // L
        y[row, k] = (x[row, k] - mu) * r * gamma[g, p] + beta[g, p]


@cuda.jit
def _rows_bwd(dy, x, mean, inv_std, gamma, L, dx):  # pragma: no cover - device code
    """Block = row: sum(d_xhat) and sum(d_xhat * x_hat), then dx."""
    row, t = cuda.blockIdx.x, cuda.threadIdx.x
    m = x.shape[1]
    G = gamma.shape[0]
    g = row % G
    mu, r = mean[row], inv_std[row]
    buf = cuda.shared.array(0, float64)          # 8 * _BLOCK bytes, given at launch
    s1 = float64(0.0)
    s2 = float64(0.0)
    for k in range(t, m, _BLOCK):
        d = gamma[g, k // L] * dy[row, k]
        s1 += d
        s2 += d * (x[row, k] - mu)
    c1 = _block_sum(buf, t, s1) / m                    # mean(d_xhat)
    c2 = _block_sum(buf, t, s2) * r / m                # mean(d_xhat * x_hat)
    for k in range(t, m, _BLOCK):
        xh = (x[row, k] - mu) * r
        dx[row, k] = r * (gamma[g, k // L] * dy[row, k] - c1 - xh * c2)


@cuda.jit
def _param_grads(dy, x, mean, inv_std, G, L, dgamma, dbeta):  # pragma: no cover - device code
    """Thread = slot (g, p) of x (rows, m), row = n * G + g, column p * L + l: sum over n, l of
    dy * x_hat and of dy."""
    j = cuda.grid(1)
    P = dgamma.shape[1]
    if j >= G * P:
        return
    g, p = j // P, j % P
    a = float64(0.0)
    b = float64(0.0)
    for row in range(g, x.shape[0], G):
        mu, r = mean[row], inv_std[row]
        for k in range(p * L, (p + 1) * L):
            u = dy[row, k]
            a += u
            b += u * (x[row, k] - mu) * r
    dbeta[g, p], dgamma[g, p] = a, b


def _flat(a: np.ndarray) -> np.ndarray:
    """(N, G, P, L) -> (N*G, P*L): one row per (example, group)."""
    N, G, P, L = a.shape
    return a.reshape(N * G, P * L)


def normalize_rows_forward(x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                           eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y, mean, inv_std), one block per row; mean and inv_std float64 (N, G)."""
    N, G, P, L = x.shape
    g, b = affine(gamma, beta, (G, P), x.dtype)
    y = cuda.device_array((N * G, P * L), x.dtype)
    mean, inv_std = cuda.device_array(N * G), cuda.device_array(N * G)
    if N * G:
        _rows_fwd[N * G, _BLOCK, 0, 8 * _BLOCK](_dev(_flat(x)), _dev(g), _dev(b), L, float(eps), y, mean, inv_std)
    return (y.copy_to_host().reshape(x.shape), mean.copy_to_host().reshape(N, G),
            inv_std.copy_to_host().reshape(N, G))


def normalize_rows_backward(grad_out: np.ndarray, x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray,
                            gamma: np.ndarray | None, need_params: bool = True):
    """(dx, dgamma, dbeta): one block per row for dx, one thread per (g, p) for the parameters."""
    N, G, P, L = x.shape
    g, _ = affine(gamma, None, (G, P), x.dtype)
    dy, xd = _dev(_flat(grad_out.astype(x.dtype, copy=False))), _dev(_flat(x))
    mu, r = _dev(np.reshape(mean, -1).astype(np.float64)), _dev(np.reshape(inv_std, -1).astype(np.float64))
    dx = cuda.device_array((N * G, P * L), x.dtype)
    if N * G:
        _rows_bwd[N * G, _BLOCK, 0, 8 * _BLOCK](dy, xd, mu, r, _dev(g), L, dx)
    dx = dx.copy_to_host().reshape(x.shape)
    if not need_params:
        return dx, None, None
    dgamma, dbeta = cuda.device_array((G, P), x.dtype), cuda.device_array((G, P), x.dtype)
    _launch(_param_grads, G * P, dy, xd, mu, r, G, L, dgamma, dbeta)
    return dx, dgamma.copy_to_host(), dbeta.copy_to_host()
