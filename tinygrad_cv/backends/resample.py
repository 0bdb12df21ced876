"""Where each output pixel of an upsampling reads from: the one place for the formulas.

For one axis with input size ``n_in`` and output size ``n_out`` every output index ``o``
reads two input indices with weights (``i0``, ``i1``, ``l0``, ``l1``), so that

    y[o] = l0[o] * x[i0[o]] + l1[o] * x[i1[o]]        (applied along H, then along W)

- nearest (PyTorch's legacy 'nearest'): i0 = min(floor(o * scale), n_in - 1), l0 = 1, l1 = 0;
- either mode with n_out == n_in: a copy, i0 = i1 = o (as PyTorch, whatever the scale factor);
- bilinear, align_corners=True: the corner pixels of input and output line up,
  src = o * (n_in - 1) / (n_out - 1);
- bilinear, align_corners=False: pixel *centres* line up, src = (o + 0.5) * scale - 0.5,
  clamped at 0; then i0 = floor(src), i1 = min(i0 + 1, n_in - 1), l1 = src - i0, l0 = 1 - l1.

``scale`` is input/output, or 1/scale_factor when the caller gave a scale factor (PyTorch
uses the factor itself, not the rounded sizes, so 5 -> 7 at factor 1.5 samples at 1/1.5).
The arithmetic is float32, as PyTorch's CPU kernels, so the floors agree with theirs.
The backward of either mode is the transpose: each output's gradient goes back to i0 and i1
with the same weights.
"""
from __future__ import annotations

import numpy as np

Taps = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def taps(n_in: int, n_out: int, mode: str, align_corners: bool, scale_factor: float | None) -> Taps:
    """(i0, i1, l0, l1) of one axis: int64 indices and float64 weights, one per output index."""
    o = np.arange(n_out)
    if mode == "nearest":
        if n_out == n_in:
            i0 = o
        elif n_out == 2 * n_in:
            i0 = o // 2
        else:
            scale = np.float32(1.0 / scale_factor if scale_factor else n_in / n_out)
            i0 = np.minimum(np.floor(o.astype(np.float32) * scale).astype(np.int64), n_in - 1)
        return i0, i0, np.ones(n_out), np.zeros(n_out)
    if mode != "bilinear":
        raise ValueError(f"unknown interpolation mode {mode!r}; choose 'nearest' or 'bilinear'")
    if n_out == n_in:                                         # PyTorch copies, whatever the factor
        return o, o, np.ones(n_out), np.zeros(n_out)
    if align_corners:
        scale = np.float32((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        src = o.astype(np.float32) * scale
    else:
        scale = np.float32(1.0 / scale_factor if scale_factor else n_in / n_out)
        src = np.maximum(scale * (o.astype(np.float32) + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)          # src >= 0, so truncation is floor
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = (src - i0.astype(np.float32)).astype(np.float64)
    return i0, i1, 1.0 - l1, l1


def touching(t: Taps, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the outputs o in [lo[i], hi[i]) that read input i (the indices never decrease
    with o and i1 - i0 <= 1, so they form one run). Lets a backward gather instead of scatter."""
    i0, i1 = t[0], t[1]
    inputs = np.arange(n_in)
    return np.searchsorted(i1, inputs, "left"), np.searchsorted(i0, inputs, "right")
