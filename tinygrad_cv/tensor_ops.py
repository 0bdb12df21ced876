"""The tensor engine's operations, forward and backward side by side.

``forward(ctx, *parent_data)`` computes on NumPy arrays and saves in ``ctx`` what
backward needs; ``backward(ctx, upstream)`` returns one downstream gradient per
parent (upstream x local, the local Jacobian never formed). Gradients of broadcast
inputs come back in the broadcast shape; ``unbroadcast`` (in one place, used by
Tensor when it accumulates) sums them back to the input's shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .graph import Op


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"a gradient of shape {grad.shape} cannot belong to a tensor of shape {shape}")
    stretched = tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    if stretched:
        grad = grad.sum(axis=tuple(a - extra for a in stretched), keepdims=True)
    if grad.shape != shape:
        raise ValueError(f"a gradient of shape {grad.shape} cannot be summed back to shape {shape}")
    return grad


# --- elementwise binary ----------------------------------------------------------------

class Add(Op):
    name, symbol, formula, derivatives = "add", "+", "a+b", ("1", "1")
    def forward(self, ctx, a, b): return a + b
    def backward(self, ctx, up): return up, up                     # add distributes


class Sub(Op):
    name, symbol, formula, derivatives = "sub", "-", "a-b", ("1", "-1")
    def forward(self, ctx, a, b): return a - b
    def backward(self, ctx, up): return up, -up


class Mul(Op):
    name, symbol, formula, derivatives = "mul", "*", "a*b", ("b", "a")
    def forward(self, ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b
    def backward(self, ctx, up):
        a, b = ctx.saved_tensors
        return up * b, up * a                                       # mul swaps


class Div(Op):
    name, symbol, formula, derivatives = "div", "/", "a/b", ("1/b", "-a/b^2")
    def forward(self, ctx, a, b):
        ctx.save_for_backward(a, b)
        return a / b
    def backward(self, ctx, up):
        a, b = ctx.saved_tensors
        return up / b, -up * a / (b * b)


class Maximum(Op):
    name, formula = "maximum", "max(a,b)"
    derivatives = ("1 where a > b, 0 where a < b, 1/2 on a tie", "1 where b > a, 0 where b < a, 1/2 on a tie")
    def forward(self, ctx, a, b):
        out = np.maximum(a, b)
        ctx.route = (a > b) + 0.5 * (a == b)                        # max routes; ties split (torch.maximum)
        return out
    def backward(self, ctx, up):
        route = ctx.route.astype(up.dtype, copy=False)
        return up * route, up * (1 - route)


class MatMul(Op):
    name, symbol, inputs, formula = "matmul", "@", ("A", "B"), "A@B"
    derivatives = ("B^T: dA = upstream @ B^T", "A^T: dB = A^T @ upstream")

    def forward(self, ctx, a, b):
        ctx.save_for_backward(a, b)
        return a @ b

    def backward(self, ctx, up):
        # For C = A @ B: dA = dC @ B^T and dB = A^T @ dC (1-D operands promoted, then squeezed).
        a, b = ctx.saved_tensors
        if a.ndim == 1 and b.ndim == 1:                             # a dot product: d(a.b)/da = b
            return up * b, up * a
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        up2 = up
        if a.ndim == 1:
            up2 = np.expand_dims(up2, -2)
        if b.ndim == 1:
            up2 = np.expand_dims(up2, -1)
        da = up2 @ np.swapaxes(b2, -1, -2)
        db = np.swapaxes(a2, -1, -2) @ up2
        if a.ndim == 1:
            da = da.reshape(da.shape[:-2] + (a.shape[0],)) if da.ndim > 2 else da[0]
        if b.ndim == 1:
            db = db[..., 0]
        return da, db


class Where(Op):
    """``where(cond, a, b)``: a where cond holds, b elsewhere; cond is data, not an input."""
    name, formula = "where", "a if cond else b"
    derivatives = ("1 where cond, else 0", "1 where not cond, else 0")
    def __init__(self, cond: np.ndarray): self.cond = cond
    def forward(self, ctx, a, b): return np.where(self.cond, a, b)
    def backward(self, ctx, up):
        zero = np.zeros((), up.dtype)
        return np.where(self.cond, up, zero), np.where(self.cond, zero, up)   # where routes


# --- elementwise unary -----------------------------------------------------------------

class Pow(Op):
    name, formula = "pow", "a^k"
    def __init__(self, k: float): self.k = k
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(all="ignore"):     # 0**-1 = inf, (-1)**0.5 = nan: IEEE results, as in PyTorch, no warning
            return a ** self.k
    def backward(self, ctx, up):
        (a,) = ctx.saved_tensors
        if self.k == 0:                     # d(a^0)/da = 0 everywhere, also at a = 0 (as in PyTorch)
            return (np.zeros_like(a, dtype=np.result_type(up, a)),)
        with np.errstate(all="ignore"):
            return (up * (self.k * a ** (self.k - 1)),)
    @property
    def derivatives(self):
        return (f"{self.k:g}*a^{self.k - 1:g}",) if np.ndim(self.k) == 0 else ("k*a^(k-1)",)
    def __repr__(self): return f"**{self.k:g}" if np.ndim(self.k) == 0 else "**k"


class RPow(Op):
    """``c ** a`` for a number c: the exponent is the input."""
    name, formula = "rpow", "c^a"
    def __init__(self, c: float): self.c = c
    def forward(self, ctx, a):
        out = np.power(a.dtype.type(self.c), a)
        ctx.save_for_backward(out)
        return out
    def backward(self, ctx, up):
        with np.errstate(all="ignore"):
            return (up * ctx.saved_tensors[0] * np.log(up.dtype.type(self.c)),)
    @property
    def derivatives(self): return (f"{self.c:g}^a * ln {self.c:g}",)
    def __repr__(self): return f"{self.c:g}**"


class Sin(Op):
    name, formula, derivatives = "sin", "sin a", ("cos a",)
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        return np.sin(a)
    def backward(self, ctx, up): return (up * np.cos(ctx.saved_tensors[0]),)


class Cos(Op):
    name, formula, derivatives = "cos", "cos a", ("-sin a",)
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        return np.cos(a)
    def backward(self, ctx, up): return (-up * np.sin(ctx.saved_tensors[0]),)


class Clamp(Op):
    name, formula, derivatives = "clamp", "clamp(a, lo, hi)", ("1 where lo <= a <= hi, else 0",)
    def __init__(self, lo: float | None, hi: float | None): self.lo, self.hi = lo, hi
    def forward(self, ctx, a):
        ctx.inside = np.ones(a.shape, bool)
        if self.lo is not None:
            ctx.inside &= a >= self.lo
        if self.hi is not None:
            ctx.inside &= a <= self.hi
        return np.clip(a, self.lo, self.hi).astype(a.dtype, copy=False)
    def backward(self, ctx, up): return (up * ctx.inside,)                # clamp passes or stops
    def __repr__(self): return f"clamp({self.lo}, {self.hi})"


class Clone(Op):
    name, formula, derivatives = "clone", "a", ("1",)
    def forward(self, ctx, a): return a.copy()
    def backward(self, ctx, up): return (up,)


class Cast(Op):
    """A change of dtype (``.float()``, ``.double()``); the gradient goes back in the input's dtype."""
    name, formula, derivatives = "cast", "a", ("1",)
    def __init__(self, dtype: Any): self.dtype = np.dtype(dtype)
    def forward(self, ctx, a):
        ctx.dtype = a.dtype
        return a.astype(self.dtype)
    def backward(self, ctx, up): return (up.astype(ctx.dtype),)
    def __repr__(self): return f"to({self.dtype})"


