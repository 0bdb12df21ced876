"""Stepper: the forward and the backward pass of a recorded graph, one step at a time.

``Stepper(root)`` turns ``trace(root)`` into a list of events:

* one :class:`ForwardStep` per operation node, in topological order: the node is
  recomputed from its inputs with ``op.forward`` (so after :meth:`Stepper.set`
  changes an input, the replay shows the new values, and any state an op keeps
  is refreshed);
* one :class:`SeedStep`: the root's gradient starts at 1 (df/df = 1);
* one :class:`BackwardStep` per edge child -> parent, children in reverse
  topological order and each child's inputs left to right: upstream gradient,
  local derivative, downstream = upstream x local, and the parent's gradient
  accumulated so far (a node used twice collects two contributions).

Edges into inputs that need no gradient (constant tensors) get no backward step,
as in ``Node.backward``. The Stepper keeps its gradients to itself: it never
writes ``.grad``; it does write ``.data`` (the replayed forward values), so the
graph and the events always agree.

    s = Stepper(f)
    while not s.done:
        print(s.next().describe())
    s.set("x", 3.0)          # replays; the position is kept
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Union

import numpy as np

from .graph import Node, Op, trace
from .scalar import Value

# style(text, role) -> text; roles: "name", "value", "grad", "op", "rule", "head", "dim"
Style = Callable[[str, str], str]
FULL_ARRAY = 16      # arrays with at most this many numbers are printed in full


def _plain(text: str, role: str) -> str:
    return text


def fmt_number(x: float) -> str:
    """A scalar the way the course writes it: -4, 0.5, 0.0183."""
    return f"{x:.4g}"


def summarize(x: Any, full: int = FULL_ARRAY) -> str:
    """A number, a small array in full, or a larger array as shape, dtype, norm, mean, min and max."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return fmt_number(x)
    a = np.asarray(x)
    if a.ndim == 0:
        return fmt_number(a.item())
    if a.size <= full:
        body = np.array2string(a, precision=4, suppress_small=True, separator=", ", max_line_width=10_000)
        return " ".join(body.split())
    if a.dtype.kind not in "fiub":
        return f"{a.shape} {a.dtype}"
    f = a.astype(np.float64, copy=False)
    return (f"shape {a.shape} {a.dtype}, norm {fmt_number(float(np.linalg.norm(f)))}, "
            f"mean {fmt_number(float(f.mean()))}, min {fmt_number(float(f.min()))}, "
            f"max {fmt_number(float(f.max()))}")


def op_expression(op: Op, parents: list[str]) -> str:
    """How the course writes node = op(inputs): "x + y", "-x", "x**2", "exp(x)", "leaky_relu(x, 0.1)"."""
    if op.symbol and len(parents) == 2:
        return f"{parents[0]} {op.symbol} {parents[1]}"
    if op.symbol == "-" and len(parents) == 1:
        return f"-{parents[0]}"
    if op.name == "pow" and hasattr(op, "k"):
        return f"{parents[0]}**{op.k:g}"
    extra = [f"{getattr(op, a):g}" for a in ("slope", "alpha") if isinstance(getattr(op, a, None), (int, float))]
    return f"{op.name}({', '.join(parents + extra)})"


def _operand(x: float, style: Style) -> str:
    """A number inside an expression; negatives in parentheses where a sign would read wrong."""
    text = style(fmt_number(x), "value")
    return f"({text})" if x < 0 else text


def local_rule_for(op: Op, slot: int, n_inputs: int) -> str:
    """The half of a two-input rule that belongs to input ``slot`` ("d(a*b)/db = a" for slot 1)."""
    rule = op.local_rule()
    parts = re.split(r"[,;]\s+(?=d\()", rule)
    if n_inputs == 2 and len(parts) == 2:
        return parts[slot]
    return rule


