"""Annotated graph diagrams with Graphviz: ``draw(value | tensor | graph | stepper) -> graphviz.Digraph``.

Scalar graphs are drawn micrograd style: a record per value (label, data, grad)
and a small op node between each value and its inputs. Tensor graphs show each
tensor's shape, dtype and statistics (mean, std, min/max, mean |grad|), cluster
the nodes by the module that made them (``tensor.scope``, nested), name
parameters when ``params=dict(model.named_parameters())`` is given, and can
collapse each module to one box (``collapse=True`` or a depth) so that graphs of
real models stay legible. A :class:`~tinygrad_cv.step.Stepper` is drawn at its
current position: what is known so far, the current node or edge highlighted.
"""
from __future__ import annotations

import html
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import graphviz
import numpy as np

from tinygrad_cv.graph import Graph, Node, trace
from tinygrad_cv.step import BackwardStep, ForwardStep, SeedStep, Stepper, StepState

from .format import number

FORMATS = ("svg", "png", "pdf", "dot")
MAX_NODES = 5000        # drawn boxes (values, op nodes, module boxes) above which draw() refuses
MAX_FANOUT = 8          # a value used more often than this is drawn again beside each further use
DOT_TIMEOUT = 120.0     # seconds Graphviz may take to lay out one graph before it is stopped
INSTALL_HINT = "install Graphviz (e.g. apt-get install graphviz, brew install graphviz, conda install graphviz)"

# colours: values blue, gradients red, the current step orange
VALUE = "#1f4e79"
GRAD = "#c0392b"
UNKNOWN = "#a0a0a0"
HIGHLIGHT = "#e67e22"
FILL = {"input": "#dbe9f6", "param": "#fdebd0", "const": "#f2f2f2", "inner": "#ffffff", "root": "#d5f5e3"}
OP_FILL = "#eeeeee"
CLUSTER_FILLS = ("#f7f9fc", "#eef3fa", "#e5edf7", "#dce6f3")


class GraphvizMissing(RuntimeError):
    """The Graphviz ``dot`` program is needed for this format and is not installed."""


@dataclass
class _Ctx:
    graph: Graph
    names: dict[int, str]
    kinds: dict[int, str]
    values: dict[int, Any] | None            # None: every node's .data is known
    grads: dict[int, Any] | None             # None: every node's .grad
    hl_nodes: set[int] = field(default_factory=set)
    hl_edges: set[tuple[int, int]] = field(default_factory=set)
    hl_color: str = HIGHLIGHT
    scopes: dict[int, str] = field(default_factory=dict)


# --- formatting ------------------------------------------------------------------------



