"""Gradient flow: per layer, how big the gradients are, as a chain of coloured boxes.

    loss.backward()
    viz.flow.layer_stats(model)          # [{"name": "0", "mean_grad": 2.7e-08, ..., "status": "vanishing"}, ...]
    viz.grad_flow(model)                 # graphviz.Digraph, one box per layer, input -> ... -> loss
    viz.flow.grad_flow_plot(model, "bars.png")    # bars over depth, log scale (matplotlib)

A *layer* is a module that owns parameters (a Linear, a Conv2d, a BatchNorm...); its
numbers come from its ``weight`` (from all of its parameters when it has no weight).
For a Graph, every leaf that requires a gradient is a layer of its own.

Status: the ratio rho = ||dL/dW|| / ||W|| is the size of one SGD step at lr = 1
relative to the weight, so it does not depend on how large the weights are. CS231n's
rule of thumb asks for updates of about 1e-3 of the weights; with learning rates of
1e-2 to 1e-1 that is rho of about 1e-2 to 1e-1 (the Xavier/tanh and He/ReLU MLPs
measure 3e-2 to 4e-1). A layer is flagged when rho is more than 100x outside that band:

    vanishing   rho < 1e-4   (a step at lr 0.1 changes the weight by < 1e-5 of itself: it stops learning)
    exploding   rho > 10     (a step at lr 0.1 moves the weight by more than its own size)
    healthy     otherwise

Zero weights (||W|| = 0) are measured against 1 instead. With ``lr`` (or a snapshot
``before`` of the weights before an optimizer step) each row also has the actual
update/weight ratio, and with ``outputs`` (module name -> output Tensor, e.g. from
:func:`viz.maps.capture_outputs`) the mean |dL/d output| that reaches the layer: the
signal that shrinks layer by layer towards the input when gradients vanish.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import graphviz
import numpy as np

if TYPE_CHECKING:
    from tinygrad_cv.graph import Graph
    from tinygrad_cv.nn import Module

__all__ = ["VANISHING", "EXPLODING", "STATUS_COLORS", "layer_stats", "status_of", "grad_flow",
           "grad_flow_plot", "format_table"]

VANISHING = 1e-4        # rho = ||dL/dW|| / ||W|| below this: vanishing
EXPLODING = 10.0        # rho above this: exploding

# status -> (fill, border/text): green, blue, red
STATUS_COLORS = {
    "healthy": ("#dcf0dc", "#2e7d32"),
    "vanishing": ("#d8e6f8", "#1f5fa8"),
    "exploding": ("#fad4d4", "#b71c1c"),
}


def status_of(rho: float) -> str:
    """"vanishing" | "exploding" | "healthy" for a gradient/weight ratio (thresholds above)."""
    if not rho >= VANISHING:          # NaN (and inf, below) mean the gradient blew up
        return "exploding" if math.isnan(rho) else "vanishing"
    return "exploding" if rho > EXPLODING else "healthy"


def _arr(x: Any) -> np.ndarray:
    return np.asarray(getattr(x, "data", x), dtype=np.float64)


def _grad(p: Any) -> np.ndarray | None:
    """``p.grad`` as a float64 array, whether the engine keeps it as an array or as a Tensor."""
    g = getattr(p, "grad", None)
    return None if g is None else np.asarray(getattr(g, "data", g), dtype=np.float64)


def _layers_of_model(model: Module, collapse: bool | int | None = None) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    out: list[tuple[str, str, list[tuple[str, Any]]]] = []
    depth = 1 if collapse is True else int(collapse or 0)
    kinds = {n: type(m).__name__ for n, m in model.named_modules()} if depth else {}
    for name, m in model.named_modules():
        own = [(k, p) for k, p in m._parameters.items() if p is not None]
        if not own:
            continue
        params = [(f"{name}.{k}" if name else k, p) for k, p in own]
        key = ".".join(name.split(".")[:depth]) if depth and name else name
        if depth and out and out[-1][0] == key and key != name:
            out[-1][2].extend(params)                     # one more layer inside the same block
        else:
            out.append((key or type(m).__name__, kinds.get(key, type(m).__name__), params))
    return out


def layer_names(model: Module, collapse: bool | int | None = None) -> list[str]:
    """The row names :func:`layer_stats` gives ``model`` (a block's dotted name when collapsed)."""
    return [name for name, _, _ in _layers_of_model(model, collapse)]


def _layers_of_graph(graph: Graph, names: Mapping[str, Any] | None) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    known = {id(t): k for k, t in (names or {}).items()}
    out = []
    leaves = [n for n in graph.nodes if n.is_leaf and getattr(n, "requires_grad", True)]
    for i, n in enumerate(leaves):
        name = known.get(id(n)) or n.label or f"leaf{i}"
        out.append((name, type(n).__name__, [(name, n)]))
    return out


def layer_stats(model_or_graph: Any, *, before: Mapping[str, Any] | None = None, lr: float | None = None,
                outputs: Mapping[str, Any] | None = None,
                names: Mapping[str, Any] | None = None,
                collapse: bool | int | None = None) -> list[dict[str, Any]]:
    """One dict per layer, input side first, after a backward pass.

    ``collapse``: an int d makes one row of every module d names deep (``2``: ResNet's
    ``layer1.0`` block pools the weights of its convs and norms; ``True`` is 1); the
    row's ``type`` is the block's class and ``layers`` how many layers it holds.

    A Graph (or a Tensor/Value, traced) gives one row per leaf that requires a gradient,
    named by ``names`` (e.g. ``dict(model.named_parameters())``), else its label, else leafN.

    Keys: name, type, shape (of the weight), params (count), mean_grad and max_grad
    (mean and max |dL/dW|), grad_norm, weight_norm, ratio (||dL/dW|| / ||W||, the
    status measure), update_ratio (||lr*dL/dW|| / ||W||, or ||W - before|| / ||before||
    from a ``state_dict()``-style snapshot keyed like named_parameters; None without
    either), out_grad (mean |dL/d output| of the layer if ``outputs`` has it, else None)
    and status ("healthy" | "vanishing" | "exploding").
    """
    from tinygrad_cv.graph import Graph, Node

    if isinstance(model_or_graph, Node):
        model_or_graph = Graph(model_or_graph)
    if isinstance(model_or_graph, Graph):
        layers = _layers_of_graph(model_or_graph, names)
    elif hasattr(model_or_graph, "named_modules"):
        layers = _layers_of_model(model_or_graph, collapse)
    else:
        raise TypeError(f"layer_stats takes a Module, a Graph or a traced Tensor/Value, "
                        f"got {type(model_or_graph).__name__}")
    if not layers:
        raise ValueError(f"{type(model_or_graph).__name__} has no parameters to show the gradient flow of")
    if all(_grad(p) is None for _, _, ps in layers for _, p in ps):
        raise ValueError("no gradients yet: run a forward pass and loss.backward() first")
    if lr is not None and not (lr > 0 and math.isfinite(lr)):     # inf would make every update "inf" yet healthy
        raise ValueError(f"lr must be a positive finite number, got {lr}")
    rows = []
    for name, kind, params in layers:
        chosen = [(k, p) for k, p in params if k.rsplit(".", 1)[-1] == "weight"] or params
        w = np.concatenate([_arr(p).ravel() for _, p in chosen])
        g = np.concatenate([(_grad(p) if _grad(p) is not None else np.zeros(_arr(p).shape)).ravel()
                            for _, p in chosen])
        w_norm, g_norm = float(np.linalg.norm(w)), float(np.linalg.norm(g))
        rho = g_norm / (w_norm if w_norm > 0 else 1.0)
        update = None
        if before is not None and all(k in before for k, _ in chosen):
            w0 = np.concatenate([_arr(before[k]).ravel() for k, _ in chosen])
            update = float(np.linalg.norm(w - w0)) / (float(np.linalg.norm(w0)) or 1.0)
        elif lr is not None:
            update = lr * rho
        out_grad = None
        if outputs is not None and name in outputs:
            og = _grad(outputs[name])
            out_grad = None if og is None else float(np.mean(np.abs(og)))
        first = _arr(chosen[0][1])
        owners = {k.rsplit(".", 1)[0] for k, _ in params}
        rows.append({
            "name": name, "type": kind, "shape": tuple(first.shape) if len(owners) == 1 else (),
            "layers": len(owners), "params": int(sum(_arr(p).size for _, p in params)),
            "mean_grad": float(np.mean(np.abs(g))), "max_grad": float(np.max(np.abs(g))),
            "grad_norm": g_norm, "weight_norm": w_norm, "ratio": rho, "update_ratio": update,
            "out_grad": out_grad, "status": status_of(rho),
        })
    return rows


def _sci(v: float | None) -> str:
    return "-" if v is None else f"{v:.2e}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The per-layer numbers as an aligned text table (what ``tgcv flow`` prints)."""
    has_update = any(r["update_ratio"] is not None for r in rows)
    has_out = any(r["out_grad"] is not None for r in rows)
    head = ["layer", "type", "weight", "mean|dW|", "max|dW|", "|dW|/|W|"]
    head += ["update/W"] * has_update + ["mean|dL/dout|"] * has_out + ["status"]
    body = []
    for r in rows:
        line = [r["name"], r["type"], _shape_text(r), _sci(r["mean_grad"]), _sci(r["max_grad"]),
                _sci(r["ratio"])]
        line += [_sci(r["update_ratio"])] * has_update + [_sci(r["out_grad"])] * has_out + [r["status"]]
        body.append(line)
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 3 or i == len(cells) - 1 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    legend = (f"status from |dW|/|W| = ||dL/dW|| / ||W||: vanishing < {VANISHING:g}, "
              f"exploding > {EXPLODING:g}, healthy between")
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body] + [legend])


