"""Conv and pool in readable NumPy: the ground truth the fast backends are tested against.

Shapes follow PyTorch (NCHW): x (N, C, H, W), weight (O, C/groups, KH, KW), and the
output size along each axis is the course's

    (W - F + 2P) / S + 1        (floored, as PyTorch does)

Every function takes already-normalised arguments: ``stride``, ``padding`` and
``kernel_size`` are (height, width) pairs. ``tinygrad_cv.nn.functional`` checks
shapes and builds the pairs.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .reference_transpose import conv_transpose2d_backward, conv_transpose2d_forward  # noqa: F401
from .reference_rownorm import normalize_rows_backward, normalize_rows_forward  # noqa: F401
from .reference_upsample import interpolate2d_backward, interpolate2d_forward  # noqa: F401
from .shapes import IntPair


def _pad(x: np.ndarray, padding: IntPair, value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _windows(xp: np.ndarray, kernel: IntPair, stride: IntPair) -> np.ndarray:
    """All (kh, kw) windows of a padded input, one per output position:
    windows[n, c, oh, ow, i, j] = xp[n, c, oh*S + i, ow*S + j]  (a view, no copy)."""
    return sliding_window_view(xp, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]


def _unpad(dxp: np.ndarray, padding: IntPair) -> np.ndarray:
    ph, pw = padding
    return dxp[:, :, ph : dxp.shape[2] - ph, pw : dxp.shape[3] - pw]


def _scatter_windows(dwin: np.ndarray, padded_shape: tuple[int, ...], stride: IntPair) -> np.ndarray:
    """The adjoint of ``_windows``: add every window's gradient back where it was read from."""
    dxp = np.zeros(padded_shape, dwin.dtype)
    OH, OW, kh, kw = dwin.shape[2:]
    sh, sw = stride
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * OH : sh, j : j + sw * OW : sw] += dwin[:, :, :, :, i, j]
    return dxp


# -- convolution -----------------------------------------------------------------------------


def conv2d_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair, padding: IntPair, groups: int
) -> np.ndarray:
    """y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] * x_padded[n, c, oh*S + i, ow*S + j]

    (c runs over the channels of o's group)."""
    O = weight.shape[0]
    win = _windows(_pad(x, padding), weight.shape[2:], stride)  # (N, C, OH, OW, kh, kw)
    ys = [
        np.einsum("nchwij,ocij->nohw", wx, ww)
        for wx, ww in zip(np.split(win, groups, axis=1), np.split(weight, groups, axis=0))
    ]
    y = np.concatenate(ys, axis=1)
    if bias is not None:
        y = y + bias.reshape(1, O, 1, 1)
    return y.astype(x.dtype, copy=False)


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
    """(dx, dW, db) from dy = grad_out. Each weight touches many outputs, so its gradient
    sums over all of them; each input pixel likewise collects from every window it is in:

        dW[o, c, i, j]            = sum_{n, oh, ow} dy[n, o, oh, ow] * x_padded[n, c, oh*S+i, ow*S+j]
        dx_padded[n, c, oh*S+i, ow*S+j] += sum_o dy[n, o, oh, ow] * W[o, c, i, j]
        db[o]                     = sum_{n, oh, ow} dy[n, o, oh, ow]
    """
    xp = _pad(x, padding)
    win = _windows(xp, weight.shape[2:], stride)
    dys = np.split(grad_out, groups, axis=1)
    dx = dw = db = None
    if need_weight:
        dw = np.concatenate(
            [np.einsum("nohw,nchwij->ocij", d, wx) for d, wx in zip(dys, np.split(win, groups, axis=1))], axis=0
        ).astype(x.dtype, copy=False)
    if need_input:
        dwin = np.concatenate(
            [np.einsum("nohw,ocij->nchwij", d, ww) for d, ww in zip(dys, np.split(weight, groups, axis=0))], axis=1
        )
        dx = _unpad(_scatter_windows(dwin, xp.shape, stride), padding).astype(x.dtype, copy=False)
    if need_bias:
        db = grad_out.sum(axis=(0, 2, 3)).astype(x.dtype, copy=False)
    return dx, dw, db


# -- pooling ---------------------------------------------------------------------------------


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax): y[n, c, oh, ow] = max over the window; padding is -inf so it never wins.
    argmax is the winner's flat index h*W + w in its (n, c) input plane (first one on ties)."""
    H, W = x.shape[2:]
    win = _windows(_pad(x, padding, -np.inf), kernel_size, stride)
    N, C, OH, OW, kh, kw = win.shape
    flat = win.reshape(N, C, OH, OW, kh * kw)
    k = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, k[..., None], axis=-1)[..., 0]
    # window tap k = (i, j) of output (oh, ow) sits at h = oh*S + i - P, w = ow*S + j - P
    h = np.arange(OH)[:, None] * stride[0] + k // kw - padding[0]
    w = np.arange(OW)[None, :] * stride[1] + k % kw - padding[1]
    return y, (h * W + w).astype(np.int64)


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """The max routes the gradient: local derivative 1 for the window's winner, 0 for the rest."""
    N, C, H, W = input_shape
    dx = np.zeros((N, C, H * W), grad_out.dtype)
    n, c = np.indices(grad_out.shape[:2])
    np.add.at(dx, (n[..., None], c[..., None], argmax.reshape(N, C, -1)), grad_out.reshape(N, C, -1))
    return dx.reshape(input_shape)


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
    """y = mean of each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    win = _windows(_pad(x, padding), kernel_size, stride)
    return win.mean(axis=(-2, -1)).astype(x.dtype, copy=False)


def avg_pool2d_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """Every input in a window gets 1/(kh*kw) of that window's gradient."""
    kh, kw = kernel_size
    N, C, H, W = input_shape
    dwin = np.broadcast_to((grad_out / (kh * kw))[..., None, None], (*grad_out.shape, kh, kw))
    padded = (N, C, H + 2 * padding[0], W + 2 * padding[1])
    return _unpad(_scatter_windows(dwin, padded, stride), padding).astype(grad_out.dtype, copy=False)