@dataclass
class ForwardStep:
    """Node ``name`` recomputed from its inputs: ``result = op(*inputs)``."""

    index: int                  # position in the event list
    number: int                 # 1-based among the forward steps
    total: int
    node: Node
    name: str
    op: Op
    input_names: list[str]
    inputs: list[Any]
    result: Any
    kind: str = field(default="forward", init=False)

    def describe(self, style: Style = _plain) -> str:
        s = style
        head = s(f"forward {self.number}/{self.total}", "head")
        expr = op_expression(self.op, [s(n, "name") for n in self.input_names])
        if all(isinstance(v, float) for v in self.inputs) and isinstance(self.result, float):
            if len(self.inputs) == 2 and self.op.symbol:
                shown = [s(fmt_number(self.inputs[0]), "value"), _operand(self.inputs[1], s)]
            elif len(self.inputs) == 1 and (self.op.symbol == "-" or self.op.name == "pow"):
                shown = [_operand(self.inputs[0], s)]
            else:
                shown = [s(fmt_number(v), "value") for v in self.inputs]
            values = op_expression(self.op, shown)
            return f"{head}  {s(self.name, 'name')} = {expr} = {values} = {s(fmt_number(self.result), 'value')}"
        shapes = op_expression(self.op, [str(np.shape(v)) for v in self.inputs])
        lines = [f"{head}  {s(self.name, 'name')} = {expr}    {s(shapes, 'dim')} -> {s(str(np.shape(self.result)), 'dim')}"]
        for n, v in zip(self.input_names, self.inputs):
            lines.append(f"    {s(n, 'name')}: {s(summarize(v), 'value')}")
        lines.append(f"    -> {s(self.name, 'name')}: {s(summarize(self.result), 'value')}")
        return "\n".join(lines)


@dataclass
class SeedStep:
    """The backward pass starts at the root: d(root)/d(root) = 1."""

    index: int
    node: Node
    name: str
    grad: Any
    kind: str = field(default="backward", init=False)

    def describe(self, style: Style = _plain) -> str:
        s = style
        return (f"{s('backward starts', 'head')}  d{self.name}/d{self.name} = "
                f"{s(summarize(self.grad), 'grad')}  ({s(self.name, 'name')}.grad = {s(summarize(self.grad), 'grad')})")


@dataclass
class BackwardStep:
    """One edge child -> parent: downstream = upstream x local, added to the parent's gradient."""

    index: int
    number: int                 # 1-based among the edge steps
    total: int
    child: Node
    parent: Node
    slot: int                   # which input of the child's op the parent is
    child_name: str
    parent_name: str
    root_name: str
    op: Op
    upstream: Any               # d(root)/d(child)
    local: float | None         # d(child)/d(parent) for scalar graphs; None for tensors
    local_rule: str
    downstream: Any             # this edge's contribution to d(root)/d(parent)
    previous: Any               # the parent's gradient before this edge (None: nothing yet)
    accumulated: Any            # ... and after it
    kind: str = field(default="backward", init=False)

    @property
    def edge(self) -> tuple[Node, Node]:
        return self.parent, self.child

    def describe(self, style: Style = _plain) -> str:
        s = style
        r, c, p = self.root_name, self.child_name, self.parent_name
        head = (f"{s(f'backward {self.number}/{self.total}', 'head')}  {s(c, 'name')} -> {s(p, 'name')}  "
                f"{s(f'[{self.op.name}: {self.local_rule}]', 'rule')}")
        if self.local is not None:
            mid = (f"    upstream d{r}/d{c} = {s(fmt_number(self.upstream), 'grad')}  *  "
                   f"local d{c}/d{p} = {s(fmt_number(self.local), 'value')}  =  "
                   f"downstream {s(fmt_number(self.downstream), 'grad')}")
            if self.previous is None:
                acc = f"    {s(p, 'name')}.grad = {s(fmt_number(self.accumulated), 'grad')}"
            else:
                acc = (f"    {s(p, 'name')}.grad = {fmt_number(self.previous)} + {fmt_number(self.downstream)} = "
                       f"{s(fmt_number(self.accumulated), 'grad')}  (used more than once: gradients add)")
            return "\n".join([head, mid, acc])
        lines = [head,
                 f"    upstream d{r}/d{c}: {s(summarize(self.upstream), 'grad')}",
                 f"    downstream to {s(p, 'name')}: {s(summarize(self.downstream), 'grad')}"]
        more = "  (gradients add)" if self.previous is not None else ""
        if np.shape(self.downstream) != np.shape(self.accumulated):
            more += f"  (summed over the broadcast axes back to {np.shape(self.accumulated)})"
        lines.append(f"    {s(p, 'name')}.grad so far: {s(summarize(self.accumulated), 'grad')}{more}")
        return "\n".join(lines)


