"""Output sizes of convolution and pooling, in the course's formula.

    output size = (W - F + 2P) / S + 1

for an input of size W, a filter of size F, padding P and stride S. PyTorch
floors the division; the course says a filter whose stride leaves a remainder
"does not fit". ``strict=True`` raises that error everywhere; the default floors
like PyTorch and raises only when the filter does not fit at all.
``conv_strictness`` picks the middle ground conv2d uses: the course's rule where
windows sit side by side on an unpadded input, PyTorch's floor elsewhere.
"""
from __future__ import annotations

import math
import functools
import operator
from typing import Sequence

IntPair = tuple[int, int]


def pair(value: int | Sequence[int], name: str) -> IntPair:
    """``3`` -> ``(3, 3)``; ``(3, 5)`` stays; anything else is a ValueError naming ``name``."""
    try:
        if isinstance(value, (tuple, list)) and len(value) == 2:
            a, b = value
            if not isinstance(a, bool) and not isinstance(b, bool):
                return (operator.index(a), operator.index(b))
        elif not isinstance(value, bool):
            v = operator.index(value)  # type: ignore[arg-type]
            return (v, v)
    except TypeError:
        pass
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def _problem(w: int, f: int, s: int, p: int, strict: bool) -> str | None:
    """Why a filter does not fit along one axis, with the formula; None if it fits."""
    span = w - f + 2 * p
    if span >= 0 and not (strict and span % s):
        return None                 # fits: no message to build (this runs on every kernel call)
    formula = f"(W - F + 2P)/S + 1 = ({w} - {f} + {2 * p})/{s} + 1 = {span / s + 1:.3g}"
    return f"{formula}, less than 1" if span < 0 else f"{formula}, not an integer"


def _validate(f: int, s: int, p: int) -> None:
    if f < 1:
        raise ValueError(f"filter size must be at least 1, got {f}")
    if s < 1:
        raise ValueError(f"stride must be at least 1, got {s}")
    if p < 0:
        raise ValueError(f"padding must be non-negative, got {p}")


def conv_output_size(w: int, f: int, s: int = 1, p: int = 0, strict: bool = False) -> int:
    """Output size along one axis, ``(w - f + 2p) // s + 1`` (floored, as PyTorch).

    Raises ValueError when the filter does not fit at all (output < 1) and, with
    ``strict=True``, also when the stride leaves a remainder (the course's rule).
    """
    _validate(f, s, p)
    why = _problem(w, f, s, p, strict)
    if why:
        raise ValueError(f"a filter of size {f} with stride {s} and padding {p} does not fit an input of size {w}: {why}")
    return (w - f + 2 * p) // s + 1


def conv_strictness(kernel: IntPair, stride: IntPair, padding: IntPair) -> tuple[bool, bool]:
    """Per axis: does the course's "must fit exactly" rule apply?

    It does where the windows are meant to tile an unpadded input side by side
    (P = 0 and S = F > 1, as a 3x3 filter at stride 3 on a 7x7 input): a remainder
    there means the last input columns are silently never seen. Every other layer
    (overlapping windows, padding, ResNet's 1x1 stride-2 shortcut) keeps PyTorch's
    floor, so models written for PyTorch build unchanged.
    """
    return tuple(p == 0 and f == s > 1 for f, s, p in zip(kernel, stride, padding))  # type: ignore[return-value]


def _show(p: IntPair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def output_hw(hw: IntPair, kernel: IntPair, stride: IntPair, padding: IntPair,
              strict: bool | tuple[bool, bool] = False) -> IntPair:
    """(OH, OW) of a 2-D convolution or pool over an (H, W) input; errors name all the numbers.

    ``strict`` (one flag, or one per axis) applies the course's exact-fit rule. Every layer
    asks on every call with the same few shapes, so answers are remembered (errors are not).
    """
    try:
        return _output_hw(tuple(hw), tuple(kernel), tuple(stride), tuple(padding), strict)
    except TypeError:              # an unhashable strict: work it out without the cache
        return _output_hw.__wrapped__(hw, kernel, stride, padding, strict)


@functools.lru_cache(maxsize=512)
def _output_hw(hw: IntPair, kernel: IntPair, stride: IntPair, padding: IntPair,
               strict: bool | tuple[bool, bool]) -> IntPair:
    for f, s, p in zip(kernel, stride, padding):
        _validate(f, s, p)
    stricts = strict if isinstance(strict, tuple) else (strict, strict)
    whys = [_problem(w, f, s, p, st) for w, f, s, p, st in zip(hw, kernel, stride, padding, stricts)]
    if any(whys):
        axes = [f"{name}: {why}" for name, why in zip(("height", "width"), whys) if why]
        if hw[0] == hw[1] and whys[0] == whys[1]:
            axes = [whys[0]]  # type: ignore[list-item]
        pad = f" and padding {_show(padding)}" if any(padding) else ""
        raise ValueError(
            f"a {kernel[0]}x{kernel[1]} filter with stride {_show(stride)}{pad} does not fit a "
            f"{hw[0]}x{hw[1]} input: {'; '.join(axes)}"
        )
    return tuple((w - f + 2 * p) // s + 1 for w, f, s, p in zip(hw, kernel, stride, padding))  # type: ignore[return-value]


def transposed_output_hw(hw: IntPair, kernel: IntPair, stride: IntPair, padding: IntPair,
                         output_padding: IntPair, dilation: IntPair = (1, 1)) -> IntPair:
    """(OH, OW) of a transposed convolution, per axis PyTorch's

        (H - 1)*S - 2P + D*(F - 1) + output_padding + 1

    (the size whose convolution with the same F, S, P, D gives back H; output_padding picks one
    of the S sizes that all do, so it must be smaller than S). Errors name all the numbers."""
    out = []
    for name, h, f, s, p, op, d in zip(("height", "width"), hw, kernel, stride, padding, output_padding, dilation):
        _validate(f, s, p)
        if d < 1:
            raise ValueError(f"dilation must be at least 1, got {d}")
        if not 0 <= op < s:
            raise ValueError(f"output_padding {op} must be non-negative and smaller than the stride {s} ({name})")
        o = (h - 1) * s - 2 * p + d * (f - 1) + op + 1
        if o < 1:
            raise ValueError(f"a transposed {kernel[0]}x{kernel[1]} filter with stride {s} and padding {p} gives a "
                             f"{name} of (H - 1)*S - 2P + D*(F - 1) + output_padding + 1 = ({h} - 1)*{s} - {2 * p} + "
                             f"{d}*({f} - 1) + {op} + 1 = {o}, less than 1")
        out.append(o)
    return out[0], out[1]


def interpolate_output_size(n_in: int, scale_factor: float) -> int:
    """floor(n_in * scale_factor), as PyTorch's F.interpolate; at least 1 or a ValueError."""
    n = int(math.floor(n_in * scale_factor))
    if n < 1:
        raise ValueError(f"an input of size {n_in} at scale_factor {scale_factor} gives output size "
                         f"floor({n_in} * {scale_factor}) = {n}, less than 1")
    return n
