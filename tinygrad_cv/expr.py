"""A small, safe expression language for the command line: ``"(x + y) * z"`` -> a Value graph.

The text is parsed with :mod:`ast` and walked against an allow-list; nothing is
ever evaluated as Python. Allowed:

* numbers (``2``, ``0.5``, ``1e-3``) and names given values with ``--set name=value``;
* ``+ - * / **`` and unary minus, parentheses (the exponent of ``**`` must be a number);
* calls ``exp log tanh sigmoid relu`` (one argument), ``leaky_relu(x, slope)``,
  ``elu(x, alpha)`` (optional numeric second argument) and ``max(a, b)``.

Anything else (attributes, subscripts, other calls, lambdas, strings, ...) raises
:class:`ExprError` with one line naming what was refused.

Labels: each name is one Value labelled with that name (reused when it appears
twice). Every intermediate node gets a short name the way the course's figures
do: the output is ``f``, the nodes before it ``q``, ``r``, ``s``, ... in the
order they are computed (skipping names already used), so ``(x + y) * z`` gives
``q = x + y`` and ``f = q * z``. Numeric constants are labelled with their value.
"""
from __future__ import annotations

import ast
import math
import string
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .scalar import Constant, Value

MAX_LENGTH = 2000
FUNCTIONS = ("exp", "log", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "max")
_UNARY = ("exp", "log", "tanh", "sigmoid", "relu")
_OPTIONAL = {"leaky_relu": "slope", "elu": "alpha"}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_NAME_POOL = "qrstuvwabcghkmnp" + "".join(c for c in string.ascii_lowercase if c not in "qrstuvwabcghkmnpdef")


class ExprError(ValueError):
    """An expression or ``--set`` assignment that is refused; the message is one line."""


_DESCRIPTIONS = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambda",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts",
    ast.Set: "sets", ast.Compare: "comparisons", ast.BoolOp: "and/or", ast.IfExp: "if/else",
    ast.NamedExpr: "assignment (:=)", ast.Starred: "star arguments", ast.JoinedStr: "f-strings",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}


def _what(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}" if not isinstance(node.value, str) else "strings"
    return _DESCRIPTIONS.get(type(node), type(node).__name__)


@dataclass
class Expression:
    """A parsed expression: the ``root`` Value, the ``inputs`` by name and every named node."""

    source: str
    root: Value
    inputs: dict[str, Value]
    nodes: dict[str, Value] = field(default_factory=dict)   # every label -> node (inputs, q, r, ..., f)


