"""Making tensors the way PyTorch does: tg.tensor, zeros, arange, randn, cat, ... and the dtypes.

    x = tg.tensor([1., 2., 3.])             # float32, a copy of the data
    y = tg.zeros(2, 3, dtype=tg.float64)    # shapes as separate ints or one tuple
    z = tg.cat([x, x]), tg.where(x > 1, x, 0.0)

Dtypes are NumPy's (``tg.float32 is np.float32``), so ``t.dtype == tg.float32`` holds. As in
PyTorch, Python floats become float32 and Python ints int64; a NumPy array keeps its dtype
in ``tg.tensor`` and ``tg.from_numpy`` (the class ``Tensor(...)`` makes floating data float32).
Random draws come from the library's generator (``tg.manual_seed``), not PyTorch's: the
same seed gives other numbers than torch.
"""
from __future__ import annotations

import builtins
from typing import Any, Iterable

import numpy as np

from . import tensor_ops as ops
from .random import rng
from .tensors import DEFAULT_DTYPE, Tensor, _shape, where

float32 = float = np.float32
float64 = double = np.float64
float16 = half = np.float16
int64 = long = np.int64
int32 = int = np.int32
int16 = short = np.int16
int8, uint8 = np.int8, np.uint8
bool = np.bool_          # noqa: A001 (PyTorch's name)

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange", "linspace", "eye",
           "randn", "rand", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like",
           "randn_like", "rand_like", "cat", "concat", "stack", "where", "is_tensor",
           "float32", "float", "float64", "double", "float16", "half", "int64", "long", "int32", "int",
           "int16", "short", "int8", "uint8", "bool"]


def _infer(data: Any) -> np.ndarray:
    """PyTorch's inference: Python floats -> float32, ints -> int64, bools -> bool; arrays keep their dtype."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray([x.item() if isinstance(x, Tensor) else x for x in data]
                     if isinstance(data, (list, tuple)) else data)
    if arr.dtype.kind == "f":
        return arr.astype(DEFAULT_DTYPE)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "b":
        raise TypeError(f"tensor() takes numbers (nested lists, arrays), got {arr.dtype} from {type(data).__name__}")
    return arr


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (PyTorch's torch.tensor)."""
    arr = np.array(_infer(data), dtype=dtype, copy=True)
    return _new(arr, requires_grad, device)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor``, sharing memory with an array where it can."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    return _new(np.asarray(_infer(data), dtype=dtype), False, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array``'s memory and keeps its dtype."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


def is_tensor(obj: Any) -> bool:
    return isinstance(obj, Tensor)


def _new(arr: np.ndarray, requires_grad: bool, device: Any) -> Tensor:
    if device is not None:
        Tensor._wrap(arr).to(device)                 # refuses anything but the CPU, clearly
    return Tensor(arr, requires_grad=requires_grad, dtype=arr.dtype)


def _made(values: np.ndarray, dtype: Any, requires_grad: bool, device: Any = None) -> Tensor:
    return _new(np.asarray(values, dtype=DEFAULT_DTYPE if dtype is None else dtype), requires_grad, device)


def _size(shape: tuple, fn: str) -> tuple[int, ...]:
    shape = _shape(shape)
    if any(not isinstance(n, (builtins.int, np.integer)) or n < 0 for n in shape):
        raise ValueError(f"{fn}: a shape is made of non-negative ints, got {shape}")
    return tuple(shape)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return _made(np.zeros(_size(size, "zeros")), dtype, requires_grad, device)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return _made(np.ones(_size(size, "ones")), dtype, requires_grad, device)


empty = zeros


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """``size`` filled with ``fill_value``; the dtype follows the value (int64, float32, bool) unless given."""
    if dtype is None:
        dtype = _infer(fill_value).dtype
    return _made(np.full(_size((size,) if np.ndim(size) == 0 else tuple(size), "full"), fill_value, dtype=dtype),
                 dtype, requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, requires_grad: bool = False,
           device: Any = None) -> Tensor:
    """``arange(end)`` or ``arange(start, end, step)``: int64 when all are ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, (builtins.int, np.integer)) for v in (start, end, step)) \
            else DEFAULT_DTYPE
    return _made(np.arange(start, end, step), dtype, requires_grad, device)


def linspace(start: Any, end: Any, steps: Any, dtype: Any = None, requires_grad: bool = False,
             device: Any = None) -> Tensor:
    return _made(np.linspace(start, end, steps), dtype, requires_grad, device)


def eye(n: Any, m: Any = None, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return _made(np.eye(n, m), dtype, requires_grad, device)


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """Standard normal samples from the library's generator (see manual_seed)."""
    return _made(rng().standard_normal(_size(size, "randn")), dtype, requires_grad, device)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """Uniform [0, 1) samples from the library's generator."""
    return _made(rng().random(_size(size, "rand")), dtype, requires_grad, device)


def randint(low: Any, high: Any = None, size: Any = None, dtype: Any = None, device: Any = None) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: int64 in [low, high)."""
    if size is None:
        if high is None or np.ndim(high) == 0:
            raise TypeError("randint needs a size, e.g. randint(0, 10, (3,))")
        low, high, size = 0, low, high
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be larger than low ({low})")
    return _made(rng().integers(low, high, _size((size,) if np.ndim(size) == 0 else tuple(size), "randint")),
                 np.int64 if dtype is None else dtype, False, device)


def randperm(n: Any, dtype: Any = None, device: Any = None) -> Tensor:
    return _made(rng().permutation(n), np.int64 if dtype is None else dtype, False, device)


def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(*t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(*t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


empty_like = zeros_like


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def randn_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(*t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(*t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def cat(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along ``dim`` (PyTorch's torch.cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    d = tensors[0]._dim(dim, "cat")
    ref = tensors[0].shape
    for t in tensors[1:]:
        if len(t.shape) != len(ref) or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != d):
            raise ValueError(f"cat along dim {dim}: shapes {[x.shape for x in tensors]} differ outside that dim")
    return Tensor.apply(ops.Cat(d), *tensors)


concat = cat


def stack(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Stack along a new axis ``dim`` (PyTorch's torch.stack)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack() needs at least one tensor")
    if any(t.shape != tensors[0].shape for t in tensors[1:]):
        raise ValueError(f"stack needs tensors of one shape, got {[t.shape for t in tensors]}")
    d = tensors[0]._dim(dim, "stack", extra=1)
    return cat([t.unsqueeze(d) for t in tensors], d)
