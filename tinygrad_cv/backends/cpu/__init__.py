"""Conv and pool on the CPU: numba ``@njit(nogil=True, cache=True)`` kernels plus BLAS.

Same interface as backends/reference.py (read that first: it is the same math written for
people; backends/interface.py is the written signature). Output size per axis
(W - F + 2P)/S + 1, floored. Each convolution picks its route from its shape:

- ``direct`` (cpu/direct.py): stride-1 layers with few input channels per filter on large
  maps: register-blocked loops over the padded input, no column matrix;
- ``gemm`` (cpu/gemm.py): im2col + one BLAS product per group, col2im for the input
  gradient: many channels on small maps, and every strided layer (from 16 input channels on,
  the column matrix is built from a channels-last copy of x, cpu/im2row.py, and where the
  filters fit in L2 the input gradient is summed one phase of the stride at a time in
  register tiles, with no column matrix: cpu/phases.py);
- ``single`` (cpu/gemm.py): a 1x1 map to a 1x1 output (a padded 3x3 filter on ResNet's last
  stage at CIFAR size): only the centre tap touches the input, one product without im2col;
- ``pointwise`` (cpu/gemm.py): 1x1 filters, stride 1, no padding: a plain matrix product
  per sample, no im2col at all.

The weight and input gradients follow the forward's route. Pooling: cpu/pool.py; layer, instance
and group norm: cpu/rownorm.py. Kernels
compile on first call, once per dtype (never per shape), and are cached on disk; only the
kernels a model actually calls are ever compiled. Beyond the interface: a one-pass batch norm
(cpu/norm.py), which nn/functional/normalization.py uses when this backend is selected, and
a one-pass ReLU (cpu/elementwise.py) for tensor_ops.Relu. The kernels are serial and release the
GIL; cpu/threads.py shares their outer loops over the cores on our own sleeping threads, and
limits NumPy's BLAS to one thread (through threadpoolctl) so the two never fight. No
environment variable is read or changed.
"""
from __future__ import annotations

import numpy as np

from ..shapes import IntPair, output_hw
from ..transposed import from_conv
from . import direct, gemm, threads
from .common import c_array
from .elementwise import relu_backward, relu_forward
from .norm import batch_norm_backward, batch_norm_forward
from .pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from .rownorm import normalize_rows_backward, normalize_rows_forward
from .upsample import interpolate2d_backward, interpolate2d_forward

__all__ = ["conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "avg_pool2d_forward", "avg_pool2d_backward", "conv_route", "batch_norm_forward",
            "batch_norm_backward", "conv2d_forward_keep", "conv2d_backward_kept",
            "conv_transpose2d_forward", "conv_transpose2d_backward", "interpolate2d_forward", "interpolate2d_backward",
            "normalize_rows_forward", "normalize_rows_backward", "relu_forward", "relu_backward"]

threads.arrange()

# The direct kernel does Cg*kh*kw multiply-adds per output value straight from the padded input;
# im2col first copies Cg*kh*kw values per output position, then BLAS multiplies at near peak.
# Measured on the benchmark rows (benchmarks/README.md): direct wins while the filters are
# shallow (Cg*kh*kw up to ~150, LeNet and first layers) or the maps are large (>= 32x32 outputs).
_DIRECT_MAX_TAPS = 160
_DIRECT_MIN_OUT = 32 * 32


def conv_route(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: IntPair, padding: IntPair,
               groups: int) -> str:
    """"single", "pointwise", "direct" or "gemm": the kernel family that runs this layer."""
    if gemm.is_single_position(x_shape, w_shape, padding, groups):
        return "single"
    if gemm.is_pointwise(w_shape, stride, padding, groups):
        return "pointwise"
    if stride != (1, 1):
        return "gemm"
    _, Cg, kh, kw = w_shape
    OH, OW = x_shape[2] + 2 * padding[0] - kh + 1, x_shape[3] + 2 * padding[1] - kw + 1
    return "direct" if Cg * kh * kw <= _DIRECT_MAX_TAPS or OH * OW >= _DIRECT_MIN_OUT else "gemm"