Event = Union[ForwardStep, SeedStep, BackwardStep]


@dataclass
class StepState:
    """What is known at a position: values and gradients so far (keyed by ``id(node)``), the current event."""

    position: int
    values: dict[int, Any]
    grads: dict[int, Any]
    event: Event | None


def _accumulate(node: Node, acc: Any, g: Any) -> Any:
    """Add ``g`` to ``acc`` the way the node's own engine accumulates gradients."""
    if isinstance(node, Value):
        return g if acc is None else acc + g
    from .tensor_ops import unbroadcast

    g = unbroadcast(np.asarray(g), node.data.shape)
    if g.dtype != node.data.dtype:
        g = g.astype(node.data.dtype)
    return g if acc is None else acc + g


class Stepper:
    """Step through the forward and backward pass of the graph that produced ``root``.

    ``position`` counts the events already taken (0: nothing yet, only the inputs
    are known); ``next()`` takes one and returns it, ``back()`` undoes one and
    returns the event now current. ``grad`` seeds a non-scalar tensor root.
    """

    def __init__(self, root: Node, grad: Any = None):
        self.root = root
        self.graph = trace(root)
        self._seed_arg = grad
        self.position = 0
        self._names = self._make_names()
        self.events: list[Event] = []
        self._replay()

    # -- names ------------------------------------------------------------------------
    def _make_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        taken = {n.label for n in self.graph.nodes if n.label}
        for i, n in enumerate(self.graph.nodes):
            if n.label:
                names[id(n)] = n.label
            else:
                base = f"n{i}"
                while base in taken:
                    base += "_"
                names[id(n)] = base
        return names

    def name(self, node: Node) -> str:
        """The node's label, or ``n<i>`` (its topological index) when it has none."""
        return self._names[id(node)]

    # -- building the events ----------------------------------------------------------
    def _replay(self) -> None:
        nodes = self.graph.nodes
        forward_nodes = [n for n in nodes if n.op is not None]
        events: list[Event] = []
        for k, node in enumerate(forward_nodes, 1):
            inputs = [p.data for p in node.parents]
            result = node.op.forward(*inputs)
            if isinstance(node, Value):
                if isinstance(result, complex) or not isinstance(result, (int, float)):
                    raise ValueError(f"{self.name(node)} = {op_expression(node.op, [self.name(p) for p in node.parents])} "
                                     f"is not a real number for inputs {[fmt_number(v) for v in inputs]}")
                result = float(result)
                if not math.isfinite(result):
                    raise ValueError(f"{self.name(node)} overflowed to {result}")
            node.data = result
            events.append(ForwardStep(len(events), k, len(forward_nodes), node, self.name(node), node.op,
                                      [self.name(p) for p in node.parents], inputs, result))

        root = self.root
        seed = root._seed_grad(self._seed_arg)
        events.append(SeedStep(len(events), root, self.name(root), seed))
        grads: dict[int, Any] = {id(root): seed}
        k = 0
        for node in reversed(nodes):
            if node.op is None or id(node) not in grads:
                continue
            upstream = grads[id(node)]
            parents = node.parents
            datas = [p.data for p in parents]
            downs = node.op.backward(upstream, *datas, node.data)
            locals_ = node.op.local(*datas, node.data) if isinstance(node, Value) else None
            for i, (p, g) in enumerate(zip(parents, downs)):
                if g is None or not p.requires_grad:
                    continue
                k += 1
                previous = grads.get(id(p))
                grads[id(p)] = acc = _accumulate(p, previous, g)
                events.append(BackwardStep(
                    len(events), k, 0, node, p, i, self.name(node), self.name(p), self.name(root),
                    node.op, upstream, None if locals_ is None else float(locals_[i]),
                    local_rule_for(node.op, i, len(parents)),
                    g, previous, acc))
        for e in events:
            if isinstance(e, BackwardStep):
                e.total = k
        self.events = events
        self._final_grads = grads

    # -- moving -----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.position >= len(self.events)

    @property
    def current(self) -> Event | None:
        """The event taken last (None at position 0)."""
        return self.events[self.position - 1] if self.position else None

    @property
    def forward_count(self) -> int:
        return sum(1 for e in self.events if isinstance(e, ForwardStep))

    def next(self) -> Event | None:
        """Take the next event and return it (None when done)."""
        if self.done:
            return None
        self.position += 1
        return self.current

    def back(self) -> Event | None:
        """Undo the last event; returns the event now current (None at the start)."""
        if self.position:
            self.position -= 1
        return self.current

    def reset(self) -> None:
        self.position = 0

    def __iter__(self) -> Iterator[Event]:
        """The remaining events, taking each one."""
        while not self.done:
            yield self.next()

    # -- changing an input ----------------------------------------------------------------
    def leaf(self, label: str) -> Node:
        """The input node labelled ``label``."""
        for n in self.graph.leaves:
            if n.label == label:
                return n
        known = sorted(n.label for n in self.graph.leaves if n.label)
        raise KeyError(f"no input labelled {label!r}; inputs: {', '.join(known) or 'none'}")

    def set(self, label: str, value: Any) -> None:
        """Give input ``label`` a new value and replay both passes; the position is kept.

        If the replay fails (log of a negative number, division by zero), every
        value is restored and a ValueError names the problem.
        """
        node = self.leaf(label)
        if isinstance(node, Value):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{label} is a scalar: give a number, got {value!r}")
            new: Any = float(value)
        else:
            arr = np.asarray(value, dtype=node.data.dtype)
            try:
                new = np.broadcast_to(arr, node.data.shape).copy()
            except ValueError:
                raise ValueError(f"{label} has shape {node.data.shape}; got a value of shape {arr.shape}") from None
        saved = [(n, n.data) for n in self.graph.nodes]
        node.data = new
        try:
            self._replay()
        except (ArithmeticError, ValueError, TypeError) as e:
            for n, d in saved:
                n.data = d
            self._replay()
            raise ValueError(f"with {label} = {summarize(new)}: {e}") from None

    # -- reading the state ------------------------------------------------------------------
    def state(self, position: int | None = None) -> StepState:
        """Values and gradients known after ``position`` events (default: the current position)."""
        pos = self.position if position is None else max(0, min(position, len(self.events)))
        values = {id(n): n.data for n in self.graph.nodes if n.op is None}
        grads: dict[int, Any] = {}
        for e in self.events[:pos]:
            if isinstance(e, ForwardStep):
                values[id(e.node)] = e.result
            elif isinstance(e, SeedStep):
                grads[id(e.node)] = e.grad
            else:
                grads[id(e.parent)] = e.accumulated
        return StepState(pos, values, grads, self.events[pos - 1] if pos else None)

    def gradient(self, node: Node | str) -> Any:
        """The node's gradient after the whole backward pass (None if it gets none)."""
        if isinstance(node, str):
            node = self.graph[node]
        return self._final_grads.get(id(node))

    @property
    def gradients(self) -> dict[str, Any]:
        """Final gradients of the labelled inputs, by label, in graph order."""
        return {n.label: self._final_grads.get(id(n)) for n in self.graph.leaves
                if n.label and n.requires_grad}

    @property
    def values(self) -> dict[str, Any]:
        """Current values of every node, by name, in topological order."""
        return {self.name(n): n.data for n in self.graph.nodes}

    def __repr__(self) -> str:
        return f"Stepper({len(self.graph)} nodes, {len(self.events)} events, position={self.position})"
