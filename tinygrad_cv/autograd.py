"""User-defined operations with PyTorch's API: any group of gates can become one gate.

    class Cubic(tg.autograd.Function):            # P3(x) = (5x^3 - 3x) / 2
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 0.5 * (5 * x ** 3 - 3 * x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * x ** 2 - 1)   # upstream x local dP3/dx

    y = Cubic.apply(x)

``forward`` receives Tensors and runs without recording (its inside is one gate, not a
subgraph); ``backward`` receives the upstream gradient as a Tensor and returns one
gradient per input (None for an input that needs none), also without recording.
``ctx.save_for_backward`` / ``ctx.saved_tensors`` / ``ctx.needs_input_grad`` and plain
attributes on ``ctx`` work as in PyTorch. The result is an ordinary node of the graph:
``backward()``, ``tg.gradcheck``, the Stepper and ``viz.draw`` treat it like a built-in op,
named by the class. A class may describe its local derivative for the stepper and the
diagrams with ``inputs``, ``formula`` and ``derivatives`` (see ``tinygrad_cv.graph.Op``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .graph import Context, Op, no_grad
from .tensors import Tensor

__all__ = ["Function", "Context"]


class _FunctionOp(Op):
    """The graph's view of one call of a Function subclass: its forward and backward, on arrays."""

    def __init__(self, fn: type[Function], n_inputs: int, constants: dict[int, Any]):
        self.fn, self.n_inputs, self.constants = fn, n_inputs, constants
        self.name = fn.__name__
        self.inputs = getattr(fn, "inputs", Op.inputs)
        self.formula = getattr(fn, "formula", None)
        self.derivatives = tuple(getattr(fn, "derivatives", ()))

    def _args(self, arrays: tuple[np.ndarray, ...]) -> list[Any]:
        """The call's arguments again: the tensor inputs, with the non-tensor ones back in place."""
        it = iter(arrays)
        return [self.constants[i] if i in self.constants else Tensor(a := next(it), dtype=a.dtype)
                for i in range(self.n_inputs + len(self.constants))]

    def forward(self, ctx: Context, *arrays: np.ndarray) -> np.ndarray:
        flags = iter(ctx.needs_input_grad)       # one flag per argument of forward, as PyTorch gives it
        ctx.needs_input_grad = tuple(False if i in self.constants else next(flags)
                                     for i in range(self.n_inputs + len(self.constants)))
        with no_grad():
            out = self.fn.forward(ctx, *self._args(arrays))
        if not isinstance(out, Tensor):
            raise TypeError(f"{self.name}.forward must return a Tensor, got {type(out).__name__}")
        return out.data

    def backward(self, ctx: Context, up: np.ndarray) -> tuple[Any, ...]:
        with no_grad():
            grads = self.fn.backward(ctx, Tensor(up, dtype=up.dtype))
        grads = grads if isinstance(grads, tuple) else (grads,)
        total = self.n_inputs + len(self.constants)
        if len(grads) != total:
            raise ValueError(f"{self.name}.backward returned {len(grads)} gradients for {total} inputs "
                             f"of forward (return None for an input that needs none)")
        return tuple(None if g is None else (g.data if isinstance(g, Tensor) else np.asarray(g))
                     for i, g in enumerate(grads) if i not in self.constants)


class Function:
    """Base class of a user-defined op: subclass it with static ``forward(ctx, *inputs)`` and
    ``backward(ctx, grad_output)``."""

    @classmethod
    def apply(cls, *args: Any) -> Tensor:
        """Run ``forward`` on ``args`` and record the result as one node (PyTorch's ``Function.apply``).

        Tensor arguments are the op's inputs; any other argument (a number, a flag) is
        passed through to forward as it is and gets ``None`` as its gradient.
        """
        if not callable(getattr(cls, "forward", None)) or not callable(getattr(cls, "backward", None)):
            raise TypeError(f"{cls.__name__} must define both forward(ctx, ...) and backward(ctx, ...)")
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not tensors:
            raise TypeError(f"{cls.__name__}.apply needs at least one Tensor argument")
        constants = {i: a for i, a in enumerate(args) if not isinstance(a, Tensor)}
        op = _FunctionOp(cls, len(tensors), constants)
        return Tensor.apply(op, *tensors)
