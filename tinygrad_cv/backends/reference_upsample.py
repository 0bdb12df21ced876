"""Upsampling (F.interpolate) in readable NumPy: one small matrix per axis.

Along one axis every output index o reads input i0[o] with weight l0[o] and i1[o] with
weight l1[o] (backends/resample.py holds the formulas for 'nearest' and 'bilinear'). Written
as an (n_out, n_in) matrix A per axis, the 2-D resampling of each (n, c) plane is

    y = A_h x A_w^T        and its gradient        dx = A_h^T dy A_w

(the backward is the same matrices transposed: each output's gradient goes back to the
inputs it read, with the weights it read them with).
"""
from __future__ import annotations

import numpy as np

from .resample import taps
from .shapes import IntPair


def _matrix(n_in: int, n_out: int, mode: str, align_corners: bool, scale_factor: float | None) -> np.ndarray:
    i0, i1, l0, l1 = taps(n_in, n_out, mode, align_corners, scale_factor)
    a = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(a, (rows, i0), l0)
    np.add.at(a, (rows, i1), l1)
    return a


def _matrices(in_hw, out_hw, mode, align_corners, scale_factor):
    sf = scale_factor or (None, None)
    return [_matrix(i, o, mode, align_corners, s) for i, o, s in zip(in_hw, out_hw, sf)]


def interpolate2d_forward(x: np.ndarray, size: IntPair, mode: str, align_corners: bool,
                          scale_factor: tuple[float, float] | None) -> np.ndarray:
    """y[n, c] = A_h x[n, c] A_w^T, resampled to ``size`` = (OH, OW)."""
    ah, aw = _matrices(x.shape[2:], size, mode, align_corners, scale_factor)
    return np.einsum("ph,nchw,qw->ncpq", ah, x, aw).astype(x.dtype)


def interpolate2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], mode: str, align_corners: bool,
                           scale_factor: tuple[float, float] | None) -> np.ndarray:
    """dx[n, c] = A_h^T dy[n, c] A_w: each output's gradient back to the inputs it read."""
    ah, aw = _matrices(input_shape[2:], grad_out.shape[2:], mode, align_corners, scale_factor)
    return np.einsum("ph,ncpq,qw->nchw", ah, grad_out, aw).astype(grad_out.dtype)