class Neg(Op):
    name, symbol, formula, derivatives = "neg", "-", "-a", ("-1",)
    def forward(self, ctx, a): return -a
    def backward(self, ctx, up): return (-up,)


class Exp(Op):
    name, formula, derivatives = "exp", "e^a", ("e^a",)
    def forward(self, ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out
    def backward(self, ctx, up): return (up * ctx.saved_tensors[0],)


class Log(Op):
    name, formula, derivatives = "log", "log a", ("1/a",)
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)
    def backward(self, ctx, up): return (up / ctx.saved_tensors[0],)


class Sqrt(Op):
    name, formula, derivatives = "sqrt", "sqrt(a)", ("1/(2 sqrt(a))",)
    def forward(self, ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out
    def backward(self, ctx, up): return (up * 0.5 / ctx.saved_tensors[0],)


class Abs(Op):
    name, formula, derivatives = "abs", "|a|", ("sign(a)",)
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)
    def backward(self, ctx, up): return (up * np.sign(ctx.saved_tensors[0]),)


class Relu(Op):
    name, formula, derivatives = "relu", "relu a", ("1 if a > 0 else 0",)
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        k = _fused_relu(a)
        return np.maximum(a, 0) if k is None else k.relu_forward(a)
    def backward(self, ctx, up):
        (a,) = ctx.saved_tensors
        k = _fused_relu(a, up)
        return (up * (a > 0),) if k is None else (k.relu_backward(up, a),)


