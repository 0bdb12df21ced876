"""Stepper: the forward and the backward pass of a recorded graph, one step at a time.

``Stepper(root)`` turns ``trace(root)`` into a list of events:

* one :class:`ForwardStep` per operation node, in topological order: the node is
  recomputed from its inputs with its op's forward (so after :meth:`Stepper.set`
  changes an input, the replay shows the new values, and each op's saved context
  is refreshed);
* one :class:`SeedStep`: the root's gradient starts at 1 (df/df = 1);
* one :class:`BackwardStep` per edge child -> parent, exactly the edges of the
  engine's own backward walk (:func:`tinygrad_cv.graph.chain_rule`, the one
  chain rule): upstream gradient, local derivative, downstream = upstream x local,
  and the parent's gradient accumulated so far (a node used twice collects two
  contributions).

Inputs that need no gradient (numbers written into an expression, constant tensors)
get no backward step, as in ``Node.backward``. The Stepper keeps its gradients to
itself: it never writes ``.grad``; it does write ``.data`` (the replayed forward
values), so the graph and the events always agree. The events are data; the words
a person reads are written by ``viz`` (``viz.text.describe``).

    s = Stepper(f)
    while not s.done:
        print(viz.text.describe(s.next()))
    s.set("x", 3.0)          # replays; the position is kept
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

import numpy as np

from .graph import Node, Op, backward_edges, trace


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


@dataclass
class SeedStep:
    """The backward pass starts at the root: d(root)/d(root) = 1."""

    index: int
    node: Node
    name: str
    grad: Any
    kind: str = field(default="backward", init=False)


@dataclass
class BackwardStep:
    """One edge child -> parent of the engine's backward walk: downstream = upstream x local,
    added to the parent's gradient (see :class:`tinygrad_cv.graph.BackwardEdge`)."""

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
    downstream: Any             # this edge's contribution to d(root)/d(parent)
    previous: Any               # the parent's gradient before this edge (None: nothing yet)
    accumulated: Any            # ... and after it
    kind: str = field(default="backward", init=False)

    @property
    def edge(self) -> tuple[Node, Node]:
        return self.parent, self.child

    @property
    def local_rule(self) -> str:
        """d(child)/d(parent) as the op gives it, in the op's own input names."""
        return self.op.derivative(self.slot)


Event = Union[ForwardStep, SeedStep, BackwardStep]


@dataclass
class StepState:
    """What is known at a position: values and gradients so far (keyed by ``id(node)``), the current event."""

    position: int
    values: dict[int, Any]
    grads: dict[int, Any]
    event: Event | None


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
            elif n.is_leaf and not n.requires_grad and isinstance(n.data, float):
                names[id(n)] = f"{n.data:g}"            # a number in the expression is named by itself
            else:
                base = f"n{i}"
                while base in taken:
                    base += "_"
                names[id(n)] = base
        return names

    def name(self, node: Node) -> str:
        """The node's label; a constant number's own value; else ``n<i>`` (its topological index)."""
        return self._names[id(node)]

    # -- building the events ----------------------------------------------------------
    def _replay(self) -> None:
        nodes = self.graph.nodes
        forward_nodes = [n for n in nodes if not n.is_leaf]
        events: list[Event] = []
        for k, node in enumerate(forward_nodes, 1):
            inputs = [p.data for p in node.parents]
            node._recompute()
            _check_real(node.data, lambda: self.name(node))
            events.append(ForwardStep(len(events), k, len(forward_nodes), node, self.name(node), node.op,
                                      [self.name(p) for p in node.parents], inputs, node.data))

        root = self.root
        seed = root._seed_grad(self._seed_arg)
        events.append(SeedStep(len(events), root, self.name(root), seed))
        grads: dict[int, Any] = {}
        first = len(events)
        for edge in backward_edges(nodes, seed, grads):      # the engine's own chain rule
            events.append(BackwardStep(
                len(events), len(events) - first + 1, 0, edge.child, edge.parent, edge.slot,
                self.name(edge.child), self.name(edge.parent), self.name(root), edge.child.op,
                edge.upstream, edge.local, edge.downstream, edge.previous, edge.accumulated))
        for e in events[first:]:
            e.total = len(events) - first
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
        if isinstance(node.data, float):
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
            raise ValueError(f"with {label} = {new:g}: {e}" if isinstance(new, float)
                             else f"with {label} of shape {np.shape(new)}: {e}") from None

    # -- reading the state ------------------------------------------------------------------
    def state(self, position: int | None = None) -> StepState:
        """Values and gradients known after ``position`` events (default: the current position)."""
        pos = self.position if position is None else max(0, min(position, len(self.events)))
        values = {id(n): n.data for n in self.graph.nodes if n.is_leaf}
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
    def constants(self) -> list[Node]:
        """The leaves that take no gradient: numbers written into the expression, constant tensors."""
        return [n for n in self.graph.leaves if not n.requires_grad]

    @property
    def values(self) -> dict[str, Any]:
        """Current values of every node, by name, in topological order."""
        return {self.name(n): n.data for n in self.graph.nodes}

    def __repr__(self) -> str:
        return f"Stepper({len(self.graph)} nodes, {len(self.events)} events, position={self.position})"


def _check_real(data: Any, name) -> None:
    """A replayed scalar must stay a finite real number (log of a negative, overflow)."""
    if isinstance(data, complex):
        raise ValueError(f"{name()} is not a real number ({data})")
    if isinstance(data, float) and not math.isfinite(data):
        raise ValueError(f"{name()} overflowed to {data}")