def _shape_text(r: dict[str, Any]) -> str:
    """A layer's weight shape ("64x3x7x7"), or for a collapsed block how many layers it pools."""
    return "x".join(map(str, r["shape"])) if r["shape"] else f'{r.get("layers", 1)} layers'


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _box(r: dict[str, Any]) -> str:
    fill, ink = STATUS_COLORS[r["status"]]
    lines = [f'<B>{_esc(r["name"])}</B>  <FONT POINT-SIZE="10">{_esc(r["type"])} {_shape_text(r)}</FONT>',
             f"mean |∂L/∂W|  {_sci(r['mean_grad'])}",
             f"max |∂L/∂W|  {_sci(r['max_grad'])}",
             f"‖∂L/∂W‖ / ‖W‖  {_sci(r['ratio'])}"]
    if r["update_ratio"] is not None:
        lines.append(f"update / weight  {_sci(r['update_ratio'])}")
    if r["out_grad"] is not None:
        lines.append(f"mean |∂L/∂out|  {_sci(r['out_grad'])}")
    rows = "".join(f'<TR><TD ALIGN="LEFT">{ln}</TD></TR>' for ln in lines)
    rows += f'<TR><TD ALIGN="CENTER"><FONT COLOR="{ink}"><B>{r["status"].upper()}</B></FONT></TD></TR>'
    return f'<<TABLE BORDER="0" CELLSPACING="1" CELLPADDING="1">{rows}</TABLE>>'


