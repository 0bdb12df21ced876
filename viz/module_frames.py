"""The frames of a module stepper: one per module step, each with its pictures, for the player.

    s = tg.Stepper(loss, by="module", model=net)
    viz.write_frames(s, "frames/")          # frames/index.html
    viz.player(s)                           # the same, inline in Jupyter

Beside every frame: the input image and the module graph (a Graphviz chain, or a DAG
where a residual block adds its shortcut), the current module highlighted (orange on
forward steps, red on backward steps). Each frame: the step's text, worded as in the
transcript (:func:`viz.format.describe_module`), and

* forward: the module's output as feature maps, at most ``MAX_CHANNELS`` channels in a
  grid, one viridis scale for all of them (dark = min, yellow = max, a colour bar with
  the two numbers); a vector output (a linear layer's) is drawn as one tile of its values;
* the loss: the softmax as bars, the target red, the prediction blue;
* backward: the gradient the module sends to its input, d loss / d input, in a diverging
  scale centred on 0 (red positive, white 0, blue negative, +-max|g| stated), and for a
  conv layer its filters' gradient d loss / d weight (viz.maps.filters).

Pictures are inline PNGs written by viz.maps' own PNG writer (NumPy + zlib: no matplotlib).
"""
from __future__ import annotations

import base64
import html
import math
from typing import Any

import numpy as np

from tinygrad_cv.step import ModuleBackward, ModuleForward, ModuleStepper, SeedStep

from .format import LR, describe, describe_module, number, softmax_target
from .maps import _DIVERGING, _SEQUENTIAL, colorize, filters, grid_shape, png_bytes, tile_grid

MAX_CHANNELS = 16        # feature / gradient maps drawn per step (the first ones)
MAX_BARS = 12            # softmax bars drawn: all classes up to this many, else the top ones and the target
TILE_PX = 56             # a feature-map tile is enlarged to at least about this many pixels,
GRID_PX = 280            # ... and a grid of tiles to about this width
VECTOR_PX = 224          # ... a vector's one tile to about this many
PAD = 205                # grey for the cells of a vector tile past its last value

CSS = """
#@ID@ .tg-aside { flex: 0 0 250px; padding: 10px 0 10px 14px; }
#@ID@ .tg-aside h4 { font-size: 12px; font-weight: normal; color: #556; margin: 6px 0 4px; }
#@ID@ .tg-graph { max-height: 72vh; overflow: auto; border: 1px solid #dde4ee; background: white; }
#@ID@ .tg-graph svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
#@ID@ .tg-graph g.node.tg-on polygon, #@ID@ .tg-graph g.node.tg-on path { fill: #fde2c4; stroke: #e67e22;
        stroke-width: 3; }
#@ID@ .tg-graph g.node.tg-backward polygon, #@ID@ .tg-graph g.node.tg-backward path { fill: #f6d3ce;
        stroke: #c0392b; }
#@ID@ .tg-row { display: flex; flex-wrap: wrap; align-items: flex-start; }
#@ID@ .tg-row .caption { flex: 1 1 430px; }
#@ID@ .tg-pics { display: flex; flex-direction: column; }
#@ID@ figure { margin: 10px 14px; font-size: 12px; color: #445; max-width: 360px; }
#@ID@ figure img { display: block; image-rendering: pixelated; max-width: 100%; border: 1px solid #dde4ee; }
#@ID@ figcaption { margin-top: 4px; }
#@ID@ .tg-cbar { height: 10px; margin-top: 4px; border: 1px solid #ccd; }
#@ID@ .tg-cbar-labels { display: flex; justify-content: space-between; font-variant-numeric: tabular-nums; }
#@ID@ .tg-bars { font-family: Menlo, Consolas, monospace; font-size: 12px; min-width: 260px; }
#@ID@ .tg-bar { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
#@ID@ .tg-bar .tg-k { width: 3.5em; text-align: right; }
#@ID@ .tg-bar .tg-fill { height: 12px; background: #9e9e9e; }
#@ID@ .tg-bar.tg-pred .tg-fill { background: #1f5fa8; }
#@ID@ .tg-bar.tg-target .tg-fill { background: #b71c1c; }
#@ID@ .tg-bar.tg-target { font-weight: bold; }
"""


