"""Tensor: the tensor engine, a NumPy array per node.

Arithmetic follows NumPy's broadcasting; each operation is an Op from
tensor_ops.py, and the gradient that flows back into a broadcast input is summed
back to that input's shape in one place (``Tensor._add_grad``). Tensors are
float32 unless asked otherwise (floating input is converted; integer input such
as class labels stays integer).
"""
from __future__ import annotations

from collections import Counter

import functools
import inspect
from numbers import Number
from typing import Any, NamedTuple, Sequence

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


def torch_dims(fn: Any) -> Any:
    """Accept NumPy's ``axis=``/``keepdims=`` as PyTorch's ``dim=``/``keepdim=`` (one code path).

    NumPy's own functions on a tensor (``np.mean(t)`` calls ``t.mean(axis=None, dtype=None,
    out=None)``) land here too; their unused ``out=None``/``dtype=None`` are dropped.
    """
    own = inspect.signature(fn).parameters

    @functools.wraps(fn)
    def wrapper(x: Any, *args: Any, **kwargs: Any) -> Any:
        for unused in ("out", "dtype"):
            if unused not in own and unused in kwargs and kwargs[unused] is None:
                del kwargs[unused]
        for numpy_name, torch_name in (("axis", "dim"), ("keepdims", "keepdim")):
            if numpy_name in kwargs:
                if torch_name in kwargs:
                    raise TypeError(f"{fn.__name__}() got both {torch_name}= and {numpy_name}=")
                kwargs[torch_name] = kwargs.pop(numpy_name)
        return fn(x, *args, **kwargs)
    return wrapper


