"""Transposed convolution in readable NumPy: the ground truth for the fast backends.

A transposed convolution *scatters*: each input value x[n, o, h, w] times the whole filter
W[o, c, :, :] is added into the output at rows h*S .. h*S + kH - 1 and columns
w*S .. w*S + kW - 1 (of an output that still carries its padding); then P rows and columns
are cut from each border. Weight layout as PyTorch: (C_in, C_out/groups, kH, kW). Output size
per axis (H - 1)*S - 2P + (kH - 1) + output_padding + 1: the output_padding extra rows sit
at the bottom (columns at the right) and receive only the bias.
Dilation arrives already expanded into the filter (zeros between taps).
"""
from __future__ import annotations

import numpy as np

from .shapes import IntPair


def _full_hw(hw, kernel, stride, output_padding) -> IntPair:
    """The output before its padding is cut away: (H - 1)*S + kH + output_padding."""
    return tuple((h - 1) * s + k + op for h, k, s, op in zip(hw, kernel, stride, output_padding))  # type: ignore[return-value]


def conv_transpose2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair,
                             padding: IntPair, output_padding: IntPair, groups: int) -> np.ndarray:
    """y_full[n, c, h*S + i, w*S + j] += sum_o x[n, o, h, w] * W[o, c, i, j]   (o over c's group),
    y = y_full without P rows/columns at each border, plus b[c]."""
    N, _, H, W = x.shape
    kh, kw = weight.shape[2:]
    sh, sw = stride
    # taps[n, c, i, j, h, w] = sum_o x[n, o, h, w] W[o, c, i, j]: what input (h, w) sends to tap (i, j)
    taps = np.concatenate([np.einsum("nohw,ocij->ncijhw", xg, wg)
                           for xg, wg in zip(np.split(x, groups, axis=1), np.split(weight, groups, axis=0))], axis=1)
    FH, FW = _full_hw((H, W), (kh, kw), stride, output_padding)
    full = np.zeros((N, taps.shape[1], FH, FW), taps.dtype)
    for i in range(kh):
        for j in range(kw):
            full[:, :, i : i + sh * H : sh, j : j + sw * W : sw] += taps[:, :, i, j]
    ph, pw = padding
    y = full[:, :, ph : FH - ph, pw : FW - pw]
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y, dtype=x.dtype)


def conv_transpose2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntPair,
                              padding: IntPair, groups: int, need_input: bool = True, need_weight: bool = True,
                              need_bias: bool = True) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dx, dW, db) from dy = grad_out: every scattered copy reads its gradient back,

        dx[n, o, h, w] = sum_{c, i, j} dy_full[n, c, h*S + i, w*S + j] W[o, c, i, j]
        dW[o, c, i, j] = sum_{n, h, w} x[n, o, h, w] dy_full[n, c, h*S + i, w*S + j]
        db[c]          = sum_{n, h, w} dy[n, c, h, w]

    where dy_full is dy with the cut-away border put back as zeros."""
    N, _, H, W = x.shape
    kh, kw = weight.shape[2:]
    sh, sw = stride
    ph, pw = padding
    OH, OW = grad_out.shape[2:]
    full = np.zeros((N, grad_out.shape[1], OH + 2 * ph, OW + 2 * pw), grad_out.dtype)
    full[:, :, ph : ph + OH, pw : pw + OW] = grad_out
    # read[n, c, i, j, h, w] = dy_full[n, c, h*S + i, w*S + j]: the gradient at the place tap (i, j) of input (h, w) went
    read = np.stack([np.stack([full[:, :, i : i + sh * H : sh, j : j + sw * W : sw] for j in range(kw)], 2)
                     for i in range(kh)], 2)
    reads, ws = np.split(read, groups, axis=1), np.split(weight, groups, axis=0)
    dx = dw = db = None
    if need_input:
        dx = np.concatenate([np.einsum("ncijhw,ocij->nohw", r, wg) for r, wg in zip(reads, ws)], axis=1).astype(x.dtype)
    if need_weight:
        dw = np.concatenate([np.einsum("nohw,ncijhw->ocij", xg, r)
                             for xg, r in zip(np.split(x, groups, axis=1), reads)], axis=0).astype(x.dtype)
    if need_bias:
        db = grad_out.sum(axis=(0, 2, 3)).astype(x.dtype)
    return dx, dw, db