def _uri(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


def _gradient_css(anchors: np.ndarray) -> str:
    stops = ", ".join(f"rgb({int(r)},{int(g)},{int(b)})" for r, g, b in anchors)
    return f"linear-gradient(to right, {stops})"


def _colour_bar(lo: float, hi: float, signed: bool) -> str:
    labels = ([number(lo), "0", number(hi)] if signed else [number(lo), number(hi)])
    spans = "".join(f"<span>{html.escape(t)}</span>" for t in labels)
    return (f'<div class="tg-cbar" style="background: {_gradient_css(_DIVERGING if signed else _SEQUENTIAL)}">'
            f'</div><div class="tg-cbar-labels">{spans}</div>')


def _vector_tile(v: np.ndarray, signed: bool) -> np.ndarray:
    """A vector's values as one tile in reading order (width n up to 16, else about sqrt(n)); the cells
    past the last value grey."""
    n = v.size
    w = n if n <= 16 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / w)
    filled = np.concatenate([v, np.zeros(rows * w - n)]) if rows * w > n else v
    k = max(1, math.ceil(VECTOR_PX / max(rows, w)))
    lo, hi = float(v.min()), float(v.max())
    m = float(np.max(np.abs(v)))
    rgb = colorize(filled.reshape(rows, w), signed=signed, lo=None if signed else lo, hi=m if signed else hi)
    if rows * w > n:
        rgb[rows - 1, n - (rows - 1) * w:] = PAD
    return np.kron(rgb, np.ones((k, k, 1), np.uint8))


