"""Upsampling (PyTorch's F.interpolate, modes 'nearest' and 'bilinear') as a recorded op, NCHW.

Each output pixel reads at most two input pixels per axis (backends/resample.py has the
formulas): 'nearest' copies input floor(o * scale), PyTorch's legacy rule; 'bilinear'
mixes the two neighbours of the source position, src = o*(n_in - 1)/(n_out - 1) with
align_corners=True (corner pixels line up) or (o + 0.5)*scale - 0.5 with
align_corners=False (pixel centres line up; PyTorch's default). scale = n_in/n_out, or
1/scale_factor when a scale factor was given. The output size is ``size``, or
floor(n_in * scale_factor) per axis. Backward: each output's gradient goes back to the
inputs it read, with the weights it read them with (the same linear map, transposed).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ... import backends
from ...backends.shapes import interpolate_output_size
from ...graph import Op
from ...tensors import Tensor
from .conv import _check_nchw

MODES = ("nearest", "bilinear")


class Interpolate2dOp(Op):
    """y[n, c, oh, ow] = sum over the taps of lh[oh] lw[ow] x[n, c, h(oh), w(ow)]."""

    name, symbol, inputs = "interpolate", "upsample", ("x",)

    def __init__(self, size: tuple[int, int], mode: str, align_corners: bool,
                 scale_factor: tuple[float, float] | None):
        self.size, self.mode, self.align_corners, self.scale_factor = size, mode, align_corners, scale_factor

    @property
    def derivatives(self) -> tuple[str, ...]:
        if self.mode == "nearest":
            return ("1 for the input pixel each output copied, 0 for the others",)
        return ("the bilinear weights: each output's gradient goes to its 4 neighbours, weighted by closeness",)

    def forward(self, ctx, x: np.ndarray) -> np.ndarray:
        ctx.kernels, ctx.shape = backends.kernels(), x.shape
        return ctx.kernels.interpolate2d_forward(x, self.size, self.mode, self.align_corners, self.scale_factor)

    def backward(self, ctx, up: np.ndarray):
        return (ctx.kernels.interpolate2d_backward(up, ctx.shape, self.mode, self.align_corners, self.scale_factor),)


def _two(value, name: str, kind) -> tuple:
    vals = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(vals) != 2 or any(isinstance(v, bool) or not isinstance(v, kind) for v in vals):
        raise ValueError(f"interpolate: {name} must be one number or a pair for (H, W), got {value!r}")
    return vals


def interpolate(input: Tensor, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """PyTorch's F.interpolate for 4-D input, modes 'nearest' and 'bilinear'.

    Give exactly one of ``size`` (OH, OW) and ``scale_factor`` (output floor(H * factor));
    ``align_corners`` only with 'bilinear' (None means False, as PyTorch)."""
    _check_nchw("interpolate", input)
    if mode not in MODES:
        raise ValueError(f"interpolate: mode {mode!r} is not supported; choose one of {', '.join(MODES)}")
    if align_corners is not None and mode == "nearest":
        raise ValueError("interpolate: align_corners can only be set with mode='bilinear', got mode='nearest'")
    if (size is None) == (scale_factor is None):
        which = "both" if size is not None else "neither"
        raise ValueError(f"interpolate: give exactly one of size and scale_factor, got {which} "
                         f"(size={size!r}, scale_factor={scale_factor!r}) for input of shape {tuple(input.shape)}")
    H, W = input.shape[2:]
    factors = None
    if size is not None:
        out = tuple(int(v) for v in _two(size, "size", (int, np.integer)))
        if min(out) < 1:
            raise ValueError(f"interpolate: size must be positive, got {size!r} for input of shape {tuple(input.shape)}")
    else:
        factors = tuple(float(v) for v in _two(scale_factor, "scale_factor", (int, float, np.integer, np.floating)))
        if min(factors) <= 0:
            raise ValueError(f"interpolate: scale_factor must be positive, got {scale_factor!r}")
        try:
            out = (interpolate_output_size(H, factors[0]), interpolate_output_size(W, factors[1]))
        except ValueError as e:
            raise ValueError(f"interpolate: input of shape {tuple(input.shape)}: {e}") from None
    op = Interpolate2dOp(out, mode, bool(align_corners), factors)  # type: ignore[arg-type]
    return Tensor.apply(op, input)