class Tensor(Node):
    """An ndarray node: ``Tensor(data, requires_grad=False, dtype=None, label=None)``.

    ``scope`` is the dotted name of the module whose forward created it ("" if none).
    """

    __slots__ = ("parents", "requires_grad", "scope", "ctx", "_grad")
    __array_priority__ = 1000          # NumPy on the left defers to Tensor (see __array_ufunc__)
    __hash__ = object.__hash__         # == compares elementwise; a tensor is still a dict key by identity

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, label: str | None = None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self._grad: Tensor | None = None
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
        out._grad = None
        out.label = ""
        out.seq = new_seq()
        out.scope = current_scope()
        if is_grad_enabled() and any(needs):
            out.op, out.parents, out.ctx, out.requires_grad = op, parents, ctx, True
        else:
            out.op, out.parents, out.ctx, out.requires_grad = None, (), None, False
        return out

    def _other(self, other: Any) -> Tensor:
        """``other`` as a Tensor; a Python number takes this tensor's dtype (PyTorch's rule), except
        that a float meeting an integer tensor is float32."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (Number, np.bool_, np.number)) and not isinstance(other, complex):
            kind = self.data.dtype.kind
            if kind == "f" or (kind in "iu" and isinstance(other, (int, np.integer))) or \
                    (kind == "b" and isinstance(other, (bool, np.bool_))):
                dtype = self.data.dtype
            elif isinstance(other, (float, np.floating)):
                dtype = DEFAULT_DTYPE
            else:
                dtype = np.int64
            return Tensor(np.asarray(other, dtype=dtype), dtype=dtype)
        return Tensor(other)

    def _binary(self, op: Op, other: Any, reflected: bool = False) -> Tensor:
        other = self._other(other)
        a, b = (other, self) if reflected else (self, other)
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{op.name}: shapes {a.shape} and {b.shape} do not broadcast together") from None
        ka, kb = a.data.dtype.kind, b.data.dtype.kind
        if ka != kb and "f" in (ka, kb):           # an integer or bool operand joins the float one's dtype
            a, b = (a.to(b.dtype), b) if kb == "f" else (a, b.to(a.dtype))
        elif op is ops.DIV and ka != "f":          # true division of integers gives float32, as in PyTorch
            a, b = a.to(DEFAULT_DTYPE), b.to(DEFAULT_DTYPE)
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

    def _add_grad(self, acc: Any, g: Any) -> np.ndarray:
        # A broadcast input's gradient is summed back to the input's shape, here and only here.
        g = ops.unbroadcast(np.asarray(g), self.data.shape)
        if g.dtype != self.data.dtype:
            g = g.astype(self.data.dtype)
        if isinstance(acc, Tensor):
            acc = acc.data
        return g if acc is None else acc + g

    @staticmethod
    def _shared(order: list[Node], grads: list[Any], seed: Any) -> Counter:
        """How many of backward's gradients, the seed and the nodes' values live in each block of
        memory, keyed by the id of the array that owns it (a view counts for its base)."""
        arrays = (*grads, seed, *(n.data for n in order))
        return Counter(id(a if a.base is None else a.base) for a in arrays if isinstance(a, np.ndarray))

    def _keep_grad(self, g: Any, shared: Counter) -> None:
        """A leaf's gradient is its own array, so that zero_() or -= on it touches nothing else.
        The chain rule's array is kept as it is when nothing else holds its memory (a kernel's
        fresh dW, or a view of it, or a sum); one whose memory another gradient, the seed or a
        node's value shares is copied, as the setter does. Copying every parameter's gradient
        was 13 ms of an 82 ms ResNet-18 step."""
        if (isinstance(g, np.ndarray) and g.dtype == self.data.dtype and g.shape == self.data.shape
                and shared[id(g if g.base is None else g.base)] <= 1):
            self._grad = Tensor._wrap(g)
        else:
            self.grad = g

    @property
    def grad(self) -> Tensor | None:
        """d(root)/d(this tensor) after ``backward()``: a Tensor without a graph (or None), as in PyTorch."""
        return self._grad

    @grad.setter
    def grad(self, g: Any) -> None:
        if g is not None and not isinstance(g, Tensor):
            g = np.asarray(g)
            # a leaf's gradient is its own array (zero_() or -= on it touches nothing else)
            g = Tensor._wrap(np.array(g, dtype=self.data.dtype) if self.op is None else g)
        if g is not None and g.shape != self.shape:
            raise ValueError(f"a gradient of shape {g.shape} cannot belong to a tensor of shape {self.shape}")
        self._grad = g

    @staticmethod
    def _wrap(array: np.ndarray) -> Tensor:
        """A Tensor around ``array`` as it is (its dtype, no copy), outside any graph. Built
        field by field as ``apply`` builds its outputs: backward wraps every node's gradient."""
        t = Tensor.__new__(Tensor)
        t.data = array if type(array) is np.ndarray else np.asarray(array)
        t._grad, t.op, t.parents, t.ctx, t.label = None, None, (), None, ""
        t.seq, t.requires_grad, t.scope = new_seq(), False, ""
        return t

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
    def size(self) -> _Size:
        """``t.size`` is the element count (NumPy); ``t.size()`` the shape, ``t.size(d)`` one length (PyTorch)."""
        return _Size(self)

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def grad_fn(self) -> Op | None:
        """The op that made this tensor (None for a leaf or a tensor outside any graph)."""
        return self.op

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        if not self.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (no copy)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.data, dtype=dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # NumPy on the left: ndarray + Tensor is Tensor.__radd__ (a Tensor); writing into an
        # ndarray (``p.data -= lr * p.grad``, out=...) or any other ufunc works on the arrays.
        mine = _UFUNCS.get(ufunc.__name__) if method == "__call__" and not kwargs else None
        if mine is not None and len(inputs) == 2:
            a, b = inputs
            return getattr(self, mine[0])(a) if b is self else getattr(self, mine[1])(b)
        if mine is not None and len(inputs) == 1:
            return getattr(self, mine[0])()
        raw = [x.data if isinstance(x, Tensor) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(x.data if isinstance(x, Tensor) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*raw, **kwargs)

    def item(self) -> Any:
        if self.data.size != 1:
            raise ValueError(f"item() needs a single number, this tensor has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be used as an index, "
                            f"got {self.dtype} of shape {self.shape}")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous: "
                               f"use .any() or .all()")
        return bool(self.item())

    def __format__(self, spec: str) -> str:
        return format(self.item(), spec) if self.data.size == 1 and spec else repr(self)

    def detach(self) -> Tensor:
        """The same data, cut off from the graph."""
        return Tensor(self.data, dtype=self.data.dtype)

    def clone(self) -> Tensor:
        """A copy of the data that stays in the graph (the gradient passes straight through)."""
        return Tensor.apply(ops.CLONE, self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # -- dtype and device ---------------------------------------------------------------------------
    def to(self, *args: Any, dtype: Any = None, device: Any = None, **_: Any) -> Tensor:
        """``.to(dtype)``, ``.to("cpu")``, ``.to(other_tensor)`` (its dtype)."""
        if device is not None:
            _check_device(device)
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, str) or type(a).__name__ == "device":
                _check_device(a)
            elif a is not None:
                dtype = a
        if dtype is None or np.dtype(dtype) == self.data.dtype:
            return self
        dtype = np.dtype(dtype)
        if dtype.kind != "f":                       # integers carry no gradient
            return Tensor._wrap(self.data.astype(dtype))
        return Tensor.apply(ops.Cast(dtype), self)

    def type(self, dtype: Any = None) -> Any:
        return str(self.dtype) if dtype is None else self.to(dtype)

    def float(self) -> Tensor: return self.to(np.float32)
    def double(self) -> Tensor: return self.to(np.float64)
    def half(self) -> Tensor: return self.to(np.float16)
    def long(self) -> Tensor: return self.to(np.int64)
    def int(self) -> Tensor: return self.to(np.int32)
    def bool(self) -> Tensor: return self.to(np.bool_)
    def cpu(self) -> Tensor: return self
    def contiguous(self) -> Tensor: return self

    def cuda(self, *_: Any) -> Tensor:
        _check_device("cuda")
        return self

    # -- comparisons: boolean tensors, outside the graph ------------------------------------------------
    def _compare(self, fn: Any, other: Any) -> Any:
        if not isinstance(other, (Tensor, Number, np.ndarray, np.generic, list, tuple)):
            return NotImplemented        # pytest.approx, None, a string: their own __eq__ decides
        other = self._other(other)
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(f"{fn.__name__}: shapes {self.shape} and {other.shape} do not broadcast together") from None
        return Tensor._wrap(fn(self.data, other.data))

    def __eq__(self, other): return self._compare(np.equal, other)
    def __ne__(self, other): return self._compare(np.not_equal, other)
    def __lt__(self, other): return self._compare(np.less, other)
    def __le__(self, other): return self._compare(np.less_equal, other)
    def __gt__(self, other): return self._compare(np.greater, other)
    def __ge__(self, other): return self._compare(np.greater_equal, other)
    def eq(self, other): return self == other
    def ne(self, other): return self != other
    def lt(self, other): return self < other
    def le(self, other): return self <= other
    def gt(self, other): return self > other
    def ge(self, other): return self >= other
    def __invert__(self): return Tensor._wrap(~self.data)
    def __and__(self, other): return self._compare(np.bitwise_and, other)
    def __or__(self, other): return self._compare(np.bitwise_or, other)
    def logical_not(self): return Tensor._wrap(np.logical_not(self.data))

    def any(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return Tensor._wrap(np.any(self.data, axis=self._dims(dim, "any"), keepdims=keepdim))

    def all(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return Tensor._wrap(np.all(self.data, axis=self._dims(dim, "all"), keepdims=keepdim))

    def allclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
        return bool(np.allclose(self.data, np.asarray(other), rtol=rtol, atol=atol))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where ``mask`` is True, this tensor elsewhere (the gradient flows where mask is False)."""
        cond = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        if cond.dtype != np.bool_:
            raise TypeError(f"masked_fill needs a boolean mask, got {cond.dtype}")
        np.broadcast_shapes(cond.shape, self.shape)
        return Tensor.apply(ops.Where(cond), self._other(value), self)

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
    def __abs__(self): return self.abs()
    def add(self, other, alpha=1): return self + (other if alpha == 1 else other * alpha)
    def sub(self, other, alpha=1): return self - (other if alpha == 1 else other * alpha)
    def mul(self, other): return self * other
    def div(self, other): return self / other

    def __pow__(self, k: Any) -> Tensor:
        if isinstance(k, Tensor):
            if k.requires_grad:                      # a^k = e^(k log a), for a > 0
                return (self.log() * k).exp()
            k = k.item() if k.ndim == 0 else k.data
        if not isinstance(k, (Number, np.ndarray)):
            raise TypeError(f"the exponent of ** must be a number or a tensor, got {type(k).__name__}")
        if self.data.dtype.kind != "f":
            if isinstance(k, (int, np.integer)) and k >= 0:
                return Tensor._wrap(self.data ** k)  # an integer power of integers stays integer
            return self.float() ** k
        return Tensor.apply(ops.Pow(float(k) if isinstance(k, Number) else np.asarray(k, self.dtype)), self)

    def __rpow__(self, c: Any) -> Tensor:
        if not isinstance(c, Number):
            raise TypeError(f"the base of ** must be a number, got {type(c).__name__}")
        x = self if self.data.dtype.kind == "f" else self.float()
        return Tensor.apply(ops.RPow(float(c)), x)

    def pow(self, k: Any) -> Tensor:
        return self ** k

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

    def matmul(self, other: Any) -> Tensor:
        return self @ other

    def mm(self, other: Any) -> Tensor:
        return self @ other

    def dot(self, other: Any) -> Tensor:
        return self @ other

    def maximum(self, other: Any) -> Tensor:
        """Elementwise max with another tensor or number."""
        return self._binary(ops.MAXIMUM, other)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise min with another tensor or number."""
        other = self._other(other)
        return where(self <= other, self, other)

    # -- in place (PyTorch's trailing underscore): allowed where no gradient is recorded -----------
    def _inplace(self, what: str) -> np.ndarray:
        if is_grad_enabled() and self.requires_grad:
            kind = "a leaf tensor that requires grad" if self.is_leaf else "a tensor that is part of a graph"
            raise RuntimeError(f"{what} in place on {kind} (shape {self.shape}): do the update inside "
                               f"`with tg.no_grad():`, as in PyTorch")
        if not isinstance(self.data, np.ndarray) or not self.data.flags.writeable:
            self.data = np.array(self.data)          # a NumPy scalar or a read-only view: own a copy
        return self.data

    def _update(self, ufunc: Any, other: Any, what: str) -> Tensor:
        data = self._inplace(what)
        value = other.data if isinstance(other, Tensor) else other
        try:
            ufunc(data, value, out=data, casting="same_kind")
        except (TypeError, ValueError) as e:
            raise (ValueError if isinstance(e, ValueError) else TypeError)(f"{what} in place: cannot write {np.asarray(value).dtype} of shape "
                          f"{np.shape(value)} into {self.dtype} of shape {self.shape} ({e})") from None
        return self

    def _iop(self, ufunc: Any, op: Op, other: Any, what: str) -> Tensor:
        # t += x: in place where nothing is recorded; a recorded non-leaf gets a new node, as t = t + x
        if is_grad_enabled() and self.requires_grad and not self.is_leaf:
            return self._binary(op, other)
        return self._update(ufunc, other, what)

    def __iadd__(self, other): return self._iop(np.add, ops.ADD, other, "+=")
    def __isub__(self, other): return self._iop(np.subtract, ops.SUB, other, "-=")
    def __imul__(self, other): return self._iop(np.multiply, ops.MUL, other, "*=")
    def __itruediv__(self, other): return self._iop(np.true_divide, ops.DIV, other, "/=")

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._update(np.add, other if alpha == 1 else _raw(other) * alpha, "add_")

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._update(np.subtract, other if alpha == 1 else _raw(other) * alpha, "sub_")

    def mul_(self, other: Any) -> Tensor: return self._update(np.multiply, other, "mul_")
    def div_(self, other: Any) -> Tensor: return self._update(np.true_divide, other, "div_")

    def zero_(self) -> Tensor:
        self._inplace("zero_")[...] = 0
        return self

    def fill_(self, value: Any) -> Tensor:
        self._inplace("fill_")[...] = _raw(value)
        return self

    def copy_(self, src: Any) -> Tensor:
        src = np.asarray(_raw(src))
        try:
            np.broadcast_to(src, self.shape)
        except ValueError:
            raise ValueError(f"copy_: a source of shape {src.shape} does not fit a tensor of shape {self.shape}") from None
        self._inplace("copy_")[...] = src
        return self

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        np.clip(self._inplace("clamp_"), min, max, out=self.data)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        self._inplace("normal_")[...] = rng().normal(mean, std, self.shape)
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        self._inplace("uniform_")[...] = rng().uniform(a, b, self.shape)
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        self._inplace("assignment t[...] = v")[_index(index)] = _raw(value)

    # -- functions -----------------------------------------------------------------------------
    def exp(self) -> Tensor: return Tensor.apply(ops.EXP, self)
    def log(self) -> Tensor: return Tensor.apply(ops.LOG, self)
    def sqrt(self) -> Tensor: return Tensor.apply(ops.SQRT, self)
    def abs(self) -> Tensor: return Tensor.apply(ops.ABS, self)
    def sin(self) -> Tensor: return Tensor.apply(ops.SIN, self)
    def cos(self) -> Tensor: return Tensor.apply(ops.COS, self)
    def relu(self) -> Tensor: return Tensor.apply(ops.RELU, self)
    def sigmoid(self) -> Tensor: return Tensor.apply(ops.SIGMOID, self)
    def tanh(self) -> Tensor: return Tensor.apply(ops.TANH, self)
    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor: return Tensor.apply(ops.LeakyRelu(negative_slope), self)
    def elu(self, alpha: float = 1.0) -> Tensor: return Tensor.apply(ops.Elu(alpha), self)
    def square(self) -> Tensor: return self * self
    def sign(self) -> Tensor: return Tensor._wrap(np.sign(self.data))

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        if min is None and max is None:
            raise ValueError("clamp needs min, max or both")
        return Tensor.apply(ops.Clamp(min, max), self)

    clip = clamp

    def softmax(self, dim: int = -1) -> Tensor:
        from .nn.functional import softmax
        return softmax(self, dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        from .nn.functional import log_softmax
        return log_softmax(self, dim)

    # -- reductions: dim=/keepdim= (PyTorch) or axis=/keepdims= (NumPy), one path (torch_dims) -------
    def _dim(self, dim: int, what: str, extra: int = 0) -> int:
        """``dim`` as an index in 0..ndim+extra-1; IndexError naming it and the ndim if out of range."""
        n = max(self.ndim + extra, 1)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{what}: dim must be an int, got {type(dim).__name__}")
        if not -n <= dim < n:
            raise IndexError(f"{what}: dim {dim} is out of range for a tensor with {self.ndim} dims "
                             f"(shape {self.shape}); expected a dim in [{-n}, {n - 1}]")
        return int(dim) % n

    def _dims(self, dim: Any, what: str) -> Any:
        if dim is None:
            return None
        if isinstance(dim, (tuple, list)):
            return tuple(self._dim(d, what) for d in dim)
        return self._dim(dim, what)

    def _axis(self, axis: Any) -> Any:        # the name the course's code uses
        return self._dims(axis, "reduction")

    @torch_dims
    def sum(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
        out = Tensor.apply(ops.Sum(self._dims(dim, "sum"), keepdim), self)
        return out if dtype is None else out.to(dtype)

    @torch_dims
    def mean(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        if self.data.dtype.kind != "f":              # PyTorch refuses; the mean of a mask is a fraction here
            return self.float().mean(dim, keepdim)
        return Tensor.apply(ops.Mean(self._dims(dim, "mean"), keepdim), self)

    def _extreme(self, op: type, name: str, dim: Any, keepdim: bool) -> Any:
        if isinstance(dim, Tensor):
            return self.maximum(dim) if name == "max" else self.minimum(dim)
        if dim is None:
            return Tensor.apply(op(None, False), self)
        d = self._dim(dim, name)
        values = Tensor.apply(op(d, keepdim), self)
        pick = np.argmax if name == "max" else np.argmin
        return MaxMin(values, Tensor._wrap(pick(self.data, axis=d, keepdims=keepdim)))

    @torch_dims
    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """``t.max()`` the largest element; ``t.max(dim)`` (values, indices); ``t.max(other)`` elementwise."""
        return self._extreme(ops.Max, "max", dim, keepdim)

    @torch_dims
    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        return self._extreme(ops.Min, "min", dim, keepdim)

    @torch_dims
    def amax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return Tensor.apply(ops.Max(self._dims(dim, "amax"), keepdim), self)

    @torch_dims
    def argmax(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return Tensor._wrap(np.asarray(np.argmax(self.data, axis=self._dims(dim, "argmax"), keepdims=keepdim)))

    @torch_dims
    def argmin(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return Tensor._wrap(np.asarray(np.argmin(self.data, axis=self._dims(dim, "argmin"), keepdims=keepdim)))

    @torch_dims
    def var(self, dim: Any = None, keepdim: bool = False, unbiased: bool = True, correction: Any = None) -> Tensor:
        """Sample variance: divides by n - 1 (PyTorch's default; correction=0 or unbiased=False: by n)."""
        axes = self._dims(dim, "var")
        c = (1 if unbiased else 0) if correction is None else correction
        n = self.size // max(int(np.prod(np.sum(self.data, axis=axes).shape)), 1) if self.size else 0
        d = self - self.mean(axes, keepdim=True)
        return (d * d).sum(axes, keepdim=keepdim) / max(n - c, 0)

    @torch_dims
    def std(self, dim: Any = None, keepdim: bool = False, unbiased: bool = True, correction: Any = None) -> Tensor:
        return self.var(dim, keepdim, unbiased, correction).sqrt()

    @torch_dims
    def norm(self, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Tensor:
        """The p-norm (2 by default; "fro" is 2, float("inf") the largest magnitude)."""
        if p in (2, "fro"):
            return (self * self).sum(dim, keepdim=keepdim).sqrt()
        if p == 1:
            return self.abs().sum(dim, keepdim=keepdim)
        if p == float("inf"):
            return self.abs().amax(dim, keepdim=keepdim)
        return (self.abs() ** p).sum(dim, keepdim=keepdim) ** (1.0 / p)

    @torch_dims
    def prod(self, dim: Any = None, keepdim: bool = False) -> Tensor:
        return Tensor.apply(ops.Prod(None if dim is None else self._dim(dim, "prod"), keepdim), self)

    @torch_dims
    def cumsum(self, dim: int, keepdim: bool = False) -> Tensor:
        return Tensor.apply(ops.CumSum(self._dim(dim, "cumsum")), self)

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

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def permute(self, *dims: int) -> Tensor:
        dims = tuple(self._dim(d, "permute") for d in _shape(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute{dims} is not a permutation of the {self.ndim} axes of shape {self.shape}")
        return Tensor.apply(ops.Permute(dims), self)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's transpose); the last two by default."""
        axes = list(range(self.ndim))
        d0, d1 = self._dim(dim0, "transpose"), self._dim(dim1, "transpose")
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return self.permute(*axes)

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with at most 2 dims, got shape {self.shape}; use transpose(d0, d1)")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if not self.ndim:
            return self.reshape(1)
        s, e = self._dim(start_dim, "flatten"), self._dim(end_dim, "flatten")
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return self.reshape(shape)

    def unsqueeze(self, dim: int) -> Tensor:
        d = self._dim(dim, "unsqueeze", extra=1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim: Any = None) -> Tensor:
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        ds = {self._dim(d, "squeeze") for d in (dim if isinstance(dim, (tuple, list)) else (dim,))} if self.ndim else set()
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in ds and n == 1)))

    def expand(self, *sizes: int) -> Tensor:
        sizes = _shape(sizes)
        if len(sizes) < self.ndim:
            raise ValueError(f"expand{sizes}: fewer sizes than the tensor's {self.ndim} dims (shape {self.shape})")
        own = (1,) * (len(sizes) - self.ndim) + self.shape
        target = tuple(o if n == -1 else n for n, o in zip(sizes, own))
        if any(o != 1 and o != n for o, n in zip(own, target)):
            raise ValueError(f"expand: a tensor of shape {self.shape} cannot be expanded to {sizes} "
                             f"(only dims of size 1 can grow)")
        return Tensor.apply(ops.Expand(target), self)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(*other.shape)

    def __getitem__(self, index: Any) -> Tensor:
        return Tensor.apply(ops.GetItem(_index(index)), self)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        name = f", label={self.label!r}" if self.label else ""
        body = np.array2string(self.data, precision=4, threshold=20, edgeitems=2)
        return f"Tensor({body}, dtype={self.data.dtype}{grad}{name})"


class MaxMin(NamedTuple):
    """What ``t.max(dim)`` / ``t.min(dim)`` return, as PyTorch: ``values`` and ``indices``."""
    values: Tensor
    indices: Tensor


class _Size(int):
    """``t.size``: the element count as NumPy has it, and callable as PyTorch's ``t.size(dim=None)``."""

    def __new__(cls, t: Tensor) -> _Size:
        obj = super().__new__(cls, t.data.size)
        obj._t = t
        return obj

    def __call__(self, dim: int | None = None) -> Any:
        t = self._t
        return tuple(t.shape) if dim is None else t.shape[t._dim(dim, "size")]


# NumPy ufuncs that, with a Tensor among their inputs, become Tensor operations:
# name -> (method when the tensor is the second operand, method when it is the first)
_UFUNCS = {"add": ("__radd__", "__add__"), "subtract": ("__rsub__", "__sub__"),
           "multiply": ("__rmul__", "__mul__"), "true_divide": ("__rtruediv__", "__truediv__"),
           "matmul": ("__rmatmul__", "__matmul__"), "power": ("__rpow__", "__pow__"),
           "equal": ("__eq__", "__eq__"), "not_equal": ("__ne__", "__ne__"),
           "less": ("__gt__", "__lt__"), "less_equal": ("__ge__", "__le__"),
           "greater": ("__lt__", "__gt__"), "greater_equal": ("__le__", "__ge__"),
           "maximum": ("maximum", "maximum"), "negative": ("__neg__",), "exp": ("exp",), "log": ("log",),
           "sqrt": ("sqrt",), "absolute": ("abs",), "sin": ("sin",), "cos": ("cos",), "tanh": ("tanh",)}


def _raw(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


def _check_device(device: Any) -> None:
    name = str(device)
    if name.split(":")[0] != "cpu":
        raise ValueError(f"tinygrad_cv tensors live in main memory: device {name!r} is not available "
                         f"(use 'cpu'; the GPU kernels are chosen with tg.set_backend('cuda'))")


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """``a`` where ``condition`` holds, ``b`` elsewhere (PyTorch's torch.where); numbers take the tensor's dtype."""
    cond = np.asarray(_raw(condition))
    if cond.dtype != np.bool_:
        raise TypeError(f"where needs a boolean condition, got {cond.dtype}")
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor(a)
    ta = a if isinstance(a, Tensor) else b._other(a)
    tb = b if isinstance(b, Tensor) else ta._other(b)
    if ta.dtype != tb.dtype:
        dtype = np.result_type(ta.dtype, tb.dtype)
        ta, tb = ta.to(dtype), tb.to(dtype)
    try:
        np.broadcast_shapes(cond.shape, ta.shape, tb.shape)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {ta.shape} and {tb.shape} do not broadcast together") from None
    return Tensor.apply(ops.Where(cond), ta, tb)


# --- helpers ----------------------------------------------------------------------------------

def _shape(shape: Sequence[Any]) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
