"""tinygrad_cv: a computation-graph engine for learning how vision networks compute and learn.

    import tinygrad_cv as tg
    x, y, z = tg.Value(-2.0, label="x"), tg.Value(5.0, label="y"), tg.Value(-4.0, label="z")
    f = (x + y) * z; f.backward()          # x.grad == -4, y.grad == -4, z.grad == 3
    tg.Stepper(f)                          # walk it: forward values, then upstream x local

Submodules nn, optim, data and models load on first use, so this import stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

from .backends import get_backend, set_backend
from .gradcheck import gradcheck
from .graph import Graph, Node, Op, is_grad_enabled, no_grad, trace
from .random import manual_seed
from .scalar import Value
from .step import Stepper
from .tensors import Tensor, torch_dims
from . import creation as _creation
from .creation import *  # noqa: F401,F403  (tg.tensor, zeros, arange, ..., tg.float32, tg.long)
from .functions import *  # noqa: F401,F403  (tg.sin, tg.exp, tg.sum, tg.argmax, ...)
from . import functions as _functions

__version__ = "0.1.0"

_LAZY = ("nn", "optim", "data", "models", "checkpoint", "autograd")
_SAVE = ("save", "load")          # tg.save(state_dict, path) / tg.load(path): the .npz checkpoint format


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _SAVE:
        checkpoint = importlib.import_module(f"{__name__}.checkpoint")
        return checkpoint.save if name == "save" else checkpoint.load_state
    raise AttributeError(f"module 'tinygrad_cv' has no attribute {name!r}")


__all__ = ["Value", "Tensor", "Graph", "Node", "Op", "trace", "Stepper", "no_grad", "enable_grad", "is_grad_enabled",
           "gradcheck", "manual_seed", "set_backend", "get_backend", *_creation.__all__, *_functions.__all__,
           *_LAZY, *_SAVE]
