"""The written backend interface: one definition of every kernel's signature.

Each backend module (reference.py, the readable NumPy ground truth; cpu/, numba on the
CPU; cuda.py, numba.cuda) defines these functions with exactly these parameters. They are
plain functions, NumPy arrays in and NumPy arrays out; none knows about Tensors or graphs.
Shapes follow PyTorch (NCHW): x (N, C, H, W), weight (O, C/groups, KH, KW), and each
spatial output size is the course's

    (W - F + 2P) / S + 1        (floored, as PyTorch does)

``stride``, ``padding`` and ``kernel_size`` arrive as (height, width) pairs, already
checked by tinygrad_cv.nn.functional (shapes.py holds the shared shape helpers).
tests/test_backend_interface.py checks every backend against this Protocol.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .shapes import IntPair

Grads = tuple["np.ndarray | None", "np.ndarray | None", "np.ndarray | None"]


@runtime_checkable
class Kernels(Protocol):
    """What every backend module provides (a module satisfies it structurally)."""

    def conv2d_forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair,
                       padding: IntPair, groups: int) -> np.ndarray:
        """y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] x_padded[n, c, oh*S + i, ow*S + j]
        (c over o's group), in x's dtype."""

    def conv2d_backward(self, grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntPair,
                        padding: IntPair, groups: int, need_input: bool = True, need_weight: bool = True,
                        need_bias: bool = True) -> Grads:
        """(dx, dW, db) from dy = grad_out; a gradient not needed comes back as None:
        dW[o, c, i, j] = sum_{n, oh, ow} dy[n, o, oh, ow] x_padded[n, c, oh*S+i, ow*S+j],
        dx_padded[n, c, oh*S+i, ow*S+j] += sum_o dy[n, o, oh, ow] W[o, c, i, j],
        db[o] = sum_{n, oh, ow} dy[n, o, oh, ow]."""

    def max_pool2d_forward(self, x: np.ndarray, kernel_size: IntPair, stride: IntPair,
                           padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
        """(y, argmax): the largest value of each window (padding is -inf), and its flat index
        h*W + w in its (n, c) input plane (int64; the first one on ties)."""

    def max_pool2d_backward(self, grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...],
                            kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
        """dx: each output's gradient goes to its window's winner (local gradient 1, others 0)."""

    def avg_pool2d_forward(self, x: np.ndarray, kernel_size: IntPair, stride: IntPair,
                           padding: IntPair) -> np.ndarray:
        """y: the mean of each window, padding counted as zeros (count_include_pad=True)."""

    def avg_pool2d_backward(self, grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair,
                            stride: IntPair, padding: IntPair) -> np.ndarray:
        """dx: each output's gradient spread evenly, 1/(kh*kw), over its window."""

    def conv_transpose2d_forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair,
                                 padding: IntPair, output_padding: IntPair, groups: int) -> np.ndarray:
        """Transposed convolution, weight (C_in, C_out/groups, kH, kW): each input value times its
        filter is added into the output, y_full[n, c, h*S + i, w*S + j] += x[n, o, h, w] W[o, c, i, j],
        then P is cut from each border; size (H - 1)*S - 2P + kH - 1 + output_padding + 1 per axis."""

    def conv_transpose2d_backward(self, grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntPair,
                                  padding: IntPair, groups: int, need_input: bool = True, need_weight: bool = True,
                                  need_bias: bool = True) -> Grads:
        """(dx, dW, db) of conv_transpose2d_forward: dx = conv2d(dy, W), dW = conv2d's weight gradient
        with x as the upstream gradient and dy as the input, db = sum of dy over n, h, w."""

    def interpolate2d_forward(self, x: np.ndarray, size: IntPair, mode: str, align_corners: bool,
                              scale_factor: tuple[float, float] | None) -> np.ndarray:
        """y: x resampled to size (OH, OW) by 'nearest' or 'bilinear' (backends/resample.py: output o
        reads inputs i0[o], i1[o] with weights l0[o], l1[o] along each axis)."""

    def interpolate2d_backward(self, grad_out: np.ndarray, input_shape: tuple[int, ...], mode: str,
                               align_corners: bool, scale_factor: tuple[float, float] | None) -> np.ndarray:
        """dx: each output's gradient back into the inputs it read, with the same weights."""

    def normalize_rows_forward(self, x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None,
                               eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y, mean, inv_std) for layer, instance and group norm, x viewed as (N, G, P, L)
        (backends/rownorm.py): each row (n, g) of m = P*L values normalised by its own mean and
        biased variance, x_hat = (x - mean) * inv_std, inv_std = 1/sqrt(var + eps), then
        y = gamma[g, p] * x_hat + beta[g, p] (gamma, beta (G, P); None means 1 and 0). y in x's
        dtype; mean and inv_std float64 (N, G)."""

    def normalize_rows_backward(self, grad_out: np.ndarray, x: np.ndarray, mean: np.ndarray,
                                inv_std: np.ndarray, gamma: np.ndarray | None, need_params: bool = True) -> Grads:
        """(dx, dgamma, dbeta), means over each row, d_xhat = gamma[g, p] * dy:
        dx = inv_std * (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat)),
        dgamma[g, p] = sum_{n, l} dy * x_hat, dbeta[g, p] = sum_{n, l} dy (None unless need_params)."""


KERNEL_NAMES = tuple(name for name in Kernels.__dict__ if not name.startswith("_")
                     and callable(Kernels.__dict__[name]))
