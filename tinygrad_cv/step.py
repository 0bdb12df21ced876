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

    def __new__(cls, root: Node = None, grad: Any = None, by: str = "op", **kwargs: Any):
        if by == "module" and cls is Stepper:
            return super().__new__(ModuleStepper)
        if by not in ("op", "module"):
            raise ValueError(f"Stepper: by={by!r}; choose 'op' (one step per operation) or 'module'")
        return super().__new__(cls)

    def __init__(self, root: Node, grad: Any = None, by: str = "op", **kwargs: Any):
        if kwargs:
            raise TypeError(f"Stepper: unexpected arguments {', '.join(kwargs)} (model= goes with by='module')")
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


# -- module by module: the same events, grouped by the tensors' scope ---------------------------------

@dataclass
class ModuleForward:
    """The forward ops of one module (one run of the same ``scope``): ``output = module(inputs)``.

    ``scope`` is the module's dotted path ("features.0"); the loss, made outside any
    module, is its node's name ("loss"). ``ops`` are the primitive :class:`ForwardStep`\\ s
    inside, in order (open the step into them); ``output`` the node the module returns.
    """

    index: int
    number: int
    total: int
    scope: str
    module: Any                 # the nn.Module at ``scope`` (None: no model given, or the loss)
    ops: list[ForwardStep]
    output: Node
    inputs: list[Node]          # the nodes made outside the module that it reads (parameters not included)
    input_values: list[Any]
    params: list[tuple[str, Node]]
    kind: str = field(default="forward", init=False)

    @property
    def op_names(self) -> list[str]:
        return [e.op.name for e in self.ops]

    @property
    def result(self) -> Any:
        return self.ops[-1].result

    @property
    def dead_fraction(self) -> float | None:
        """For a module ending in a ReLU: the fraction of its outputs that are exactly 0 (None otherwise)."""
        if self.ops[-1].op.name != "relu":
            return None
        a = np.asarray(self.result)
        return float(np.count_nonzero(a == 0)) / a.size if a.size else 0.0


@dataclass
class ModuleBackward:
    """The backward edges of one module: the upstream gradient at its output, the downstream
    gradient at each of its inputs and its parameters' gradients (``ops``: the primitive edges)."""

    index: int
    number: int
    total: int
    scope: str
    module: Any
    ops: list[BackwardStep]
    output: Node
    upstream: Any                                   # d(root)/d(output)
    downstream: list[tuple[Node, Any]]              # this module's contribution to d(root)/d(input)
    param_grads: list[tuple[str, Node, Any]]        # (name, parameter, d(root)/d(parameter))
    root_name: str
    kind: str = field(default="backward", init=False)

    @property
    def op_names(self) -> list[str]:
        return list(dict.fromkeys(e.op.name for e in self.ops))


ModuleEvent = Union[ModuleForward, SeedStep, ModuleBackward]


def _runs(items: list, key) -> list[list]:
    """Consecutive items with the same key, as lists."""
    runs: list[list] = []
    for it in items:
        if runs and key(runs[-1][-1]) == key(it):
            runs[-1].append(it)
        else:
            runs.append([it])
    return runs