class _Builder:
    def __init__(self, source: str, values: Mapping[str, float]):
        self.source = source
        self.values = values
        self.inputs: dict[str, Value] = {}
        self.pool = [c for c in _NAME_POOL if c not in values]
        self.made: list[Value] = []

    def refuse(self, what: str) -> ExprError:
        return ExprError(f"not allowed in an expression: {what} (allowed: numbers, names set with --set, "
                         f"+ - * / **, parentheses, {', '.join(FUNCTIONS)})")

    def number(self, node: ast.AST) -> float | None:
        """The value of a numeric literal (or minus one), else None."""
        sign = 1.0
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign = -sign if isinstance(node.op, ast.USub) else sign
            node = node.operand
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            try:
                v = float(node.value)
            except OverflowError:
                raise ExprError(f"the number {str(node.value)[:20]}... is too large") from None
            if not math.isfinite(v):
                raise ExprError("numbers must be finite")
            return sign * v
        return None

    def constant(self, v: float) -> Value:
        return Constant(v, label=f"{v:g}")

    def record(self, out: Value) -> Value:
        self.made.append(out)
        return out

    def build(self, node: ast.AST) -> Value:
        n = self.number(node)
        if n is not None:
            return self.constant(n)
        if isinstance(node, ast.Name):
            if node.id not in self.values:
                given = ", ".join(sorted(self.values)) or "none"
                raise ExprError(f"name {node.id!r} has no value: give it one with --set {node.id}=... "
                                f"(set: {given})")
            if node.id not in self.inputs:
                self.inputs[node.id] = Value(float(self.values[node.id]), label=node.id)
            return self.inputs[node.id]
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise self.refuse(f"the operator {type(node.op).__name__}")
            if op == "**":
                k = self.number(node.right)
                if k is None:
                    raise ExprError("the exponent of ** must be a number (as in x**2), not an expression")
                return self.record(self.build(node.left) ** k)
            return self.chain(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return self.record(-self.build(node.operand))
            if isinstance(node.op, ast.UAdd):
                return self.build(node.operand)
            raise self.refuse(f"the operator {type(node.op).__name__}")
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(_what(node))

    def chain(self, node: ast.BinOp) -> Value:
        """``a + b - c * d ...``: Python parses a flat chain as a left-leaning tree as deep as the chain is
        long; walk its left spine in a loop, so the length of a sum (bounded by MAX_LENGTH), not the
        recursion limit, decides what is accepted."""
        spine: list[tuple[str, ast.AST]] = []
        while isinstance(node, ast.BinOp) and _BINOPS.get(type(node.op)) in ("+", "-", "*", "/"):
            spine.append((_BINOPS[type(node.op)], node.right))
            node = node.left
        a = self.build(node)
        for op, right in reversed(spine):
            b = self.build(right)
            a = self.record({"+": a.__add__, "-": a.__sub__, "*": a.__mul__, "/": a.__truediv__}[op](b))
        return a

    def call(self, node: ast.Call) -> Value:
        if not isinstance(node.func, ast.Name):
            raise self.refuse("calls of anything but " + ", ".join(FUNCTIONS))
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise ExprError(f"unknown function {fname!r}: allowed functions are {', '.join(FUNCTIONS)}")
        args = list(node.args)
        if any(isinstance(a, ast.Starred) for a in args):
            raise self.refuse("star arguments")
        extra = _OPTIONAL.get(fname)
        for kw in node.keywords:
            if kw.arg is None or kw.arg != extra:
                raise ExprError(f"{fname}() takes no keyword argument {kw.arg or '**'!r}")
            args.append(kw.value)
        if fname in _UNARY:
            if len(args) != 1:
                raise ExprError(f"{fname}() takes one argument, got {len(args)}")
            return self.record(getattr(self.build(args[0]), fname)())
        if fname == "max":
            if len(args) != 2:
                raise ExprError(f"max() takes two arguments, got {len(args)}")
            a, b = self.build(args[0]), self.build(args[1])
            return self.record(a.max(b))
        if not 1 <= len(args) <= 2:
            raise ExprError(f"{fname}() takes one or two arguments ({fname}(x, {extra})), got {len(args)}")
        param = None
        if len(args) == 2:
            param = self.number(args[1])
            if param is None:
                raise ExprError(f"the {extra} of {fname}() must be a number")
        x = self.build(args[0])
        return self.record(getattr(x, fname)() if param is None else getattr(x, fname)(param))

    def name_nodes(self, root: Value) -> dict[str, Value]:
        nodes: dict[str, Value] = dict(self.inputs)
        pool = iter(self.pool)
        for v in self.made:
            if v.label:
                continue
            if v is root and "f" not in self.values:
                v.label = "f"
            else:
                label = next(pool, None)
                i = len(nodes)
                while label is None or label in nodes or label in self.values:
                    label, i = f"v{i}", i + 1
                v.label = label
            nodes[v.label] = v
        return nodes


def parse(source: str, values: Mapping[str, float] | None = None) -> Expression:
    """Build the Value graph of ``source`` with the named inputs in ``values``.

    Raises :class:`ExprError` (one line) for anything outside the language, an
    unset name, a name set but unused, or arithmetic that fails (log of a
    negative number, division by zero).
    """
    values = dict(values or {})
    if not isinstance(source, str) or not source.strip():
        raise ExprError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"the expression is longer than {MAX_LENGTH} characters")
    for name, v in values.items():
        if not name.isidentifier():
            raise ExprError(f"{name!r} is not a valid input name (use letters, digits and _)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ExprError(f"the value of {name} must be a finite number, got {v!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # "invalid decimal literal" etc.: the error below says it
            tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        where = f" at column {e.offset}" if e.offset else ""
        raise ExprError(f"cannot parse {source.strip()!r}: {e.msg}{where}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("the expression is nested too deeply or is not valid text") from None
    builder = _Builder(source, values)
    try:
        root = builder.build(tree.body)
    except ExprError:
        raise
    except RecursionError:
        raise ExprError("the expression is nested too deeply") from None
    except (ArithmeticError, ValueError, TypeError) as e:
        raise ExprError(f"cannot compute {source.strip()!r}: {e}") from None
    unused = sorted(set(values) - set(builder.inputs))
    if unused:
        raise ExprError(f"--set {unused[0]}=... is not used in the expression {source.strip()!r}")
    nodes = builder.name_nodes(root)
    return Expression(source.strip(), root, dict(builder.inputs), nodes)


def parse_assignment(text: str) -> tuple[str, float]:
    """``"x=-2"`` -> ``("x", -2.0)``; raises :class:`ExprError` for anything else."""
    if "=" not in text:
        raise ExprError(f"--set needs name=value, got {text!r}")
    name, _, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not name.isidentifier():
        raise ExprError(f"{name!r} is not a valid input name (in --set {text})")
    try:
        value = float(raw)
    except ValueError:
        raise ExprError(f"the value of {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ExprError(f"the value of {name} must be a finite number, got {raw!r}")
    return name, value


def parse_assignments(items: Iterable[str]) -> dict[str, float]:
    """Every ``name=value`` of the repeated ``--set`` option (a later one wins)."""
    return dict(parse_assignment(t) for t in items)