# Arrays from this size on go to the selected backend's one-pass ReLU when it has one (the
# numba backend's: backends/cpu/elementwise.py, shared over the cores); smaller ones stay in NumPy.
_FUSED_RELU_SIZE = 32_768


def _fused_relu(a: np.ndarray, up: np.ndarray | None = None):
    if a.size < _FUSED_RELU_SIZE or a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous:
        return None
    if up is not None and (up.dtype != a.dtype or up.shape != a.shape or not up.flags.c_contiguous):
        return None
    from . import backends
    k = backends.kernels()
    return k if hasattr(k, "relu_backward") else None


class LeakyRelu(Op):
    name, formula = "leaky_relu", "leaky_relu(a)"
    def __init__(self, slope: float = 0.01): self.slope = slope
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        return np.where(a > 0, a, a * a.dtype.type(self.slope))
    def backward(self, ctx, up):
        (a,) = ctx.saved_tensors
        return (up * np.where(a > 0, 1, self.slope).astype(up.dtype),)
    @property
    def derivatives(self): return (f"1 if a > 0 else {self.slope:g}",)
    def __repr__(self): return f"leaky_relu({self.slope:g})"


class Elu(Op):
    name, formula = "elu", "elu(a)"
    def __init__(self, alpha: float = 1.0): self.alpha = alpha
    def forward(self, ctx, a):
        out = np.where(a > 0, a, self.alpha * np.expm1(np.minimum(a, 0))).astype(a.dtype)
        ctx.save_for_backward(a, out)
        return out
    def backward(self, ctx, up):
        a, out = ctx.saved_tensors
        return (up * np.where(a > 0, 1, out + self.alpha).astype(up.dtype),)
    @property
    def derivatives(self): return (f"1 if a > 0 else {self.alpha:g}*e^a",)
    def __repr__(self): return f"elu({self.alpha:g})"


class Sigmoid(Op):
    name, formula, derivatives = "sigmoid", "sigma(a)", ("sigma(a)(1 - sigma(a))",)
    def forward(self, ctx, a):
        e = np.exp(-np.abs(a))                                      # never overflows
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype)
        ctx.save_for_backward(out)
        return out
    def backward(self, ctx, up):
        (out,) = ctx.saved_tensors
        return (up * out * (1 - out),)


