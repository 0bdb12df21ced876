"""Tensor: the tensor engine, a NumPy array per node.

Arithmetic follows NumPy's broadcasting; each operation is an Op from
tensor_ops.py, and the gradient that flows back into a broadcast input is summed
back to that input's shape in one place (``Tensor._add_grad``). Tensors are
float32 unless asked otherwise (floating input is converted; integer input such
as class labels stays integer).
"""
from __future__ import annotations

from numbers import Number
from typing import Any, Iterable, Sequence

import numpy as np

from . import tensor_ops as ops
from .graph import Context, Node, Op, current_scope, is_grad_enabled, new_seq
from .random import rng

DEFAULT_DTYPE = np.float32


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return arr if arr.dtype == DEFAULT_DTYPE else arr.astype(DEFAULT_DTYPE)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64) if arr.dtype.kind == "i" and arr.dtype != np.int64 else arr
    raise TypeError(f"Tensor holds numbers, got {arr.dtype} data from {type(data).__name__}")


class Tensor(Node):
    """An ndarray node: ``Tensor(data, requires_grad=False, dtype=None, label=None)``.

    ``scope`` is the dotted name of the module whose forward created it ("" if none).
    """

    __slots__ = ("parents", "requires_grad", "scope", "ctx")

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str | None = None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.grad: np.ndarray | None = None
        self.op = None
        self.parents = ()
        self.ctx = None
        self.label = label or ""
        self.seq = new_seq()
        self.requires_grad = bool(requires_grad)
        self.scope = ""

    # -- recording ------------------------------------------------------------------------
    @staticmethod
    def apply(op: Op, *parents: Tensor) -> Tensor:
        """Run ``op`` on the parents' data and record the result when a gradient is wanted.

        The op's forward gets a fresh :class:`~tinygrad_cv.graph.Context` for what its
        backward needs; the node keeps it (and drops it when nothing is recorded).
        """
        out = Tensor.__new__(Tensor)
        needs = tuple(p.requires_grad for p in parents)
        ctx = Context(needs)
        out.data = op.forward(ctx, *[p.data for p in parents])
        out.grad = None
        out.label = ""
        out.seq = new_seq()
        out.scope = current_scope()
        if is_grad_enabled() and any(needs):
            out.op, out.parents, out.ctx, out.requires_grad = op, parents, ctx, True
        else:
            out.op, out.parents, out.ctx, out.requires_grad = None, (), None, False
        return out

    def _other(self, other: Any) -> Tensor:
        if isinstance(other, Tensor):
            return other
        if isinstance(other, Number):
            return Tensor(np.asarray(other, dtype=self.data.dtype if self.data.dtype.kind == "f" else None))
        return Tensor(other)

    def _binary(self, op: Op, other: Any, reflected: bool = False) -> Tensor:
        other = self._other(other)
        a, b = (other, self) if reflected else (self, other)
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op.name}: shapes {a.shape} and {b.shape} do not broadcast together") from None
        return Tensor.apply(op, a, b)

    def _seed_grad(self, grad: Any) -> np.ndarray:
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a single number, but this tensor "
                                   f"has shape {self.shape}: reduce it (e.g. .sum()) or pass grad= of that shape")
            return np.ones_like(self.data)
        g = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
        if g.shape != self.shape:
            raise ValueError(f"backward(grad=...) got a gradient of shape {g.shape} for a tensor of shape {self.shape}")
        return g

    def _chain(self, upstream: np.ndarray) -> list[tuple[Tensor, None, Any]]:
        # The op's backward gives upstream x local for each input (a vector-Jacobian product).
        grads = self.op.backward(self.ctx, upstream)
        return [(p, None, g) for p, g in zip(self.parents, grads)]

    def _add_grad(self, acc: np.ndarray | None, g: Any) -> np.ndarray:
        # A broadcast input's gradient is summed back to the input's shape, here and only here.
        g = ops.unbroadcast(np.asarray(g), self.data.shape)
        if g.dtype != self.data.dtype:
            g = g.astype(self.data.dtype)
        return g if acc is None else acc + g

    def _recompute(self) -> None:
        ctx = Context(tuple(p.requires_grad for p in self.parents))
        self.data = self.op.forward(ctx, *[p.data for p in self.parents])
        self.ctx = ctx

    # -- properties ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (no copy)."""
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a single number, this tensor has shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut off from the graph."""
        return Tensor(self.data, dtype=self.data.dtype)

    def zero_grad(self) -> None:
        self.grad = None

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor(np.argmax(self.data, axis=axis))

    # -- arithmetic ----------------------------------------------------------------------------
    def __add__(self, other): return self._binary(ops.ADD, other)
    def __radd__(self, other): return self._binary(ops.ADD, other, reflected=True)
    def __sub__(self, other): return self._binary(ops.SUB, other)
    def __rsub__(self, other): return self._binary(ops.SUB, other, reflected=True)
    def __mul__(self, other): return self._binary(ops.MUL, other)
    def __rmul__(self, other): return self._binary(ops.MUL, other, reflected=True)
    def __truediv__(self, other): return self._binary(ops.DIV, other)
    def __rtruediv__(self, other): return self._binary(ops.DIV, other, reflected=True)
    def __neg__(self): return Tensor.apply(ops.NEG, self)

    def __pow__(self, k: float) -> Tensor:
        if not isinstance(k, Number):
            raise TypeError(f"the exponent of ** must be a number, got {type(k).__name__}")
        return Tensor.apply(ops.Pow(float(k)), self)

    def __matmul__(self, other: Tensor) -> Tensor:
        other = self._other(other)
        a, b = self.shape, other.shape
        if not a or not b:
            raise ValueError(f"matmul needs at least 1-D operands, got shapes {a} and {b}")
        if a[-1] != (b[0] if len(b) == 1 else b[-2]):
            raise ValueError(f"matmul: shapes {a} and {b} do not align "
                             f"({a[-1]} != {b[0] if len(b) == 1 else b[-2]})")
        return Tensor.apply(ops.MATMUL, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._other(other).__matmul__(self)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise max with another tensor or number."""
        return self._binary(ops.MAXIMUM, other)

    # -- functions -----------------------------------------------------------------------------
    def exp(self) -> Tensor: return Tensor.apply(ops.EXP, self)
    def log(self) -> Tensor: return Tensor.apply(ops.LOG, self)
    def sqrt(self) -> Tensor: return Tensor.apply(ops.SQRT, self)
    def abs(self) -> Tensor: return Tensor.apply(ops.ABS, self)
    def relu(self) -> Tensor: return Tensor.apply(ops.RELU, self)
    def sigmoid(self) -> Tensor: return Tensor.apply(ops.SIGMOID, self)
    def tanh(self) -> Tensor: return Tensor.apply(ops.TANH, self)
    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor: return Tensor.apply(ops.LeakyRelu(negative_slope), self)
    def elu(self, alpha: float = 1.0) -> Tensor: return Tensor.apply(ops.Elu(alpha), self)

    # -- reductions -------------------------------------------------------------------------------
    def _axis(self, axis: Any) -> Any:
        if axis is None:
            return None
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        for a in axes:
            if not -self.ndim <= a < self.ndim:
                raise ValueError(f"axis {a} is out of range for a tensor of shape {self.shape}")
        return axes[0] if isinstance(axis, int) else axes

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor.apply(ops.Sum(self._axis(axis), keepdims), self)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor.apply(ops.Mean(self._axis(axis), keepdims), self)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return Tensor.apply(ops.Max(self._axis(axis), keepdims), self)

    # -- shape ------------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> Tensor:
        shape = _shape(shape)
        known = int(np.prod([n for n in shape if n != -1]))
        free = shape.count(-1)
        if free > 1 or (free and (known == 0 or self.size % known)) or (not free and known != self.size):
            raise ValueError(f"cannot reshape a tensor of shape {self.shape} ({self.size} elements) into {shape}")
        target = tuple(self.size // known if n == -1 else n for n in shape)
        return Tensor.apply(ops.Reshape(target), self)

    def view(self, *shape: Any) -> Tensor:
        return self.reshape(*shape)

    def permute(self, *dims: int) -> Tensor:
        dims = _shape(dims)
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute{dims} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return Tensor.apply(ops.Permute(tuple(d % self.ndim for d in dims)), self)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's transpose); the last two by default."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return self.permute(*axes)

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        s, e = start_dim % max(self.ndim, 1), end_dim % max(self.ndim, 1)
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return self.reshape(shape)

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        return Tensor.apply(ops.GetItem(index), self)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        name = f", label={self.label!r}" if self.label else ""
        body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2)
        return f"Tensor({body}, dtype={self.data.dtype}{grad}{name})"


