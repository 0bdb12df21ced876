"""Numerical versus analytic gradients, the learner's safety net.

The analytic gradient comes from ``backward``; the numerical one from central
differences, (f(x + h) - f(x - h)) / 2h, in float64. A tensor-valued output is
reduced to one number with a fixed random weighting, which checks the same
vector-Jacobian product that backward computes.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from .graph import Node
from .scalar import Value
from .tensors import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck(..., raise_exception=True)`` when gradients disagree."""


def _as_float64(x: Any) -> Any:
    if isinstance(x, Tensor):
        return Tensor(x.data, requires_grad=x.requires_grad, dtype=np.float64, label=x.label) if x.dtype.kind == "f" else x
    return x


def gradcheck(fn: Callable[..., Node], *inputs: Any, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-6, raise_exception: bool = False, seed: int = 0) -> bool:
    """True when ``fn``'s analytic gradients match central differences for every input.

    ``inputs`` are Tensors (floating ones are checked in float64 copies; only those
    with requires_grad are perturbed) or Values. On a mismatch the worst element is
    reported (input, index, numeric, analytic) on stderr, or raised with
    ``raise_exception=True``. A NaN or infinite gradient (analytic or numeric) is
    always a failure, reported for the first element where it occurs.
    """
    with np.errstate(all="ignore"):                 # NaN/inf are reported below, not warned about
        return _gradcheck(fn, inputs, eps, atol, rtol, raise_exception, seed)


def _gradcheck(fn: Callable[..., Node], inputs: tuple, eps: float, atol: float, rtol: float,
               raise_exception: bool, seed: int) -> bool:
    inputs = tuple(_as_float64(x) for x in inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Value) or (isinstance(x, Tensor) and x.requires_grad)]
    if not checked:
        raise ValueError("gradcheck needs at least one Value or Tensor with requires_grad=True")

    out = fn(*inputs)
    weights = None
    if isinstance(out, Tensor):
        weights = np.random.default_rng(seed).uniform(0.5, 1.5, out.shape)

    def scalar_of(result: Node) -> float:
        if isinstance(result, Tensor):
            return float(np.sum(result.data.astype(np.float64) * weights))
        return float(result.data)

    for i in checked:
        inputs[i].zero_grad()
    out.backward(weights if isinstance(out, Tensor) else None)

    worst = (0.0, None)
    nonfinite = None                                # the first element with a NaN/inf gradient
    for i in checked:
        x = inputs[i]
        if isinstance(x, Value):
            analytic = np.array([x.grad])
            cells, get, put = [()], (lambda _: x.data), (lambda _, v: setattr(x, "data", v))
        else:
            analytic = np.zeros(x.shape) if x.grad is None else x.grad.data.astype(np.float64)
            cells, get = list(np.ndindex(x.shape)), (lambda idx: x.data[idx])
            put = lambda idx, v: x.data.__setitem__(idx, v)  # noqa: E731
        analytic = analytic.reshape(-1) if isinstance(x, Value) else analytic
        for idx in cells:
            orig = get(idx)
            put(idx, orig + eps)
            plus = scalar_of(fn(*inputs))
            put(idx, orig - eps)
            minus = scalar_of(fn(*inputs))
            put(idx, orig)
            numeric = (plus - minus) / (2 * eps)
            a = float(analytic[0] if isinstance(x, Value) else analytic[idx])
            if not (np.isfinite(numeric) and np.isfinite(a)):
                nonfinite = nonfinite or (i, idx, numeric, a)
                continue
            excess = abs(numeric - a) - (atol + rtol * abs(numeric))
            if excess > worst[0]:
                worst = (excess, (i, idx, numeric, a))

    if worst[1] is None and nonfinite is None:
        return True
    i, idx, numeric, a = nonfinite or worst[1]
    name = getattr(inputs[i], "label", "") or f"input {i}"
    where = f"{name}{list(idx) if idx else ''}"
    if nonfinite is not None:                       # NaN compares false: never let it pass as a match
        which = " and ".join(w for w, v in (("numeric", numeric), ("analytic", a)) if not np.isfinite(v))
        message = (f"gradcheck failed: element {where} has a non-finite {which} gradient: "
                   f"numeric {numeric:.6g}, analytic {a:.6g}")
    else:
        message = (f"gradcheck failed: worst element {where}: "
                   f"numeric {numeric:.6g}, analytic {a:.6g} (|diff| {abs(numeric - a):.3g})")
    if raise_exception:
        raise GradcheckError(message)
    print(message, file=sys.stderr)
    return False
