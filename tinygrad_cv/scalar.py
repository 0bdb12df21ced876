"""Value: the scalar engine, one Python float per node (micrograd-sized).

Each operation below is written the way the course draws a gate: the forward
value, then the *local* derivative of the output with respect to each input.
Backward multiplies: downstream = upstream x local.

    add distributes:  d(a+b)/da = 1,     d(a+b)/db = 1
    mul swaps:        d(a*b)/da = b,     d(a*b)/db = a
    max routes:       d(max(a,b))/da = 1 if a >= b else 0
"""
from __future__ import annotations

import math
import operator
from numbers import Real
from typing import Union

from . import graph
from .graph import Node, Op

_next_seq = graph.new_seq

Number = Union[int, float]


class ScalarOp(Op):
    """An op on Python floats: ``forward(*inputs)`` and ``local(*inputs, out)``, the local
    derivative d(out)/d(input) for each input as numbers. A gate is a pure function of
    its inputs, so it needs no context: backward reads the inputs and the output."""


# --- binary gates -----------------------------------------------------------------

class Add(ScalarOp):
    name, symbol = "add", "+"
    formula, derivatives = "a+b", ("1", "1")
    def forward(self, a, b): return a + b
    def local(self, a, b, out): return 1.0, 1.0                 # add distributes


class Sub(ScalarOp):
    name, symbol = "sub", "-"
    formula, derivatives = "a-b", ("1", "-1")
    def forward(self, a, b): return a - b
    def local(self, a, b, out): return 1.0, -1.0


class Mul(ScalarOp):
    name, symbol = "mul", "*"
    formula, derivatives = "a*b", ("b", "a")
    def forward(self, a, b): return a * b
    def local(self, a, b, out): return b, a                     # mul swaps


class Div(ScalarOp):
    name, symbol = "div", "/"
    formula, derivatives = "a/b", ("1/b", "-a/b^2")
    def forward(self, a, b): return a / b
    def local(self, a, b, out): return 1.0 / b, -a / (b * b)


class Max(ScalarOp):
    name, symbol = "max", None
    formula = "max(a,b)"
    derivatives = ("1 if a > b, 0 if a < b, 1/2 on a tie", "1 if b > a, 0 if b < a, 1/2 on a tie")
    def forward(self, a, b): return a if a >= b else b
    def local(self, a, b, out):                     # max routes; a tie splits it, as torch.maximum does
        return (1.0, 0.0) if a > b else (0.0, 1.0) if b > a else (0.5, 0.5)


# --- unary gates --------------------------------------------------------------------

class Pow(ScalarOp):
    name = "pow"
    def __init__(self, k: float): self.k = k
    def forward(self, a): return self.power(a, self.k)
    def local(self, a, out):                        # d(a^0)/da = 0, also at a = 0 (as in PyTorch)
        return (0.0 if self.k == 0 else self.k * self.power(a, self.k - 1),)
    formula = "a^k"
    @property
    def derivatives(self): return (f"{self.k:g}*a^{self.k - 1:g}",)

    @staticmethod
    def power(a: float, k: float) -> float:
        """a ** k as IEEE floats (and PyTorch) have it: 0 ** -1 = inf, (-1) ** 0.5 = nan, never complex."""
        try:
            r = a ** k
            if type(r) is float:
                return r
        except (ZeroDivisionError, OverflowError):
            pass
        import numpy as np
        with np.errstate(all="ignore"):
            return float(np.power(np.float64(a), np.float64(k)))
    def __repr__(self): return f"**{self.k:g}"


class Neg(ScalarOp):
    name, symbol = "neg", "-"
    formula, derivatives = "-a", ("-1",)
    def forward(self, a): return -a
    def local(self, a, out): return (-1.0,)


class Exp(ScalarOp):
    name = "exp"
    formula, derivatives = "e^a", ("e^a",)
    def forward(self, a): return math.exp(a)
    def local(self, a, out): return (out,)                      # e^a is its own derivative


class Log(ScalarOp):
    name = "log"
    formula, derivatives = "log a", ("1/a",)
    def forward(self, a):
        if a <= 0:
            raise ValueError(f"log of a non-positive number: {a!r}")
        return math.log(a)
    def local(self, a, out): return (1.0 / a,)


class Tanh(ScalarOp):
    name = "tanh"
    formula, derivatives = "tanh a", ("1 - tanh(a)^2",)
    def forward(self, a): return math.tanh(a)
    def local(self, a, out): return (1.0 - out * out,)