# --- creation ----------------------------------------------------------------------------------

def _shape(shape: Sequence[Any]) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def zeros(*shape: int, requires_grad: bool = False, dtype: Any = DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)


def ones(*shape: int, requires_grad: bool = False, dtype: Any = DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)


def randn(*shape: int, requires_grad: bool = False, dtype: Any = DEFAULT_DTYPE) -> Tensor:
    """Standard normal samples from the library's generator (see manual_seed)."""
    return Tensor(rng().standard_normal(_shape(shape)), requires_grad=requires_grad, dtype=dtype)


def rand(*shape: int, requires_grad: bool = False, dtype: Any = DEFAULT_DTYPE) -> Tensor:
    """Uniform [0, 1) samples from the library's generator."""
    return Tensor(rng().random(_shape(shape)), requires_grad=requires_grad, dtype=dtype)


def cat(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Concatenate along ``dim`` (PyTorch's torch.cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    ref = tensors[0].shape
    for t in tensors[1:]:
        if len(t.shape) != len(ref) or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != dim % len(ref)):
            raise ValueError(f"cat along dim {dim}: shapes {[x.shape for x in tensors]} differ outside that dim")
    return Tensor.apply(ops.Cat(dim % len(ref)), *tensors)


def stack(tensors: Iterable[Tensor], dim: int = 0) -> Tensor:
    """Stack along a new axis ``dim`` (PyTorch's torch.stack)."""
    tensors = list(tensors)
    return cat([t.reshape(t.shape[:dim % (t.ndim + 1)] + (1,) + t.shape[dim % (t.ndim + 1):]) for t in tensors], dim)