def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _stats(a: Any) -> tuple[str, str]:
    """Two short lines for an array: mean/std and min/max (or the numbers when tiny)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return number(float(a)), ""
    if a.size == 0:
        return "empty", ""
    if a.size <= 3:
        return "[" + ", ".join(number(float(v)) for v in a.ravel()) + "]", ""
    if a.dtype.kind not in "fiub":
        return str(a.dtype), ""
    f = a.astype(np.float64, copy=False)
    return (f"mean {number(float(f.mean()))}  std {number(float(f.std()))}",
            f"min {number(float(f.min()))}  max {number(float(f.max()))}")


def _grad_line(g: Any) -> str:
    g = np.asarray(g, dtype=np.float64)
    if g.ndim == 0:
        return f"grad {number(float(g))}"
    if g.size <= 3:
        return "grad [" + ", ".join(number(float(v)) for v in g.ravel()) + "]"
    return f"|grad| mean {number(float(np.abs(g).mean()))}  max {number(float(np.abs(g).max()))}"


def _shape(a: Any) -> str:
    s = np.shape(a)
    return "(" + ", ".join(str(n) for n in s) + ")" if len(s) != 1 else f"({s[0]},)"


def _op_text(node: Node) -> str:
    op = node.op
    if op is None:
        return ""
    if op.symbol and len(node.parents) == 2:
        return op.symbol
    if op.symbol == "-" and len(node.parents) == 1:
        return "neg"
    return repr(op) if repr(op) != (op.symbol or op.name) else op.name


# --- building ----------------------------------------------------------------------------

def _resolve(obj: Any) -> tuple[Graph, Stepper | None]:
    if isinstance(obj, Stepper):
        return obj.graph, obj
    if isinstance(obj, Graph):
        return obj, None
    if isinstance(obj, Node):
        return trace(obj), None
    raise TypeError(f"draw() takes a Value, a Tensor, a Graph or a Stepper, got {type(obj).__name__}")


def _kinds(graph: Graph, param_ids: set[int]) -> dict[int, str]:
    kinds = {}
    for n in graph.nodes:
        if n is graph.root:
            kinds[id(n)] = "root"
        elif id(n) in param_ids:
            kinds[id(n)] = "param"
        elif n.is_leaf:
            kinds[id(n)] = "input" if (n.requires_grad or n.label) else "const"
        else:
            kinds[id(n)] = "inner"
    return kinds


def _value_label(ctx: _Ctx, node: Node) -> str:
    """The HTML-like label of one value/tensor node."""
    k = id(node)
    name = ctx.names[k]
    fill = FILL[ctx.kinds[k]]
    known = ctx.values is None or k in ctx.values
    data = (node.data if ctx.values is None else ctx.values.get(k)) if known else None
    if ctx.grads is None:
        grad = node.grad
        has_grad = grad is not None
    else:
        has_grad = k in ctx.grads
        grad = ctx.grads.get(k)
    hl = k in ctx.hl_nodes
    border = f' color="{ctx.hl_color}"' if hl else ' color="#555555"'
    width = "3" if hl else "1"
    scalar = isinstance(data, float) or (data is None and isinstance(node.data, float))
    if scalar:
        dtext = f'<font color="{VALUE}">data {number(data)}</font>' if known else f'<font color="{UNKNOWN}">data ?</font>'
        if node.is_leaf and not node.requires_grad:
            gtext = f'<font color="{UNKNOWN}">constant</font>'        # takes no gradient
        elif has_grad:
            gtext = f'<font color="{GRAD}"><b>grad {number(grad)}</b></font>'
        else:
            gtext = f'<font color="{UNKNOWN}">grad ?</font>'
        return (f'<<table border="{width}"{border} cellborder="1" cellspacing="0" cellpadding="5">'
                f'<tr><td bgcolor="{fill}"><b>{_esc(name)}</b></td><td>{dtext}</td><td>{gtext}</td></tr></table>>')
    rows = [f'<tr><td bgcolor="{fill}"><b>{_esc(name)}</b></td></tr>']
    shown = node.data if data is None else data
    rows.append(f'<tr><td><font point-size="10">{_esc(_shape(shown))} {_esc(np.asarray(shown).dtype)}</font></td></tr>')
    if known:
        a, b = _stats(data)
        rows.append(f'<tr><td><font color="{VALUE}" point-size="10">{_esc(a)}'
                    + (f'<br/>{_esc(b)}' if b else "") + '</font></td></tr>')
    else:
        rows.append(f'<tr><td><font color="{UNKNOWN}" point-size="10">data ?</font></td></tr>')
    if has_grad:
        rows.append(f'<tr><td><font color="{GRAD}" point-size="10"><b>{_esc(_grad_line(grad))}</b></font></td></tr>')
    elif ctx.grads is not None and node.requires_grad:
        rows.append(f'<tr><td><font color="{UNKNOWN}" point-size="10">grad ?</font></td></tr>')
    return (f'<<table border="{width}"{border} cellborder="0" cellspacing="0" cellpadding="3">'
            + "".join(rows) + "</table>>")


def _scope_of(node: Node, ctx: _Ctx) -> str:
    return ctx.scopes.get(id(node), getattr(node, "scope", "") or "")


def _collapse_key(scope: str, depth: int) -> str:
    return ".".join(scope.split(".")[:depth]) if scope else ""


def draw(obj: Any, *, params: Mapping[str, Node] | None = None, collapse: bool | int = False,
         op_nodes: bool | None = None, highlight: Node | str | None = None,
         highlight_edge: tuple[Node, Node] | None = None, title: str | None = None,
         rankdir: str = "LR", clusters: bool = True, max_nodes: int = MAX_NODES,
         max_fanout: int = MAX_FANOUT) -> graphviz.Digraph:
    """An annotated diagram of a Value, a Tensor, a Graph or a Stepper (at its position).

    ``params``: names for parameter tensors (``dict(model.named_parameters())``).
    ``collapse``: ``True`` draws each top-level module as one box; an int draws
    modules down to that depth. ``op_nodes``: small op nodes between values
    (default: yes for graphs under 300 nodes, else the op is named in the
    tensor's box). ``highlight``: a node or its label; ``highlight_edge``:
    ``(parent, child)``. ``clusters``: group tensors by module.

    Bounded, so that Graphviz can lay it out: a value used by more than
    ``max_fanout`` nodes (``x + x + ... + x``) is drawn once and then as a small
    dashed copy beside each further use, instead of one node with hundreds of
    edges (which takes dot minutes); a graph of more than ``max_nodes`` drawn boxes
    is refused with a ValueError that suggests ``collapse=True``.
    """
    graph, stepper = _resolve(obj)
    param_names = {id(t): n for n, t in (params or {}).items()}
    names: dict[int, str] = {}
    for i, n in enumerate(graph.nodes):
        k = id(n)
        if k in param_names:
            names[k] = param_names[k]
        elif stepper is not None:
            names[k] = stepper.name(n)
        elif n.label:
            names[k] = n.label
        elif not n.is_leaf:
            names[k] = n.op.name
        else:
            names[k] = "input" if n.requires_grad else "const"
    values = grads = None
    hl_nodes: set[int] = set()
    hl_edges: set[tuple[int, int]] = set()
    hl_color = HIGHLIGHT
    if stepper is not None:
        state: StepState = stepper.state()
        values, grads = state.values, state.grads
        ev = state.event
        if isinstance(ev, ForwardStep):
            hl_nodes.add(id(ev.node))
            hl_edges.update((id(p), id(ev.node)) for p in ev.node.parents)
            hl_color = VALUE
        elif isinstance(ev, SeedStep):
            hl_nodes.add(id(ev.node))
            hl_color = GRAD
        elif isinstance(ev, BackwardStep):
            hl_nodes.add(id(ev.parent))
            hl_edges.add((id(ev.parent), id(ev.child)))
            hl_color = GRAD
    if highlight is not None:
        hl_nodes.add(id(graph[highlight]) if isinstance(highlight, str) else id(highlight))
    if highlight_edge is not None:
        hl_edges.add((id(highlight_edge[0]), id(highlight_edge[1])))

    scopes = {}
    for t_name, t in (params or {}).items():
        if not getattr(t, "scope", "") and "." in t_name:
            scopes[id(t)] = t_name.rsplit(".", 1)[0]
    # Unnamed constants made outside any module (the 0.5 in ``h * 0.5``) sit with the module that uses them.
    consumer_scopes: dict[int, set[str]] = {}
    for p, c in graph.edges:
        if p.is_leaf and not p.label and id(p) not in param_names and not getattr(p, "scope", ""):
            consumer_scopes.setdefault(id(p), set()).add(scopes.get(id(c), getattr(c, "scope", "") or ""))
    for k, found in consumer_scopes.items():
        if len(found) == 1:
            scopes[k] = found.pop()
    ctx = _Ctx(graph, names, _kinds(graph, set(param_names)), values, grads, hl_nodes, hl_edges, hl_color, scopes)
    depth = 1 if collapse is True else int(collapse or 0)
    if op_nodes is None:
        op_nodes = len(graph) < 300 and depth == 0
    scalar = all(isinstance(n.data, float) for n in graph.nodes)

    dot = graphviz.Digraph("tgcv", graph_attr={
        "rankdir": rankdir, "fontname": "Helvetica", "fontsize": "12", "nodesep": "0.25",
        "ranksep": "0.35", "bgcolor": "white", "newrank": "true"})
    dot.attr("node", fontname="Helvetica", fontsize="11")
    dot.attr("edge", color="#666666", arrowsize="0.7")
    if title:
        dot.attr(label=title, labelloc="t", fontsize="14")

    _check_size(graph, ctx, depth, clusters, op_nodes, max_nodes)

    # where each drawn thing goes: cluster scope -> body lines (built as strings for speed)
    bodies: dict[str, list[str]] = {"": []}
    box_of: dict[int, str] = {}              # node id -> drawn id (its own, or its module's box)
    boxes: dict[str, list[Node]] = {}
    for i, n in enumerate(graph.nodes):
        scope = _scope_of(n, ctx) if clusters or depth else ""
        key = _collapse_key(scope, depth) if depth else ""
        if key:
            box_of[id(n)] = f"m_{_dot_id(key)}"
            boxes.setdefault(key, []).append(n)
            continue
        box_of[id(n)] = f"n{i}"
        where = scope if clusters else ""
        bodies.setdefault(where, [])
        label = _value_label(ctx, n)
        if not op_nodes and not n.is_leaf and not scalar and names[id(n)] != n.op.name:
            label = _with_op(label, n)
        bodies[where].append(_node_line(f"n{i}", label, shape="plain"))
        if op_nodes and not n.is_leaf:
            hl = id(n) in hl_nodes
            shape = "circle" if scalar and len(_op_text(n)) <= 2 else "box"
            attrs = dict(shape=shape, style="filled,rounded" if shape == "box" else "filled", fillcolor=OP_FILL,
                         fontsize="12" if scalar else "10", margin="0.05,0.02",
                         width="0.35", height="0.35", fixedsize="false")
            if hl:
                attrs.update(color=hl_color, penwidth="2.5")
            bodies[where].append(_node_line(f"o{i}", _esc(_op_text(n)), **attrs))
            bodies[where].append(_edge_line(f"o{i}", f"n{i}", hl and hl_color == VALUE, hl_color))
    leaving = {id(p) for p, c in graph.edges if box_of[id(p)] != box_of[id(c)]}
    for key, members in boxes.items():
        parent_scope = key.rsplit(".", 1)[0] if "." in key else ""
        bodies.setdefault(parent_scope if clusters else "", []).append(
            _node_line(f"m_{_dot_id(key)}", _box_label(key, members, leaving, ctx), shape="plain"))

    seen_edges: set[tuple[str, str]] = set()
    uses: dict[str, int] = {}
    fanout: dict[str, int] = {}
    for p, c in graph.edges:
        a, b = box_of[id(p)], box_of[id(c)]
        if a != b:
            fanout[a] = fanout.get(a, 0) + 1
    for p, c in graph.edges:
        a, b = box_of[id(p)], box_of[id(c)]
        if a == b:
            continue
        ci = graph.index[id(c)]
        target = f"o{ci}" if op_nodes and b.startswith("n") else b
        if (a, target) in seen_edges and depth:
            continue
        seen_edges.add((a, target))
        hl = (id(p), id(c)) in hl_edges
        n_use = uses[a] = uses.get(a, 0) + 1
        if fanout[a] > max_fanout and n_use > 1:
            # a copy of the value beside this use: dot lays out a tree quickly, a hub of many edges slowly
            alias = f"{a}_use{n_use}"
            bodies[""].append(_node_line(alias, _esc(f"{names.get(id(p), '')} (use {n_use}/{fanout[a]})"),
                                         shape="box", style="dashed,rounded", fontsize="9",
                                         color=hl_color if hl else "#888888", margin="0.04,0.02"))
            a = alias
        bodies[""].append(_edge_line(a, target, hl, hl_color))

    _emit_clusters(dot, bodies)
    return dot


def _check_size(graph: Graph, ctx: _Ctx, depth: int, clusters: bool, op_nodes: bool, max_nodes: int) -> None:
    """Refuse a drawing Graphviz could not lay out in reasonable time and memory (ValueError with a hint)."""
    if depth:
        drawn = len({_collapse_key(_scope_of(n, ctx), depth) or f"n{i}" for i, n in enumerate(graph.nodes)})
    else:
        drawn = len(graph) + (sum(1 for n in graph.nodes if n.op is not None) if op_nodes else 0)
    if drawn > max_nodes:
        scoped = any(_scope_of(n, ctx) for n in graph.nodes)
        hint = ("pass collapse=True (one box per module) or a smaller depth" if scoped and depth != 1
                else "draw a smaller graph (fewer terms, a smaller model or batch)")
        raise ValueError(f"the graph has {drawn:,} boxes to draw, more than max_nodes={max_nodes:,} that Graphviz "
                         f"lays out in reasonable time: {hint}, or raise max_nodes=")


def _with_op(label: str, node: Node) -> str:
    """Prefix a tensor box with the op that made it (when op nodes are not drawn)."""
    return label.replace("<tr>", f'<tr><td bgcolor="{OP_FILL}"><font point-size="9">{_esc(_op_text(node))}</font></td></tr><tr>', 1)


def _box_label(key: str, members: list[Node], leaving: set[int], ctx: _Ctx) -> str:
    """One collapsed module: its name, how many ops and parameters it holds, its output shape."""
    n_ops = sum(1 for n in members if not n.is_leaf)
    params = [n for n in members if ctx.kinds[id(n)] == "param"]
    n_params = sum(int(np.size(n.data)) for n in params)
    exits = [n for n in members if id(n) in leaving]
    last = exits[-1] if exits else members[-1]
    hl = any(id(n) in ctx.hl_nodes for n in members)
    border = f' color="{ctx.hl_color}" border="3"' if hl else ' color="#555555" border="1"'
    rows = [f'<tr><td bgcolor="{FILL["param"] if params else FILL["input"]}"><b>{_esc(key)}</b></td></tr>',
            f'<tr><td><font point-size="10">{_plural(n_ops, "op")}, {_plural(len(params), "parameter")}'
            f' ({n_params:,} numbers)</font></td></tr>',
            f'<tr><td><font point-size="10">out {_esc(_shape(last.data))}</font></td></tr>']
    a, b = _stats(last.data)
    rows.append(f'<tr><td><font color="{VALUE}" point-size="10">{_esc(a)}</font></td></tr>')
    gs = [np.abs(np.asarray(n.grad, dtype=np.float64)).mean() for n in params if n.grad is not None]
    if gs:
        rows.append(f'<tr><td><font color="{GRAD}" point-size="10"><b>params |grad| mean {number(float(np.mean(gs)))}'
                    f'</b></font></td></tr>')
    return f'<<table{border} cellborder="0" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _dot_id(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text) + f"_{zlib.crc32(text.encode()) % 10_000}"


def _quote(v: str) -> str:
    if v.startswith("<") and v.endswith(">"):
        return v
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_line(name: str, label: str, **attrs: str) -> str:
    parts = [f"label={_quote(label) if not label.startswith('<<') else label}"]
    parts += [f"{k}={_quote(str(v))}" for k, v in attrs.items()]
    return f"\t{name} [{' '.join(parts)}]\n"


def _edge_line(a: str, b: str, highlighted: bool = False, color: str = HIGHLIGHT) -> str:
    if highlighted:
        return f'\t{a} -> {b} [color="{color}" penwidth=3 arrowsize=1]\n'
    return f"\t{a} -> {b}\n"


def _emit_clusters(dot: graphviz.Digraph, bodies: dict[str, list[str]]) -> None:
    """Nest the module clusters (``a`` holds ``a.b`` holds ``a.b.c``), innermost first, without recursion."""
    scopes = set()
    for s in bodies:
        parts = s.split(".") if s else []
        for d in range(1, len(parts) + 1):
            scopes.add(".".join(parts[:d]))
    built: dict[str, graphviz.Digraph] = {}
    for s in sorted(scopes, key=lambda s: (-s.count("."), s)):
        depth = s.count(".")
        sub = graphviz.Digraph(name=f"cluster_{_dot_id(s)}", graph_attr={
            "label": s, "style": "rounded,filled", "fillcolor": CLUSTER_FILLS[min(depth, len(CLUSTER_FILLS) - 1)],
            "color": "#8aa4c8", "fontname": "Helvetica", "fontsize": "11", "labeljust": "l"})
        sub.body.extend(bodies.get(s, []))
        for child in sorted(c for c in built if c.rsplit(".", 1)[0] == s and "." in c):
            sub.subgraph(built.pop(child))
        built[s] = sub
    dot.body.extend(bodies[""])
    for s in sorted(built):
        dot.subgraph(built[s])


# --- rendering ---------------------------------------------------------------------------

def has_dot() -> bool:
    """Whether the Graphviz ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def render(obj: Any, path: str | Path, *, timeout: float | None = DOT_TIMEOUT, **draw_options: Any) -> Path:
    """Draw ``obj`` (or take a ready Digraph) and write it; the format comes from the suffix.

    ``.dot`` needs only Python; ``.svg``, ``.png`` and ``.pdf`` need Graphviz's
    ``dot`` program and raise :class:`GraphvizMissing` (one line) without it; ``dot``
    runs for at most ``timeout`` seconds (see :func:`pipe`).
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format of {path.name!r}: use one of "
                         + ", ".join(f".{f}" for f in FORMATS))
    dig = obj if isinstance(obj, graphviz.Digraph) else draw(obj, **draw_options)
    if fmt == "dot":
        data = dig.source.encode()
    else:
        data = pipe(dig, fmt, timeout=timeout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class GraphvizTimeout(RuntimeError):
    """Graphviz did not finish laying out a graph within its time limit (and was stopped)."""


def _die_with_parent() -> None:                      # in the child, before exec: Linux only, best effort
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except Exception:                                                 # noqa: BLE001
        pass


def pipe(dig: graphviz.Digraph, fmt: str, timeout: float | None = DOT_TIMEOUT) -> bytes:
    """Lay out ``dig`` with ``dot`` and return the ``fmt`` bytes.

    ``dot`` runs as a child process for at most ``timeout`` seconds (None: no limit);
    on a timeout, Ctrl-C or any other exception it is killed and waited for, and on
    Linux it also dies with this process (kill -9 included), so no ``dot`` is left running.
    """
    import subprocess
    import sys

    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(f"writing .{fmt} needs the Graphviz 'dot' program, which is not on PATH: "
                              f"{INSTALL_HINT}; or write .dot")
    try:
        proc = subprocess.Popen([exe, f"-T{fmt}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    except OSError as e:
        raise GraphvizMissing(f"writing .{fmt} needs the Graphviz 'dot' program ({e}): {INSTALL_HINT}") from None
    try:
        out, err = proc.communicate(dig.source.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise GraphvizTimeout(f"Graphviz took more than {timeout:g} s to lay out a graph of "
                              f"{dig.source.count(chr(10)):,} lines and was stopped: draw a smaller graph "
                              f"(or collapse=True), or write .dot") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        proc.wait()
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"Graphviz failed: {detail[0] if detail else f'exit status {proc.returncode}'}")
    return out