def _legend(title: str, labelled: bool) -> str:
    cells = []
    for status, text in (("healthy", f"healthy: {VANISHING:g} ≤ ρ ≤ {EXPLODING:g}"),
                         ("vanishing", f"vanishing: ρ &lt; {VANISHING:g}"),
                         ("exploding", f"exploding: ρ &gt; {EXPLODING:g}")):
        fill, ink = STATUS_COLORS[status]
        cells.append(f'<TD BGCOLOR="{fill}" COLOR="{ink}" BORDER="1" CELLPADDING="5">'
                     f'<FONT COLOR="{ink}">{text}</FONT></TD>')
    return (f'<<TABLE BORDER="0" CELLSPACING="6"><TR><TD COLSPAN="3"><B>{_esc(title)}</B></TD></TR>'
            f'<TR>{"".join(cells)}</TR>'
            f'<TR><TD COLSPAN="3"><FONT POINT-SIZE="10">ρ = ‖∂L/∂W‖ / ‖W‖, the size of one SGD step at lr = 1 '
            f'relative to the weight; arrows carry the gradient backwards from the loss'
            f'{", labelled with mean |∂L/∂out| of the layer they leave" if labelled else ""}</FONT></TD></TR></TABLE>>')


def grad_flow(model_or_graph: Any, *, before: Mapping[str, Any] | None = None, lr: float | None = None,
              outputs: Mapping[str, Any] | None = None, names: Mapping[str, Any] | None = None,
              title: str | None = None, rankdir: str = "auto",
              collapse: bool | int | None = None, rows: list[dict[str, Any]] | None = None) -> graphviz.Digraph:
    """The gradient-flow diagram: input -> one box per layer -> loss, coloured by status.

    Green healthy, blue vanishing, red exploding (thresholds in the legend and in
    this module's docstring). Arrows point from the loss back to the input, the way
    the gradient travels; with ``outputs`` they are labelled with mean |dL/d output|
    and drawn thinner where it is smaller. Arguments as :func:`layer_stats` (or the
    ``rows`` it returned). ``rankdir``: "LR" (a row), "TB" (a column) or "auto": a row
    up to 4 layers, a column beyond, so that the picture stays narrow. Past 7
    layers use :func:`viz.flowsheet.sheet`, which fits deep nets on one page.
    """
    if rows is None:
        rows = layer_stats(model_or_graph, before=before, lr=lr, outputs=outputs, names=names, collapse=collapse)
    if rankdir == "auto":
        rankdir = "LR" if len(rows) <= 4 else "TB"
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUS_COLORS}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    dot = graphviz.Digraph("grad_flow")
    dot.attr(rankdir=rankdir, fontname="Helvetica", labelloc="t", nodesep="0.3", ranksep="0.35",
             bgcolor="white", label=_legend(f"{title or 'Gradient flow'} — {len(rows)} layers: {summary}",
                           any(r["out_grad"] is not None for r in rows)))
    dot.attr("node", fontname="Helvetica", fontsize="11")
    dot.attr("edge", fontname="Helvetica", fontsize="9", color="#555555", fontcolor="#333333")
    dot.node("input", "input", shape="ellipse", style="filled", fillcolor="#f2f2f2", color="#888888")
    previous = "input"
    for i, r in enumerate(rows):
        fill, ink = STATUS_COLORS[r["status"]]
        node = f"layer{i}"
        dot.node(node, _box(r), shape="box", style="rounded,filled", fillcolor=fill, color=ink, penwidth="2")
        _edge(dot, previous, node, rows[i - 1]["out_grad"] if i else None)
        previous = node
    dot.node("loss", "loss", shape="ellipse", style="filled", fillcolor="#f2f2f2", color="#888888")
    _edge(dot, previous, "loss", rows[-1]["out_grad"])
    return dot