class Sigmoid(ScalarOp):
    name = "sigmoid"
    formula, derivatives = "sigma(a)", ("sigma(a)(1 - sigma(a))",)
    def forward(self, a):
        if a >= 0:
            return 1.0 / (1.0 + math.exp(-a))
        e = math.exp(a)
        return e / (1.0 + e)
    def local(self, a, out): return (out * (1.0 - out),)


class Relu(ScalarOp):
    name = "relu"
    formula, derivatives = "relu a", ("1 if a > 0 else 0",)
    def forward(self, a): return a if a > 0 else 0.0
    def local(self, a, out): return (1.0 if a > 0 else 0.0,)


class LeakyRelu(ScalarOp):
    name = "leaky_relu"
    def __init__(self, slope: float = 0.01): self.slope = slope
    def forward(self, a): return a if a > 0 else self.slope * a
    def local(self, a, out): return (1.0 if a > 0 else self.slope,)
    formula = "leaky_relu(a)"
    @property
    def derivatives(self): return (f"1 if a > 0 else {self.slope:g}",)
    def __repr__(self): return f"leaky_relu({self.slope:g})"


class Elu(ScalarOp):
    name = "elu"
    def __init__(self, alpha: float = 1.0): self.alpha = alpha
    def forward(self, a): return a if a > 0 else self.alpha * (math.exp(a) - 1.0)
    def local(self, a, out): return (1.0 if a > 0 else out + self.alpha,)
    formula = "elu(a)"
    @property
    def derivatives(self): return (f"1 if a > 0 else {self.alpha:g}*e^a",)
    def __repr__(self): return f"elu({self.alpha:g})"


ADD, SUB, MUL, DIV, MAX = Add(), Sub(), Mul(), Div(), Max()
NEG, EXP, LOG, TANH, SIGMOID, RELU = Neg(), Exp(), Log(), Tanh(), Sigmoid(), Relu()


def _check_number(x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, Real):
        raise TypeError(f"Value holds a real number, got {type(x).__name__}: {x!r}")
    return float(x)


class Value(Node):
    """A scalar node. ``Value(-2.0, label="x")``; arithmetic with Values and numbers records a graph."""

    # A gate has one or two inputs, held in two slots rather than a tuple: one object
    # per node instead of two halves the work of Python's cycle collector, which is
    # most of a scalar graph's cost (forward ran 2.4x faster).
    __slots__ = ("_a", "_b")
    _zero_grad = 0.0
    requires_grad = True          # every Value takes part in backward; a Constant does not

    def __init__(self, data: Number, label: str = "", _op: Op | None = None, _parents: tuple = ()):
        self.data = data if type(data) is float else _check_number(data)
        self.grad = 0.0
        self.op = _op
        if _parents:
            self._a, self._b = (tuple(_parents) + (None, None))[:2]
        else:                                       # an input, or a number lifted into a Constant
            self._a = self._b = None
        self.label = label
        self.seq = _next_seq()

    @property
    def parents(self) -> tuple[Value, ...]:
        """The inputs of the gate that made this value (empty for an input)."""
        a, b = self._a, self._b
        return () if a is None else (a,) if b is None else (a, b)

    # -- recording: see _gate and _record below (the hot path of the scalar engine) -------
    def _unary(self, op: ScalarOp) -> Value:
        return _record(op.forward(self.data), op, self, None)

    # -- what the graph's backward walk asks of a node (see graph.Node) ------------------
    def _seed_grad(self, grad: Number | None) -> float:
        return 1.0 if grad is None else _check_number(grad)

    def _chain(self, upstream: float) -> tuple[tuple[Value, float, float], ...]:
        # Through this gate: downstream = upstream x local, for each input (the edge-by-edge
        # view the Stepper records; backward itself runs _propagate below).
        a, b = self._a, self._b
        if b is None:
            (local_a,) = self.op.local(a.data, self.data)
            return ((a, local_a, upstream * local_a),)
        local_a, local_b = self.op.local(a.data, b.data, self.data)
        return ((a, local_a, upstream * local_a), (b, local_b, upstream * local_b))

    _add_grad = staticmethod(operator.add)      # float + float (a builtin)

    def _push_inputs(self, seen: set, push) -> None:
        # graph.Node._push_inputs for the two slots (no parents tuple built): 23 -> 18 ms of
        # topological order on a micrograd-sized training step
        a = self._a
        if a is not None:
            if a not in seen:
                seen.add(a)
                push(a)
            b = self._b
            if b is not None and b not in seen:
                seen.add(b)
                push(b)

    def _propagate(self, upstream: float, on_edge=None) -> None:
        # graph.Node._propagate spelled out for two float inputs: downstream = upstream x local,
        # added to each input's gradient so far. A training step runs this ~70,000 times, and
        # without the (parent, local, downstream) tuples the chain rule takes half the time
        # (31.6 -> 14.5 ms). Add and Mul, nearly every node of a network, have their locals
        # (Add.local: 1, 1; Mul.local: b, a) written out: no second Python call.
        if on_edge is not None:                     # the stepper: every edge as a record
            return Node._propagate(self, upstream, on_edge)
        a, b, op = self._a, self._b, self.op
        if op is ADD:                                          # add distributes
            down_a = down_b = upstream
        elif op is MUL:                                        # mul swaps
            down_a, down_b = upstream * b.data, upstream * a.data
        elif b is None:
            (local_a,) = op.local(a.data, self.data)
            down_a = upstream * local_a
        else:
            local_a, local_b = op.local(a.data, b.data, self.data)
            down_a, down_b = upstream * local_a, upstream * local_b
        if a.requires_grad:
            previous = a._walk_grad
            a._walk_grad = down_a if previous is None else previous + down_a
        if b is not None and b.requires_grad:
            previous = b._walk_grad
            b._walk_grad = down_b if previous is None else previous + down_b

    def _recompute(self) -> None:
        self.data = self.op.forward(*[p.data for p in self.parents])

    # -- arithmetic (made by _gate below: the op, and the same sum done with floats) ------
    def __neg__(self): return self._unary(NEG)

    def __pow__(self, k: Number) -> Value:
        if isinstance(k, Value):
            raise TypeError("Value ** Value is not supported: the exponent must be a number")
        return self._unary(Pow(_check_number(k)))

    # -- functions --------------------------------------------------------------------
    def exp(self) -> Value: return self._unary(EXP)
    def log(self) -> Value: return self._unary(LOG)
    def tanh(self) -> Value: return self._unary(TANH)
    def sigmoid(self) -> Value: return self._unary(SIGMOID)
    def relu(self) -> Value: return self._unary(RELU)
    def leaky_relu(self, slope: float = 0.01) -> Value: return self._unary(LeakyRelu(slope))
    def elu(self, alpha: float = 1.0) -> Value: return self._unary(Elu(alpha))

    def zero_grad(self) -> None:
        self.grad = 0.0

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.6g}, grad={self.grad:.6g})"


