"""PyTorch's free functions on tensors: ``tg.sin(x)`` is ``x.sin()``, ``tg.sum(x, dim=1)`` is ``x.sum(dim=1)``.

Each is the Tensor method of the same name (one implementation); a number or an array
given as the first argument becomes a tensor first (``tg.exp(0.5)``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from . import graph
from .creation import as_tensor
from .tensors import Tensor

_METHODS = ("sin", "cos", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "square", "sign", "pow",
            "clamp", "clip", "sum", "mean", "max", "min", "amax", "argmax", "argmin", "std", "var", "norm",
            "prod", "cumsum", "matmul", "mm", "dot", "softmax", "log_softmax", "maximum", "minimum", "flatten",
            "reshape", "transpose", "permute", "squeeze", "unsqueeze", "numel", "masked_fill", "clone",
            "add", "sub", "mul", "div", "eq", "ne", "lt", "le", "gt", "ge", "allclose", "logical_not",
            "any", "all", "t")

__all__ = [*_METHODS, "enable_grad", "set_grad_enabled"]


def _function(name: str) -> Callable[..., Any]:
    def fn(input: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(input if isinstance(input, Tensor) else as_tensor(input), name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``tg.{name}(t, ...)`` is ``t.{name}(...)``."
    return fn


for _name in _METHODS:
    globals()[_name] = _function(_name)


@contextmanager
def set_grad_enabled(mode: bool) -> Iterator[None]:
    """Record graphs (True) or not (False) inside the block."""
    previous, graph._grad_enabled = graph._grad_enabled, bool(mode)
    try:
        yield
    finally:
        graph._grad_enabled = previous


def enable_grad() -> Any:
    """Record graphs again inside the block, even within ``no_grad``."""
    return set_grad_enabled(True)