def _edge(dot: graphviz.Digraph, a: str, b: str, grad: float | None) -> None:
    # drawn a -> b (keeps the chain in forward order) with the arrowhead at a: gradient flows b -> a
    attrs = {"dir": "back", "arrowtail": "normal"}
    if grad is not None:
        width = 0.6 + 3.4 * min(max((math.log10(grad) + 10) / 8, 0.0), 1.0) if grad > 0 else 0.6
        attrs.update(label=f" {grad:.1e} ", penwidth=f"{width:.2f}")
    else:
        attrs["penwidth"] = "1.6"
    dot.edge(a, b, **attrs)


def grad_flow_plot(model_or_graph: Any, path: str | Path, *, before: Mapping[str, Any] | None = None,
                   lr: float | None = None, outputs: Mapping[str, Any] | None = None,
                   names: Mapping[str, Any] | None = None, title: str | None = None,
                   rows: list[dict[str, Any]] | None = None) -> Path:
    """Bars over depth on a log scale (needs matplotlib): mean and max |dL/dW| per layer, coloured by
    status, plus rho = ||dL/dW||/||W|| against the vanishing/exploding bands (and mean |dL/d out|)."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("grad_flow_plot needs matplotlib: pip install 'tinygrad_cv[plot]'") from None
    if rows is None:
        rows = layer_stats(model_or_graph, before=before, lr=lr, outputs=outputs, names=names)
    x = np.arange(len(rows))
    labels = [r["name"] for r in rows]
    inks = [STATUS_COLORS[r["status"]][1] for r in rows]
    fills = [STATUS_COLORS[r["status"]][0] for r in rows]
    tiny = 1e-30
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6.0, 0.75 * len(rows) + 3), 6.4), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2], "hspace": 0.08})
    top.bar(x, [max(r["max_grad"], tiny) for r in rows], width=0.7, color=fills, edgecolor=inks,
            label="max |∂L/∂W|")
    top.bar(x, [max(r["mean_grad"], tiny) for r in rows], width=0.38, color=inks, label="mean |∂L/∂W|")
    if any(r["out_grad"] for r in rows):
        top.plot(x, [r["out_grad"] or np.nan for r in rows], "k.--", lw=1, ms=7, label="mean |∂L/∂out|")
    top.set_yscale("log")
    top.set_ylabel("gradient magnitude")
    top.grid(axis="y", which="major", alpha=0.3)
    top.legend(loc="best", fontsize=8, frameon=False)
    top.set_title(title or "Gradient flow over depth (input → output)", fontsize=11)
    ratios = np.array([max(r["ratio"], tiny) for r in rows])
    lo = min(ratios.min(), VANISHING) / 10
    hi = max(ratios.max(), EXPLODING) * 10
    bottom.axhspan(lo, VANISHING, color=STATUS_COLORS["vanishing"][0], zorder=0)
    bottom.axhspan(EXPLODING, hi, color=STATUS_COLORS["exploding"][0], zorder=0)
    bottom.axhspan(VANISHING, EXPLODING, color=STATUS_COLORS["healthy"][0], zorder=0, alpha=0.5)
    bottom.bar(x, ratios, width=0.55, color=inks)
    for y, text in ((VANISHING, f"vanishing: ρ < {VANISHING:g}"), (EXPLODING, f"exploding: ρ > {EXPLODING:g}")):
        bottom.axhline(y, color="#444444", lw=0.8, ls="--")
        bottom.text(1.01, y, text.replace(": ", "\n"), va="center", ha="left", fontsize=8, color="#333333",
                    transform=bottom.get_yaxis_transform())
    bottom.set_yscale("log")
    bottom.set_ylim(lo, hi)
    bottom.set_ylabel("ρ = ‖∂L/∂W‖ / ‖W‖")
    slanted = max(map(len, labels)) > 6
    bottom.set_xticks(x, labels, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    bottom.set_xlabel("layer (input side first)")
    bottom.set_xlim(-0.6, len(rows) - 0.4)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# -- one measured batch ---------------------------------------------------------------------------
def input_batch(shape: tuple[int, ...], n: int, *, synthetic: bool = False,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` inputs of one example's ``shape`` (C, H, W) or (features,) and their labels 0..9.

    Shipped training digits, normalized with MNIST's mean and std: resized (bilinear) to
    fit H x W keeping their aspect, centred and padded with the background, and repeated
    over the C channels; a flat shape gets them flattened (784 features; others refused).
    ``synthetic``: unit-Gaussian images and random labels drawn with ``seed`` instead.
    """
    from tinygrad_cv import data

    shape = tuple(int(s) for s in shape)
    if not shape or min(shape) < 1 or len(shape) not in (1, 3):
        raise ValueError(f"an input shape is (C, H, W) or (features,), got {shape}")
    rng = np.random.default_rng(seed)
    if synthetic:
        return rng.standard_normal((n, *shape)).astype(np.float32), rng.integers(0, 10, n).astype(np.int64)
    images, labels = data.mnist("train")
    n = min(n, len(images))
    x = data.normalize(data.to_float(images[:n]))                     # (n, 1, 28, 28)
    if len(shape) == 1:
        if shape[0] != 28 * 28:
            raise ValueError(f"digits flatten to 784 features, not {shape[0]}: use synthetic inputs")
        return x.reshape(n, -1), labels[:n]
    c, h, w = shape
    side = min(h, w)
    if side != 28:
        x = _resize(x, side)
    background = float(x.min())
    out = np.full((n, 1, h, w), background, dtype=np.float32)
    top, left = (h - side) // 2, (w - side) // 2
    out[:, :, top:top + side, left:left + side] = x
    return np.ascontiguousarray(np.repeat(out, c, axis=1)), labels[:n]


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, C, H, W) to (N, C, size, size), pixel centres aligned."""
    h, w = x.shape[-2:]
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = x[..., y0[:, None], x0[None, :]], x[..., y0[:, None], x1[None, :]]
    c, d = x[..., y1[:, None], x0[None, :]], x[..., y1[:, None], x1[None, :]]
    return ((a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy).astype(np.float32)


def measure(model: Module, x: Any, y: Any = None, *, collapse: bool | int | None = None,
            lr: float | None = None, probe_seed: int = 0) -> tuple[list[dict[str, Any]], float]:
    """One forward and backward pass of ``model`` on ``x``; returns (layer_stats rows, loss).

    Loss: cross-entropy against ``y`` (taken modulo the number of classes) when the model
    ends in class scores (N, K); otherwise, as for the inception modules, the linear
    read-out L = sum(out * r) / N with a fixed unit-Gaussian r. Every layer (and with
    ``collapse`` every block) gets a forward hook for the pass, so each row also has the
    mean |dL/d output| that reached it. Gradients are cleared first; the model's mode
    (train/eval) is left as it is.
    """
    import tinygrad_cv as tg
    import tinygrad_cv.nn.functional as F

    names = set(layer_names(model, collapse))
    chosen = [(n or type(m).__name__, m) for n, m in model.named_modules() if (n or type(m).__name__) in names]
    store: dict[str, Any] = {}
    handles = [m.register_forward_hook(lambda mod, inputs, out, key=name: store.__setitem__(key, out))
               for name, m in chosen]
    try:
        model.zero_grad()
        xt = x if isinstance(x, tg.Tensor) else tg.Tensor(np.asarray(x, dtype=np.float32))
        out = model(xt)
    finally:
        for h in handles:
            h.remove()
    if out.ndim == 2 and y is not None:
        labels = np.asarray(getattr(y, "data", y)).astype(np.int64) % out.shape[1]
        loss = F.cross_entropy(out, tg.Tensor(labels))
    else:
        probe = np.random.default_rng(probe_seed).standard_normal(out.shape).astype(np.float32)
        loss = (out * tg.Tensor(probe)).sum() / out.shape[0]
    loss.backward()
    return layer_stats(model, lr=lr, outputs=store, collapse=collapse), float(loss.item())
