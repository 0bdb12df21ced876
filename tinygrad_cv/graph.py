"""The node machinery shared by the scalar and the tensor engine.

Every result of an operation is a :class:`Node` that remembers the :class:`Op`
that made it and its parents. :func:`chain_rule` walks the recorded graph in
reverse topological order and applies the chain rule edge by edge:

    downstream gradient = upstream gradient x local derivative

``Node.backward`` and the Stepper both run that one walk.

Nodes are numbered as they are created. A node's parents always exist before
the node itself, so sorting the nodes reachable from a root by that number is a
topological order: no recursion, no recursion limit, and the same order every
time.
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Callable, Iterator, NamedTuple

_next_seq = itertools.count().__next__
_by_seq = attrgetter("seq")
_grad_enabled = True
_scopes: list[str] = []


class Op:
    """One kind of recorded operation; subclasses keep forward and backward side by side.

    The local derivative of the output with respect to each input is given as data, so
    that the stepper and the diagrams can write it out the way the course does:
    ``inputs`` names the inputs, ``formula`` writes the output with those names, and
    ``derivatives`` holds d(output)/d(input) for each input, in the same names::

        Mul:  inputs ("a", "b"), formula "a*b", derivatives ("b", "a")      # mul swaps

    An op with no ``formula`` (a fused op: conv, a loss) gives each derivative as a short
    sentence instead. Attributes of the operation (an exponent, a stride) live on the
    instance; what one call leaves for its backward lives in that call's :class:`Context`.
    """

    name = "op"
    symbol: str | None = None
    inputs: tuple[str, ...] = ("a", "b")
    formula: str | None = None
    derivatives: tuple[str, ...] = ()

    def derivative(self, slot: int) -> str:
        """d(output)/d(input ``slot``) as data (an op with many alike inputs gives one for all)."""
        ders = self.derivatives
        return ders[min(slot, len(ders) - 1)] if ders else ""

    def __repr__(self) -> str:
        return self.symbol or self.name


class Context:
    """What one call of an op's forward leaves for its backward (PyTorch's ``ctx``).

    ``ctx.save_for_backward(*arrays)`` keeps arrays, read back as ``ctx.saved_tensors``;
    ``ctx.needs_input_grad[i]`` says whether input ``i`` wants a gradient; anything else
    (a mask, an argmax, the kernels used) goes on plain attributes.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...] = ()):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *values: Any) -> None:
        self.saved_tensors = values


class BackwardEdge(NamedTuple):
    """One step of the chain rule, along the edge ``child -> parent``.

    ``downstream = upstream x local``: ``upstream`` is d(root)/d(child), ``local`` is
    d(child)/d(parent) (a number in the scalar engine; None for tensors, whose ops give
    the product directly), and ``accumulated`` is the parent's gradient after adding
    this edge's ``downstream`` to ``previous`` (None: the first contribution).
    """

    child: Node
    parent: Node
    slot: int
    upstream: Any
    local: Any
    downstream: Any
    previous: Any
    accumulated: Any


class Node:
    """A value in a recorded graph: data, grad, the op that made it and its parents."""

    # Each engine adds ``parents`` (the inputs) and ``requires_grad``, and defines:
    #   _zero_grad            what the grad of a node that got no gradient is
    #   _seed_grad(grad)      the root's starting gradient (d root / d root = 1)
    #   _chain(upstream)      (parent, local, downstream) for each input: this node's op's
    #                         local derivatives, times the upstream gradient (_propagate,
    #                         the chain rule's step through one node, adds them up)
    #   _add_grad(acc, g)     acc + g, the way this node's gradient accumulates (acc is
    #                         _zero_grad for the first contribution)
    #   _recompute()          run the op's forward again from the parents' current data
    #   _shared(order, grads, seed)  (optional) what backward needs to know which gradients are
    #                         held by more than one node; _keep_grad(g, shared) then stores a
    #                         leaf's gradient (by default: shared is None, .grad = g)
    # ``_walk_grad`` is chain_rule's scratch (the gradient so far, during a walk only);
    # _push_inputs and _propagate below are the walks' steps through one node.
    __slots__ = ("data", "grad", "op", "label", "seq", "_walk_grad", "__weakref__")
    _zero_grad: Any = None

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    def _push_inputs(self, seen: set, push: Callable[[Node], None]) -> None:
        """topo_order's step: each input not yet in ``seen`` goes into it and onto the stack
        (``push``). An engine may spell this out for speed (Value does)."""
        for p in self.parents:
            if p not in seen:
                seen.add(p)
                push(p)

    def _propagate(self, upstream: Any, on_edge: Callable[[BackwardEdge], None] | None = None) -> None:
        """One step of the chain rule through this node: for each input (left to right),
        downstream = upstream x local is added to the input's gradient so far (``_walk_grad``),
        and the step goes to ``on_edge`` as a :class:`BackwardEdge` when one is given. An engine
        may spell this out for speed (Value does); it must give the same sums."""
        slot = -1
        for parent, local, downstream in self._chain(upstream):
            slot += 1
            if downstream is None or not parent.requires_grad:
                continue
            previous = parent._walk_grad
            parent._walk_grad = accumulated = parent._add_grad(
                parent._zero_grad if previous is None else previous, downstream)
            if on_edge is not None:
                on_edge(BackwardEdge(self, parent, slot, upstream, local, downstream, previous, accumulated))

    def backward(self, grad: Any = None) -> None:
        """Backpropagate from this node to every node it was computed from.

        The chain rule itself is :func:`chain_rule`. Leaf gradients accumulate across
        calls (as in PyTorch: call ``zero_grad`` between steps); gradients of intermediate
        nodes are recomputed each time, so a second call never doubles them.
        """
        order = topo_order(self)
        seed = self._seed_grad(grad)
        grads = chain_rule(order, seed)
        shared = self._shared(order, grads, seed)
        for node, g in zip(order, grads):
            if node.op is not None:
                node.grad = node._zero_grad if g is None else g
            elif g is not None and node.requires_grad:
                acc = node.grad
                node._keep_grad(node._add_grad(node._zero_grad if acc is None else acc, g), shared)

    @staticmethod
    def _shared(order: list[Node], grads: list[Any], seed: Any) -> Any:
        return None

    def _keep_grad(self, g: Any, shared: Any) -> None:
        self.grad = g