_new = object.__new__


class Constant(Value):
    """A number written into an expression (the 2 in ``2 * x``): a leaf that gets no gradient."""

    __slots__ = ()
    requires_grad = False


def _lift(x: Value | Number) -> Value:
    return x if isinstance(x, Value) else Constant(x)


def _record(data: float, op: ScalarOp, a: Value, b: Value | None) -> Value:
    """A new Value made by ``op`` from ``a`` (and ``b``), recorded only while gradients are enabled."""
    v = _new(Value)
    v.data = data
    v.grad = 0.0
    v.label = ""
    v.seq = _next_seq()
    if graph._grad_enabled:
        v.op, v._a, v._b = op, a, b
    else:
        v.op, v._a, v._b = None, None, None
    return v


def _gate(op: ScalarOp, fn, name: str, reflected: bool = False):
    """``Value.__mul__`` and friends: ``fn`` (operator.mul, ...) is ``op.forward`` on two floats.

    The body is _record written out, one Python call per recorded node instead of three:
    a training step of a micrograd-sized MLP records ~70,000 of them."""
    value, lift, new, seq, g = Value, _lift, _new, _next_seq, graph
    if reflected:                                   # 2 * x: the number is the left input
        def method(self, other):
            other = lift(other)
            v = new(value)
            v.data = fn(other.data, self.data)
            v.grad, v.label, v.seq = 0.0, "", seq()
            if g._grad_enabled:
                v.op, v._a, v._b = op, other, self
            else:
                v.op, v._a, v._b = None, None, None
            return v
    else:
        def method(self, other):
            if type(other) is not value:
                other = lift(other)
            v = new(value)
            v.data = fn(self.data, other.data)
            v.grad, v.label, v.seq = 0.0, "", seq()
            if g._grad_enabled:
                v.op, v._a, v._b = op, self, other
            else:
                v.op, v._a, v._b = None, None, None
            return v
    method.__name__ = method.__qualname__ = name
    return method


for _name, _op, _fn in (("add", ADD, operator.add), ("sub", SUB, operator.sub),
                        ("mul", MUL, operator.mul), ("truediv", DIV, operator.truediv)):
    setattr(Value, f"__{_name}__", _gate(_op, _fn, f"__{_name}__"))
    setattr(Value, f"__r{_name}__", _gate(_op, _fn, f"__r{_name}__", reflected=True))
Value.max = _gate(MAX, MAX.forward, "max")
Value.max.__doc__ = "max(self, other), the larger of the two (a tie sends half the gradient each way)."
