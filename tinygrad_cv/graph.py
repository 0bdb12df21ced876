"""The node machinery shared by the scalar and the tensor engine.

Every result of an operation is a :class:`Node` that remembers the :class:`Op`
that made it and its parents. ``Node.backward`` walks the recorded graph in
reverse topological order and applies the chain rule edge by edge:

    downstream gradient = upstream gradient x local derivative

Nodes are numbered as they are created. A node's parents always exist before
the node itself, so sorting the nodes reachable from a root by that number is a
topological order: no recursion, no recursion limit, and the same order every
time.
"""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Iterator

_next_seq = itertools.count().__next__
_by_seq = attrgetter("seq")
_grad_enabled = True
_scopes: list[str] = []


class Op:
    """One kind of recorded operation; subclasses keep forward and backward side by side.

    ``forward(*parent_data)`` computes the node's data from its parents' data.
    ``backward(upstream, *parent_data, out)`` returns one downstream gradient per
    parent (``None`` where a parent needs none). Attributes of the operation (an
    exponent, a stride) live on the instance.
    """

    name = "op"
    symbol: str | None = None

    def local_rule(self) -> str:
        """The local derivative in the course's words, for the stepper and the diagrams."""
        return ""

    def __repr__(self) -> str:
        return self.symbol or self.name


class Node:
    """A value in a recorded graph: data, grad, the op that made it and its parents."""

    # Each engine adds ``parents`` (the inputs, a tuple) and ``requires_grad``.
    __slots__ = ("data", "grad", "op", "label", "seq", "__weakref__")
    # Each engine defines: _zero_grad (what an intermediate's grad is reset to),
    # _seed_grad(grad) (the root's starting gradient) and _propagate() (one chain-rule
    # step: add upstream x local into each parent's grad).
    _zero_grad: Any = None

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    def backward(self, grad: Any = None) -> None:
        """Backpropagate from this node to every node it was computed from.

        Nodes are visited in reverse topological order, so a node's gradient is
        complete (every use of it has contributed) before it is passed on. Leaf
        gradients accumulate across calls (as in PyTorch: call ``zero_grad`` between
        steps); gradients of intermediate nodes are recomputed each time, so a second
        call never doubles them.
        """
        order = topo_order(self)
        zero = self._zero_grad
        for node in order:
            if node.op is not None:
                node.grad = zero
        self.grad = self._seed_grad(grad)
        for node in reversed(order):
            if node.op is not None and node.grad is not None:
                node._propagate()


def topo_order(root: Node) -> list[Node]:
    """Every node ``root`` depends on, parents before children, ``root`` last."""
    seen = {root}
    stack = [root]
    while stack:
        for p in stack.pop().parents:
            if p not in seen:
                seen.add(p)
                stack.append(p)
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


@contextmanager
def name_scope(name: str) -> Iterator[None]:
    """Tag the tensors created inside with ``name`` (nested: "features.0"), for clustering in viz."""
    _scopes.append(f"{_scopes[-1]}.{name}" if _scopes and name else (name or current_scope()))
    try:
        yield
    finally:
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
        return [n for n in self.nodes if n.op is None]

    def children(self, node: Node) -> list[Node]:
        """The nodes that use ``node`` as an input, in topological order."""
        return [c for p, c in self.edges if p is node]

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges, root={self.root!r})"


def trace(root: Node) -> Graph:
    """Record the graph that produced ``root``."""
    if not isinstance(root, Node):
        raise TypeError(f"trace() takes a Value or a Tensor, got {type(root).__name__}")
    return Graph(root)