class Tanh(Op):
    name, formula, derivatives = "tanh", "tanh a", ("1 - tanh(a)^2",)
    def forward(self, ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out
    def backward(self, ctx, up):
        (out,) = ctx.saved_tensors
        return (up * (1 - out * out),)


# --- reductions --------------------------------------------------------------------------

def _keep(grad: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """Re-insert reduced axes so that ``grad`` broadcasts against the input."""
    if axis is None or keepdims:
        return grad.reshape([1] * len(shape)) if axis is None and not keepdims else grad
    axes = (axis,) if isinstance(axis, int) else axis
    return np.expand_dims(grad, tuple(a % len(shape) for a in axes))


class Sum(Op):
    name, derivatives = "sum", ("1: the upstream gradient is copied to every input",)
    def __init__(self, axis: Any = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, ctx, a):
        ctx.shape = a.shape
        return np.sum(a, axis=self.axis, keepdims=self.keepdims)
    def backward(self, ctx, up):
        return (np.broadcast_to(_keep(up, ctx.shape, self.axis, self.keepdims), ctx.shape),)   # sum copies


class Mean(Op):
    name, derivatives = "mean", ("1/n for each of the n inputs averaged",)
    def __init__(self, axis: Any = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, ctx, a):
        out = np.mean(a, axis=self.axis, keepdims=self.keepdims)
        ctx.shape, ctx.n = a.shape, a.size // max(np.size(out), 1)
        return out
    def backward(self, ctx, up):
        g = _keep(up, ctx.shape, self.axis, self.keepdims) / up.dtype.type(ctx.n)
        return (np.broadcast_to(g, ctx.shape),)


class Max(Op):
    name, derivatives = "max", ("max routes: 1 for the largest input, 0 for the others (ties share)",)
    reduce = staticmethod(np.max)
    def __init__(self, axis: Any = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, ctx, a):
        out = self.reduce(a, axis=self.axis, keepdims=self.keepdims)
        ctx.save_for_backward(a, out)
        return out
    def backward(self, ctx, up):
        a, out = ctx.saved_tensors
        route = (a == _keep(out, a.shape, self.axis, self.keepdims))
        count = route.sum(axis=self.axis, keepdims=True)          # ties share the gradient
        return (route * (_keep(up, a.shape, self.axis, self.keepdims) / count).astype(a.dtype),)


class Min(Max):
    name, derivatives = "min", ("min routes: 1 for the smallest input, 0 for the others (ties share)",)
    reduce = staticmethod(np.min)


class Prod(Op):
    name, derivatives = "prod", ("the product of the other inputs",)
    def __init__(self, axis: int | None = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, ctx, a):
        ctx.save_for_backward(a)
        return np.prod(a, axis=self.axis, keepdims=self.keepdims)
    def backward(self, ctx, up):
        (a,) = ctx.saved_tensors
        flat = a.reshape(-1) if self.axis is None else a
        ax = 0 if self.axis is None else self.axis
        ones = np.ones_like(np.take(flat, [0], axis=ax))
        # the product of the others, without dividing (zeros allowed): left products x right products
        left = np.cumprod(np.concatenate([ones, np.take(flat, range(flat.shape[ax] - 1), axis=ax)], ax), axis=ax)
        rev = np.flip(flat, ax)
        right = np.flip(np.cumprod(np.concatenate([ones, np.take(rev, range(flat.shape[ax] - 1), axis=ax)], ax),
                                   axis=ax), ax)
        others = (left * right).reshape(a.shape)
        return (others * _keep(up, a.shape, self.axis, self.keepdims),)


class CumSum(Op):
    name, derivatives = "cumsum", ("each input counts in every later sum: the upstream summed from the end",)
    def __init__(self, axis: int): self.axis = axis
    def forward(self, ctx, a): return np.cumsum(a, axis=self.axis)
    def backward(self, ctx, up): return (np.flip(np.cumsum(np.flip(up, self.axis), axis=self.axis), self.axis),)


# --- shape ---------------------------------------------------------------------------------

class Reshape(Op):
    name, derivatives = "reshape", ("reshape moves no numbers: the gradient is reshaped back",)
    def __init__(self, shape: tuple[int, ...]): self.shape = shape
    def forward(self, ctx, a):
        ctx.shape = a.shape
        return a.reshape(self.shape)
    def backward(self, ctx, up): return (up.reshape(ctx.shape),)
    def __repr__(self): return f"reshape{self.shape}"


class Permute(Op):
    name, derivatives = "permute", ("the gradient is permuted back",)
    def __init__(self, axes: tuple[int, ...]): self.axes = axes
    def forward(self, ctx, a): return np.transpose(a, self.axes)
    def backward(self, ctx, up): return (np.transpose(up, np.argsort(self.axes)),)
    def __repr__(self): return f"permute{self.axes}"


class Expand(Op):
    name, derivatives = "expand", ("the copies' gradients are summed back (in Tensor._add_grad)",)
    def __init__(self, shape: tuple[int, ...]): self.shape = shape
    def forward(self, ctx, a): return np.broadcast_to(a, self.shape)
    def backward(self, ctx, up): return (up,)
    def __repr__(self): return f"expand{self.shape}"


class GetItem(Op):
    name, derivatives = "getitem", ("the gradient goes back to the picked elements, 0 elsewhere",)
    def __init__(self, index: Any):
        self.index = index
        parts = index if isinstance(index, tuple) else (index,)
        self.advanced = any(isinstance(p, (list, np.ndarray)) for p in parts)
    def forward(self, ctx, a):
        ctx.shape, ctx.dtype = a.shape, a.dtype
        return a[self.index]
    def backward(self, ctx, up):
        g = np.zeros(ctx.shape, dtype=ctx.dtype)
        if self.advanced:
            np.add.at(g, self.index, up)                           # repeated indices add up
        else:
            g[self.index] = up
        return (g,)


class Cat(Op):
    name, derivatives = "cat", ("each input gets its own slice of the gradient",)
    def __init__(self, dim: int): self.dim = dim
    def forward(self, ctx, *xs):
        ctx.sizes = [x.shape[self.dim] for x in xs]
        return np.concatenate(xs, axis=self.dim)
    def backward(self, ctx, up):
        return tuple(np.split(up, np.cumsum(ctx.sizes)[:-1], axis=self.dim))


ADD, SUB, MUL, DIV, MAXIMUM, MATMUL = Add(), Sub(), Mul(), Div(), Maximum(), MatMul()
NEG, EXP, LOG, SQRT, ABS, SIN, COS, CLONE = Neg(), Exp(), Log(), Sqrt(), Abs(), Sin(), Cos(), Clone()
RELU, SIGMOID, TANH = Relu(), Sigmoid(), Tanh()