class ModuleStepper(Stepper):
    """A :class:`Stepper` whose steps are modules: ``Stepper(loss, by="module", model=net)``.

    The primitive events are the same (``ops_events``); consecutive ones made in the same
    ``scope`` are one module step. ``model`` (optional) names the parameters and the
    modules; without it a parameter is named ``<scope>.<the op's input name>``.
    """

    def __init__(self, root: Node, grad: Any = None, by: str = "module", model: Any = None):
        self.model = model
        self._param_names: dict[int, str] = {}
        self._modules: dict[str, Any] = {}
        if model is not None:
            self._param_names = {id(p): n for n, p in model.named_parameters()}
            self._modules = dict(model.named_modules()) if hasattr(model, "named_modules") else {}
        Stepper.__init__(self, root, grad)

    def _scope(self, node: Node) -> str:
        return getattr(node, "scope", "") or self.name(node)

    def _replay(self) -> None:
        super()._replay()
        self.ops_events = ops = self.events
        forward = [e for e in ops if isinstance(e, ForwardStep)]
        seed = next(e for e in ops if isinstance(e, SeedStep))
        backward = [e for e in ops if isinstance(e, BackwardStep)]
        events: list[Any] = []
        self._upto: list[int] = []          # for each module event: how many primitive events it completes
        fruns = _runs(forward, lambda e: self._scope(e.node))
        for k, run in enumerate(fruns, 1):
            inside = {id(e.node) for e in run}
            scope = self._scope(run[0].node)
            inputs, params, seen = [], [], set()
            for e in run:
                for slot, p in enumerate(e.node.parents):
                    if id(p) in inside or id(p) in seen:
                        continue
                    seen.add(id(p))
                    if self._is_param(p):
                        params.append((self._param_name(p, e, slot), p))
                    else:
                        inputs.append(p)
            events.append(ModuleForward(len(events), k, len(fruns), scope, self._modules.get(scope), run,
                                        run[-1].node, inputs, [p.data for p in inputs], params))
            self._upto.append(run[-1].index + 1)
        events.append(seed)
        self._upto.append(seed.index + 1)
        outputs = {e.scope: e.output for e in events if isinstance(e, ModuleForward)}
        bruns = _runs(backward, lambda e: self._scope(e.child))
        for k, run in enumerate(bruns, 1):
            scope = self._scope(run[0].child)
            inside = {id(e.child) for e in run}
            output = outputs.get(scope, run[0].child)
            down: dict[int, tuple[Node, Any]] = {}
            pgrads: list[tuple[str, Node, Any]] = []
            for e in run:
                if id(e.parent) in inside:
                    continue
                contribution = e.accumulated if e.previous is None else e.accumulated - e.previous
                if self._is_param(e.parent):
                    pgrads.append((self._param_name(e.parent, e, e.slot), e.parent, e.accumulated))
                elif id(e.parent) in down:
                    down[id(e.parent)] = (e.parent, down[id(e.parent)][1] + contribution)
                else:
                    down[id(e.parent)] = (e.parent, contribution)
            events.append(ModuleBackward(len(events), k, len(bruns), scope, self._modules.get(scope), run, output,
                                         self._final_grads.get(id(output)), list(down.values()), pgrads,
                                         self.name(self.root)))
            self._upto.append(run[-1].index + 1)
        self.events = events

    def _is_param(self, node: Node) -> bool:
        if id(node) in self._param_names:
            return True
        return node.is_leaf and node.requires_grad and not node.label and type(node).__name__ == "Parameter"

    def _param_name(self, node: Node, step: Any, slot: int) -> str:
        if id(node) in self._param_names:
            return self._param_names[id(node)]
        op = step.op if hasattr(step, "op") else None
        what = op.inputs[slot] if op is not None and slot < len(op.inputs) else f"p{slot}"
        what = {"w": "weight", "b": "bias"}.get(what, what)
        scope = self._scope(step.node if hasattr(step, "node") else step.child)
        return f"{scope}.{what}"

    def state(self, position: int | None = None) -> StepState:
        """Values and gradients known after ``position`` module steps (their primitive events all taken)."""
        pos = self.position if position is None else max(0, min(position, len(self.events)))
        ops_pos = self._upto[pos - 1] if pos else 0
        saved, self.events = self.events, self.ops_events
        try:
            st = Stepper.state(self, ops_pos)
        finally:
            self.events = saved
        return StepState(pos, st.values, st.grads, self.events[pos - 1] if pos else None)

    def __repr__(self) -> str:
        return f"ModuleStepper({len(self.events)} module steps, {len(self.ops_events)} ops, position={self.position})"