def conv2d_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair, padding: IntPair, groups: int
) -> np.ndarray:
    """y[n, o] = b[o] + sum over the group's channels c and taps (i, j) of W[o, c, i, j] x[n, c, oh*S+i-P, ow*S+j-P]."""
    OH, OW = output_hw(x.shape[2:], weight.shape[2:], stride, padding)
    x = c_array(x)
    w = c_array(weight, x.dtype)
    b = None if bias is None else c_array(bias, x.dtype)
    if conv_route(x.shape, w.shape, stride, padding, groups) == "direct":
        return direct.forward(x, w, np.zeros(w.shape[0], x.dtype) if b is None else b, padding, groups)
    return gemm.forward(x, w, b, stride, padding, groups, (OH, OW))


def conv2d_forward_keep(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair, padding: IntPair, groups: int
) -> tuple[np.ndarray, dict]:
    """(y, kept): conv2d_forward, plus what the backward can reuse (beyond the interface: the GEMM
    route's column matrix of x, so the weight gradient does not build it again, ResNet-18 at CIFAR
    size builds 14 of them per step; a single-position layer's centre taps). Hand ``kept`` to
    conv2d_backward_kept."""
    kept: dict = {}
    OH, OW = output_hw(x.shape[2:], weight.shape[2:], stride, padding)
    x = c_array(x)
    w = c_array(weight, x.dtype)
    b = None if bias is None else c_array(bias, x.dtype)
    route = conv_route(x.shape, w.shape, stride, padding, groups)
    if route in ("gemm", "single"):
        return gemm.forward(x, w, b, stride, padding, groups, (OH, OW), keep=kept), kept
    if route == "direct":
        return direct.forward(x, w, np.zeros(w.shape[0], x.dtype) if b is None else b, padding, groups), kept
    return gemm.forward(x, w, b, stride, padding, groups, (OH, OW)), kept


def conv2d_backward_kept(grad_out, x, weight, stride, padding, groups, need_input, need_weight, need_bias,
                         kept: dict):
    """conv2d_backward with what conv2d_forward_keep kept for it."""
    if not kept:
        return conv2d_backward(grad_out, x, weight, stride, padding, groups, need_input, need_weight, need_bias)
    x = c_array(x)
    w = c_array(weight, x.dtype)
    dy = c_array(grad_out, x.dtype)
    dx, dw, db = gemm.backward(dy, x, w, stride, padding, groups, need_input, need_weight,
                               cols=kept.get("cols"), center=kept.get("center"))
    return dx, dw, (db if need_bias else None)


def conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: IntPair,
    padding: IntPair,
    groups: int,
    need_input: bool = True,
    need_weight: bool = True,
    need_bias: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dx, dW, db) from dy = grad_out:

        dW[o, c, i, j] = sum_{n, oh, ow} dy[n, o, oh, ow] x_padded[n, c, oh*S+i, ow*S+j]
        dx_padded[n, c, oh*S+i, ow*S+j] += sum_o dy[n, o, oh, ow] W[o, c, i, j]
        db[o] = sum_{n, oh, ow} dy[n, o, oh, ow]
    """
    x = c_array(x)
    w = c_array(weight, x.dtype)
    dy = c_array(grad_out, x.dtype)
    if conv_route(x.shape, w.shape, stride, padding, groups) == "direct":
        dx, dw = direct.backward(dy, x, w, padding, groups, need_input, need_weight)
        # (the batch first, then each plane: 2-3x faster than one sum over axes 0, 2, 3)
        db = dy.sum(axis=0).reshape(dy.shape[1], -1).sum(axis=1) if need_bias else None
        return dx, dw, db
    dx, dw, db = gemm.backward(dy, x, w, stride, padding, groups, need_input, need_weight)
    return dx, dw, (db if need_bias else None)


# transposed convolution: conv2d's own kernels, roles swapped (backends/transposed.py)
conv_transpose2d_forward, conv_transpose2d_backward = from_conv(conv2d_forward, conv2d_backward)