def map_figure(a: Any, what: str, signed: bool) -> str:
    """A figure of one array: (1, C, H, W) as a grid of its first channels, anything else as one tile of
    its values; one colour scale for the figure, stated under it."""
    x = np.asarray(a, dtype=np.float64)
    if x.ndim >= 1 and x.shape[0] == 1 and x.ndim > 1:
        x = x[0]
    if x.size == 0:
        return ""
    if x.ndim == 3 and x.shape[1] * x.shape[2] > 1:
        c, h, w = x.shape
        shown = x[:MAX_CHANNELS]
        cols = grid_shape(len(shown))[1]
        rgb = tile_grid(shown, signed=signed, scale="layer", gap=1, min_px=max(TILE_PX, GRID_PX // cols))
        which = (f"channels 0-{len(shown) - 1} of {c}" if c > len(shown)
                 else f"all {c} channels" if c > 1 else "1 channel")
        detail = f"{which}, {h}x{w} each"
        values = shown
    else:
        v = x.ravel()
        rgb = _vector_tile(v, signed)
        detail = f"{v.size} values in reading order" + (f" ({tuple(x.shape)})" if x.ndim > 1 else "")
        values = v
    if signed:
        m = float(np.max(np.abs(values)))
        lo, hi, scale = -m, m, "red +, white 0, blue -"
    else:
        lo, hi, scale = float(values.min()), float(values.max()), "dark = min, yellow = max"
    return (f'<figure class="tg-map" data-kind="{"grad" if signed else "maps"}">'
            f'<img alt="{html.escape(what)}" src="{_uri(rgb)}" width="{rgb.shape[1]}" height="{rgb.shape[0]}">'
            f"<figcaption>{html.escape(what)}: {html.escape(detail)}; one scale, {scale}"
            f"{_colour_bar(lo, hi, signed)}</figcaption></figure>")


def filter_figure(grad: Any, what: str) -> str:
    """A conv layer's weight gradient (out, in, kh, kw) as one tile per filter (the first ones, each
    the mean over its input channels), each tile on its own red/white/blue scale."""
    g = np.asarray(grad, dtype=np.float64)
    shown = g[:MAX_CHANNELS]
    rgb = filters(shown, reduce="mean")
    which = f"filters 0-{len(shown) - 1} of {len(g)}" if len(g) > len(shown) else f"all {len(g)} filters"
    if g.shape[1] > 1:
        which += f" (mean over {g.shape[1]} input channels)"
    return (f'<figure class="tg-map" data-kind="filter-grad"><img alt="{html.escape(what)}" src="{_uri(rgb)}" '
            f'width="{rgb.shape[1]}" height="{rgb.shape[0]}"><figcaption>{html.escape(what)}: {which}, '
            f"{g.shape[2]}x{g.shape[3]}; each tile on its own scale, red +, white 0, blue -</figcaption></figure>")


def softmax_figure(e: ModuleForward) -> str:
    """The loss step's softmax as bars: the target red, the prediction blue (the top classes when many)."""
    p, target = softmax_target(e)
    p, t = p[0], int(target[0])
    pred = int(p.argmax())
    order = list(range(p.size))
    if p.size > MAX_BARS:
        order = sorted(np.argsort(-p)[:MAX_BARS - 1].tolist() + ([t] if t not in np.argsort(-p)[:MAX_BARS - 1]
                                                                  else []), key=lambda k: -p[k])
    top = float(p[order].max()) or 1.0
    bars = []
    for k in order:
        cls = " tg-target" if k == t else (" tg-pred" if k == pred else "")
        bars.append(f'<div class="tg-bar{cls}" data-class="{k}"><span class="tg-k">{k}</span>'
                    f'<span class="tg-fill" style="width: {160 * p[k] / top:.1f}px"></span>'
                    f"<span>{p[k]:.3f}</span></div>")
    more = f" (the top {len(order)} of {p.size} classes)" if len(order) < p.size else ""
    return (f'<figure class="tg-softmax"><div class="tg-bars">{"".join(bars)}</div>'
            f"<figcaption>softmax{more}: target {t} in red (p = {number(float(p[t]))}), "
            f"predicted {pred}{'' if pred == t else ' in blue'}</figcaption></figure>")


def input_figure(x: Any, caption: str = "input") -> str:
    """The input image in grey (channels averaged), enlarged without smoothing."""
    a = np.asarray(x, dtype=np.float64)
    while a.ndim > 2:
        a = a.mean(axis=0) if a.shape[0] != 1 else a[0]
    lo, hi = float(a.min()), float(a.max())
    g = np.rint(255 * (a - lo) / (hi - lo)).astype(np.uint8) if hi > lo else np.zeros(a.shape, np.uint8)
    k = max(1, math.ceil(112 / max(a.shape)))
    rgb = np.kron(np.repeat(g[:, :, None], 3, axis=2), np.ones((k, k, 1), np.uint8))
    return (f'<figure class="tg-input"><img alt="input" src="{_uri(rgb)}" width="{rgb.shape[1]}" '
            f'height="{rgb.shape[0]}"><figcaption>{html.escape(caption)}</figcaption></figure>')


def module_graph(stepper: ModuleStepper) -> tuple[Any, dict[int, str]]:
    """The modules as a Graphviz digraph, one box per forward module step (``m1``, ``m2``, ...), an
    edge from the step that made each input; and for every module event its box's name."""
    import graphviz

    dig = graphviz.Digraph("modules", graph_attr={"rankdir": "TB", "nodesep": "0.15", "ranksep": "0.22",
                                                  "margin": "0.05"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "white",
                                      "fontname": "Helvetica", "fontsize": "9", "height": "0.25",
                                      "margin": "0.06,0.03",
                                      "color": "#7d8fa8"},
                           edge_attr={"color": "#7d8fa8", "arrowsize": "0.6"})
    made: dict[int, str] = {}
    box: dict[int, str] = {}
    inputs = 0
    for e in stepper.events:
        if not isinstance(e, ModuleForward):
            continue
        name = f"m{e.number}"
        kind = type(e.module).__name__ if e.module is not None else "+".join(dict.fromkeys(e.op_names))
        dig.node(name, f"{e.scope}\n{kind} {tuple(np.shape(e.result))}")
        for node in e.inputs:
            if id(node) not in made:
                inputs += 1
                made[id(node)] = f"in{inputs}"
                dig.node(made[id(node)], f"{stepper.name(node)} {tuple(np.shape(node.data))}",
                         fillcolor="#dbe9f6")
            dig.edge(made[id(node)], name)
        for op in e.ops:
            made[id(op.node)] = name
        box[e.index] = name
    for e in stepper.events:
        if isinstance(e, ModuleBackward):
            box[e.index] = made.get(id(e.ops[0].child), "")
        elif isinstance(e, SeedStep):
            box[e.index] = made.get(id(e.node), "")
    return dig, box


def _graph_panel(stepper: ModuleStepper) -> tuple[str, dict[int, str], bytes | None]:
    from .draw import GraphvizMissing, pipe
    from .player import prefix_svg_ids

    dig, box = module_graph(stepper)
    try:
        svg = pipe(dig, "svg").decode("utf-8")
    except GraphvizMissing:
        return ('<p class="tg-nograph">The module graph needs Graphviz\'s <code>dot</code>, which is not '
                "installed.</p>", box, None)
    inline = svg[svg.index("<svg"):]
    return (f'<div class="tg-graph">{prefix_svg_ids(inline, "@ID@-graph")}</div>', box, svg.encode("utf-8"))


def _model_input(stepper: ModuleStepper) -> Any:
    first = next((e for e in stepper.events if isinstance(e, ModuleForward) and e.input_values), None)
    return None if first is None else first.input_values[0]


def module_frames(stepper: ModuleStepper, *, title: str | None = None, lr: float = LR) -> Any:
    """One frame per module step of ``stepper`` plus the start, as :class:`viz.frames.Frames`
    (``lr``: the learning rate the update-to-weight ratios are stated for)."""
    from .frames import Frames

    title = title or (type(stepper.model).__name__ if stepper.model is not None else stepper.name(stepper.root))
    panel, box, svg = _graph_panel(stepper)
    x = _model_input(stepper)
    shape = "" if x is None else f" {tuple(np.shape(x))}"
    aside = ('<div class="tg-aside">' + ("" if x is None else input_figure(x, f"input{shape}"))
             + "<h4>modules (current one highlighted)</h4>" + panel + "</div>")
    forward = sum(isinstance(e, ModuleForward) for e in stepper.events)
    backward = sum(isinstance(e, ModuleBackward) for e in stepper.events)
    sections = []
    for pos in range(len(stepper.events) + 1):
        e = stepper.events[pos - 1] if pos else None
        if e is None:
            text = (f"start  {title}: the input{shape} is known, nothing else yet.\n"
                    f"Enter (or the right arrow) runs the forward pass one module at a time ({forward} steps), "
                    f"then the backward pass ({backward} steps).")
            pictures = ""                       # the input is beside every frame
            direction, node = "forward", ""
        elif isinstance(e, ModuleForward):
            text = describe_module(e, lr=lr)
            pictures = (softmax_figure(e) if e.ops[-1].op.name == "cross_entropy"
                        else map_figure(e.result, f"{e.scope} output", signed=False))
            direction, node = "forward", box.get(e.index, "")
        elif isinstance(e, ModuleBackward):
            text = describe_module(e, lr=lr)
            grads = [(g, f"d{e.root_name}/d(input of {e.scope})") for _, g in e.downstream]
            if not grads and e.upstream is not None:
                grads = [(e.upstream, f"d{e.root_name}/d(output of {e.scope})")]
            pictures = "".join(map_figure(g, what, signed=True) for g, what in grads)
            pictures += "".join(filter_figure(g, f"d{e.root_name}/d({name})") for name, p, g in e.param_grads
                                if np.ndim(g) == 4)
            direction, node = "backward", box.get(e.index, "")
        else:                                    # the seed: d loss / d loss = 1
            text = describe(e)
            pictures, direction, node = "", "backward", box.get(e.index, "")
        sections.append(
            f'<section class="frame" id="@ID@-frame-{pos + 1}" data-index="{pos}" data-dir="{direction}" '
            f'data-node="{node}"{"" if pos == 0 else " hidden"}>\n<div class="tg-row">'
            f'<pre class="caption">{html.escape(text)}</pre><div class="tg-pics">{pictures}</div></div>\n</section>')
    files = {} if svg is None else {"modules.svg": svg}
    return Frames(title, sections, aside=aside, css=CSS, files=files)
