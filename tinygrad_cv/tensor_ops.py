"""The tensor engine's operations, forward and backward side by side.

``forward(*parent_data)`` computes on NumPy arrays; ``backward(upstream,
*parent_data, out)`` returns one downstream gradient per parent. Gradients of
broadcast inputs come back in the broadcast shape; ``unbroadcast`` (in one
place, used by Tensor when it accumulates) sums them back to the input's shape.
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
    name, symbol = "add", "+"
    def forward(self, a, b): return a + b
    def backward(self, up, a, b, out): return up, up               # add distributes
    def local_rule(self): return "d(a+b)/da = 1, d(a+b)/db = 1"


class Sub(Op):
    name, symbol = "sub", "-"
    def forward(self, a, b): return a - b
    def backward(self, up, a, b, out): return up, -up
    def local_rule(self): return "d(a-b)/da = 1, d(a-b)/db = -1"


class Mul(Op):
    name, symbol = "mul", "*"
    def forward(self, a, b): return a * b
    def backward(self, up, a, b, out): return up * b, up * a       # mul swaps
    def local_rule(self): return "d(a*b)/da = b, d(a*b)/db = a"


class Div(Op):
    name, symbol = "div", "/"
    def forward(self, a, b): return a / b
    def backward(self, up, a, b, out): return up / b, -up * a / (b * b)
    def local_rule(self): return "d(a/b)/da = 1/b, d(a/b)/db = -a/b^2"


class Maximum(Op):
    name = "maximum"
    def forward(self, a, b): return np.maximum(a, b)
    def backward(self, up, a, b, out):
        route = a >= b                                              # max routes
        return up * route, up * ~route
    def local_rule(self): return "gradient goes to the larger input"


class MatMul(Op):
    name, symbol = "matmul", "@"
    def forward(self, a, b): return a @ b

    def backward(self, up, a, b, out):
        # For C = A @ B: dA = dC @ B^T and dB = A^T @ dC (1-D operands promoted, then squeezed).
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

    def local_rule(self): return "d(A@B)/dA: upstream @ B^T;  d(A@B)/dB: A^T @ upstream"


# --- elementwise unary -----------------------------------------------------------------

class Pow(Op):
    name = "pow"
    def __init__(self, k: float): self.k = k
    def forward(self, a):
        with np.errstate(all="ignore"):     # 0**-1 = inf, (-1)**0.5 = nan: IEEE results, as in PyTorch, no warning
            return a ** self.k
    def backward(self, up, a, out):
        if self.k == 0:                     # d(a^0)/da = 0 everywhere, also at a = 0 (as in PyTorch)
            return (np.zeros_like(a, dtype=np.result_type(up, a)),)
        with np.errstate(all="ignore"):
            return (up * (self.k * a ** (self.k - 1)),)
    def local_rule(self): return f"d(a^k)/da = k*a^(k-1), k = {self.k:g}"
    def __repr__(self): return f"**{self.k:g}"


class Neg(Op):
    name, symbol = "neg", "-"
    def forward(self, a): return -a
    def backward(self, up, a, out): return (-up,)
    def local_rule(self): return "d(-a)/da = -1"


class Exp(Op):
    name = "exp"
    def forward(self, a): return np.exp(a)
    def backward(self, up, a, out): return (up * out,)
    def local_rule(self): return "d(e^a)/da = e^a"


class Log(Op):
    name = "log"
    def forward(self, a): return np.log(a)
    def backward(self, up, a, out): return (up / a,)
    def local_rule(self): return "d(log a)/da = 1/a"


class Sqrt(Op):
    name = "sqrt"
    def forward(self, a): return np.sqrt(a)
    def backward(self, up, a, out): return (up * 0.5 / out,)
    def local_rule(self): return "d(sqrt a)/da = 1/(2 sqrt a)"


class Abs(Op):
    name = "abs"
    def forward(self, a): return np.abs(a)
    def backward(self, up, a, out): return (up * np.sign(a),)
    def local_rule(self): return "d|a|/da = sign(a)"


class Relu(Op):
    name = "relu"
    def forward(self, a): return np.maximum(a, 0)
    def backward(self, up, a, out): return (up * (a > 0),)
    def local_rule(self): return "d(relu a)/da = 1 if a > 0 else 0"


class LeakyRelu(Op):
    name = "leaky_relu"
    def __init__(self, slope: float = 0.01): self.slope = slope
    def forward(self, a): return np.where(a > 0, a, a * a.dtype.type(self.slope))
    def backward(self, up, a, out): return (up * np.where(a > 0, 1, self.slope).astype(up.dtype),)
    def local_rule(self): return f"1 if a > 0 else {self.slope:g}"
    def __repr__(self): return f"leaky_relu({self.slope:g})"


class Elu(Op):
    name = "elu"
    def __init__(self, alpha: float = 1.0): self.alpha = alpha
    def forward(self, a): return np.where(a > 0, a, self.alpha * np.expm1(np.minimum(a, 0))).astype(a.dtype)
    def backward(self, up, a, out): return (up * np.where(a > 0, 1, out + self.alpha).astype(up.dtype),)
    def local_rule(self): return f"1 if a > 0 else alpha*e^a (alpha = {self.alpha:g})"
    def __repr__(self): return f"elu({self.alpha:g})"


class Sigmoid(Op):
    name = "sigmoid"
    def forward(self, a):
        e = np.exp(-np.abs(a))                                      # never overflows
        return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype)
    def backward(self, up, a, out): return (up * out * (1 - out),)
    def local_rule(self): return "d(sigma(a))/da = sigma(a)(1 - sigma(a))"


class Tanh(Op):
    name = "tanh"
    def forward(self, a): return np.tanh(a)
    def backward(self, up, a, out): return (up * (1 - out * out),)
    def local_rule(self): return "d(tanh a)/da = 1 - tanh(a)^2"


# --- reductions --------------------------------------------------------------------------

def _keep(grad: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """Re-insert reduced axes so that ``grad`` broadcasts against the input."""
    if axis is None or keepdims:
        return grad.reshape([1] * len(shape)) if axis is None and not keepdims else grad
    axes = (axis,) if isinstance(axis, int) else axis
    return np.expand_dims(grad, tuple(a % len(shape) for a in axes))


class Sum(Op):
    name = "sum"
    def __init__(self, axis: Any = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, a): return np.sum(a, axis=self.axis, keepdims=self.keepdims)
    def backward(self, up, a, out):
        return (np.broadcast_to(_keep(up, a.shape, self.axis, self.keepdims), a.shape),)   # sum copies
    def local_rule(self): return "d(sum a)/da_i = 1: the upstream gradient is copied to every input"


class Mean(Op):
    name = "mean"
    def __init__(self, axis: Any = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, a): return np.mean(a, axis=self.axis, keepdims=self.keepdims)
    def backward(self, up, a, out):
        n = a.size // max(np.size(out), 1)
        g = _keep(up, a.shape, self.axis, self.keepdims) / a.dtype.type(n)
        return (np.broadcast_to(g, a.shape),)
    def local_rule(self): return "d(mean a)/da_i = 1/n"


class Max(Op):
    name = "max"
    def __init__(self, axis: Any = None, keepdims: bool = False): self.axis, self.keepdims = axis, keepdims
    def forward(self, a): return np.max(a, axis=self.axis, keepdims=self.keepdims)
    def backward(self, up, a, out):
        o = _keep(out, a.shape, self.axis, self.keepdims)
        route = (a == o)
        count = route.sum(axis=self.axis, keepdims=True)          # ties share the gradient
        return (route * (_keep(up, a.shape, self.axis, self.keepdims) / count).astype(a.dtype),)
    def local_rule(self): return "max routes: 1 for the largest input, 0 for the others"


# --- shape ---------------------------------------------------------------------------------

class Reshape(Op):
    name = "reshape"
    def __init__(self, shape: tuple[int, ...]): self.shape = shape
    def forward(self, a): return a.reshape(self.shape)
    def backward(self, up, a, out): return (up.reshape(a.shape),)
    def local_rule(self): return "reshape moves no numbers: the gradient is reshaped back"
    def __repr__(self): return f"reshape{self.shape}"


class Permute(Op):
    name = "permute"
    def __init__(self, axes: tuple[int, ...]): self.axes = axes
    def forward(self, a): return np.transpose(a, self.axes)
    def backward(self, up, a, out): return (np.transpose(up, np.argsort(self.axes)),)
    def local_rule(self): return "the gradient is permuted back"
    def __repr__(self): return f"permute{self.axes}"


class GetItem(Op):
    name = "getitem"
    def __init__(self, index: Any):
        self.index = index
        parts = index if isinstance(index, tuple) else (index,)
        self.advanced = any(isinstance(p, (list, np.ndarray)) for p in parts)
    def forward(self, a): return a[self.index]
    def backward(self, up, a, out):
        g = np.zeros_like(a)
        if self.advanced:
            np.add.at(g, self.index, up)                           # repeated indices add up
        else:
            g[self.index] = up
        return (g,)
    def local_rule(self): return "the gradient goes back to the picked elements, 0 elsewhere"


class Cat(Op):
    name = "cat"
    def __init__(self, dim: int): self.dim = dim
    def forward(self, *xs): return np.concatenate(xs, axis=self.dim)
    def backward(self, up, *xs_and_out):
        xs = xs_and_out[:-1]
        cuts = np.cumsum([x.shape[self.dim] for x in xs])[:-1]
        return tuple(np.split(up, cuts, axis=self.dim))
    def local_rule(self): return "each input gets its own slice of the gradient"


ADD, SUB, MUL, DIV, MAXIMUM, MATMUL = Add(), Sub(), Mul(), Div(), Maximum(), MatMul()
NEG, EXP, LOG, SQRT, ABS = Neg(), Exp(), Log(), Sqrt(), Abs()
RELU, SIGMOID, TANH = Relu(), Sigmoid(), Tanh()