def chain_rule(order: list[Node], seed: Any,
               on_edge: Callable[[BackwardEdge], None] | None = None) -> list[Any]:
    """The chain rule over a graph, one edge at a time: the only place gradients are combined.

    ``order`` is a topological order with the root last, holding every node the root
    depends on (``topo_order(root)``); ``seed`` is the root's gradient. Children are
    visited in reverse order, so a node's gradient is complete (every use of it has
    contributed) before it is passed on to its inputs; each child's inputs are taken left
    to right. For each edge child -> parent,

        downstream = upstream x local;   grad[parent] = previous + downstream

    and ``on_edge`` (when given) receives that step as a :class:`BackwardEdge`. Returns
    d(root)/d(node) for each node of ``order``, in that order (None where no gradient
    reached it). ``Node.backward`` writes them into ``.grad``; the Stepper records the
    edges and leaves ``.grad`` alone. Inputs that need no gradient (constants) get no edge.

    While the walk runs, a node's gradient so far sits on the node itself (``_walk_grad``),
    and the walk clears it when it leaves the node: updating an attribute costs a third of
    updating a dict entry, which is most of a scalar training step (~70,000 nodes). So two
    walks must not run at once over shared nodes (from two threads, or a backward called
    inside an op's backward on the same graph).
    """
    for node in order:
        node._walk_grad = None
    order[-1]._walk_grad = seed
    grads: list[Any] = []
    keep = grads.append
    try:
        for node in reversed(order):
            upstream = node._walk_grad
            node._walk_grad = None
            keep(upstream)
            if upstream is not None and node.op is not None:     # a gradient here, and not a leaf
                node._propagate(upstream, on_edge)
    except BaseException:
        for node in order:
            node._walk_grad = None
        raise
    grads.reverse()
    return grads


def backward_edges(order: list[Node], seed: Any, grads: dict[int, Any]) -> list[BackwardEdge]:
    """Run :func:`chain_rule` and return its edges in the order it took them; ``grads``
    receives each node's gradient keyed by ``id(node)`` (as the Stepper's states are)."""
    edges: list[BackwardEdge] = []
    for node, g in zip(order, chain_rule(order, seed, edges.append)):
        if g is not None:
            grads[id(node)] = g
    return edges


def topo_order(root: Node) -> list[Node]:
    """Every node ``root`` depends on, parents before children, ``root`` last."""
    seen = {root}                      # nodes hash by identity
    stack = [root]
    push, pop = stack.append, stack.pop
    while stack:
        pop()._push_inputs(seen, push)
    return sorted(seen, key=_by_seq)


new_seq = _next_seq     # a fresh creation number; later nodes get larger numbers


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block operations compute values but record no graph."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def current_scope() -> str:
    """The dotted name of the module whose forward is running ("" outside any)."""
    return _scopes[-1] if _scopes else ""


class name_scope:
    """``with name_scope(name):`` tags the tensors created inside with ``name`` (nested:
    "features.0"), for clustering in viz. A class rather than a @contextmanager generator:
    every module call enters one, and this costs half as much."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        name = self.name
        _scopes.append(f"{_scopes[-1]}.{name}" if _scopes and name else (name or current_scope()))

    def __exit__(self, *exc: object) -> None:
        _scopes.pop()


class Graph:
    """A recorded graph: ``nodes`` in topological order (root last) and ``edges``.

    ``graph["x"]`` finds the node labelled ``x``; ``edges`` are ``(parent, child)``
    pairs, one per use of a parent (a node used twice by one op appears twice).
    """

    def __init__(self, root: Node):
        self.root = root
        self.nodes: list[Node] = topo_order(root)
        self.index = {id(n): i for i, n in enumerate(self.nodes)}
        self.edges: list[tuple[Node, Node]] = [(p, n) for n in self.nodes for p in n.parents]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __getitem__(self, label: str) -> Node:
        for n in self.nodes:
            if n.label == label:
                return n
        known = sorted({n.label for n in self.nodes if n.label})
        raise KeyError(f"no node labelled {label!r} in this graph; labels: {known}")

    def __contains__(self, label: object) -> bool:
        return any(n.label == label for n in self.nodes)

    @property
    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if n.is_leaf]

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges, root={self.root!r})"


def trace(root: Node) -> Graph:
    """Record the graph that produced ``root``."""
    if not isinstance(root, Node):
        raise TypeError(f"trace() takes a Value or a Tensor, got {type(root).__name__}")
    return Graph(root)
