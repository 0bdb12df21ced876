"""viz.draw / viz.render: annotated diagrams of Value, Tensor and stepped graphs."""
import html
import os
import re
import subprocess
import sys

import graphviz
import numpy as np
import pytest

import tinygrad_cv as tg
import viz
from tinygrad_cv.expr import parse
from tinygrad_cv.graph import name_scope
from tinygrad_cv.step import Stepper

needs_dot = pytest.mark.skipif(not viz.has_dot(), reason="Graphviz 'dot' is not installed")


def course():
    e = parse("(x + y) * z", {"x": -2, "y": 5, "z": -4})
    e.root.backward()
    return e


def mlp():
    tg.manual_seed(0)
    x = tg.randn(4, 3)
    x.label = "x"
    w1, b1 = tg.randn(3, 8, requires_grad=True), tg.zeros(8, requires_grad=True)
    w2, b2 = tg.randn(8, 2, requires_grad=True), tg.zeros(2, requires_grad=True)
    with name_scope("net"):
        with name_scope("fc1"):
            h = x @ w1 + b1
        with name_scope("act"):
            h = h.relu()
        with name_scope("fc2"):
            out = h @ w2 + b2
    loss = (out * out).mean()
    loss.label = "loss"
    loss.backward()
    params = {"net.fc1.weight": w1, "net.fc1.bias": b1, "net.fc2.weight": w2, "net.fc2.bias": b2}
    return loss, params


def test_value_graph_micrograd_style():
    e = course()
    d = viz.draw(e.root)
    assert isinstance(d, graphviz.Digraph)
    src = d.source
    for text in ("data -2", "grad -4", "data 3", "data -12", "grad 1", "grad 3"):
        assert text in src, text
    op_nodes = re.findall(r'\bo\d+ \[label="([^"]+)"[^\]]*shape="circle"', src)
    assert sorted(op_nodes) == ["*", "+"]
    assert len(re.findall(r"->", src)) == 6               # 4 inputs into op nodes + 2 op -> result


def test_highlight_options():
    e = course()
    q = e.nodes["q"]
    src = viz.draw(e.root, highlight="q", highlight_edge=(e.inputs["x"], q)).source
    assert src.count("penwidth=3") == 1
    assert 'border="3"' in src


def test_stepper_drawn_at_its_position():
    e = parse("(x + y) * z", {"x": -2, "y": 5, "z": -4})
    s = Stepper(e.root)
    src0 = viz.draw(s).source
    assert "data ?" in src0 and "grad ?" in src0 and "grad -4" not in src0
    for _ in range(4):                                     # q, f, seed, f -> q
        s.next()
    src = viz.draw(s).source
    assert "data -12" in src and "grad -4" in src and "grad 3" not in src
    assert "penwidth=3" in src                             # the current edge


def test_tensor_graph_clusters_params_and_stats():
    loss, params = mlp()
    src = viz.draw(loss, params=params).source
    for name in params:
        assert f"<b>{name}</b>" in src
    for text in ("(4, 8) float32", "mean ", "std ", "min ", "max ", "|grad| mean"):
        assert text in src
    clusters = re.findall(r"subgraph (cluster_\w+)", src)
    assert len(clusters) == 4                              # net, net.fc1, net.act, net.fc2
    # nested: net.fc1 opens inside net
    assert "\n\tsubgraph cluster_net_" in src and "\n\t\tsubgraph cluster_net_fc1_" in src


def test_collapse_to_module_boxes():
    loss, params = mlp()
    full = viz.draw(loss, params=params).source
    one = viz.draw(loss, params=params, collapse=True).source
    two = viz.draw(loss, params=params, collapse=2).source
    assert "<b>net</b>" in one and "net.fc1" not in one
    assert "<b>net.fc1</b>" in two and "2 parameters (32 numbers)" in two and "1 op," in two
    assert len(one) < len(two) < len(full)


def big_graph():
    """260 named blocks of (h @ W * 0.3).tanh() + h * 0.5: a loss graph of 2,000+ nodes and its params."""
    tg.manual_seed(0)
    h = tg.randn(4, 8)
    params = {}
    for i in range(260):
        with name_scope("blocks"), name_scope(str(i)):
            w = tg.randn(8, 8, requires_grad=True)
            params[f"blocks.{i}.weight"] = w
            h = (h @ w * 0.3).tanh() + h * 0.5
    loss = h.mean()
    loss.backward()
    return loss, params


def test_big_graph_of_2000_nodes_draws():
    loss, params = big_graph()
    assert len(tg.trace(loss)) >= 2000
    d = viz.draw(loss, params=params)
    assert d.source.count("cluster_") >= 260


@needs_dot
def test_big_graph_of_2000_nodes_is_laid_out_by_dot():
    loss, params = big_graph()
    d = viz.draw(loss, params=params)
    n_nodes = len([m for m in re.findall(r"^\s*(\w+) \[", d.source, flags=re.M) if m not in ("graph", "node", "edge")])
    svg = d.pipe(format="svg").decode()                # every one of the 2,000+ nodes laid out
    assert svg.startswith("<?xml") and n_nodes >= 2000
    assert svg.count('class="node"') == n_nodes
    assert svg.count('class="cluster"') >= 260 and "blocks.259.weight" in html.unescape(svg)
    assert viz.draw(loss, params=params, collapse=2).source.count("<b>blocks.") == 260


def test_render_dot_always(tmp_path, monkeypatch):
    e = course()
    monkeypatch.setenv("PATH", str(tmp_path))              # no dot anywhere
    out = viz.render(e.root, tmp_path / "g.dot")
    text = out.read_text()
    assert text.startswith("digraph") and "grad -4" in text


def test_render_without_dot_says_install(tmp_path, monkeypatch):
    e = course()
    monkeypatch.setenv("PATH", str(tmp_path))
    for suffix in (".svg", ".png", ".pdf"):
        with pytest.raises(viz.GraphvizMissing) as info:
            viz.render(e.root, tmp_path / f"g{suffix}")
        msg = str(info.value)
        assert "\n" not in msg and "apt-get install graphviz" in msg


def test_render_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf, \.dot"):
        viz.render(course().root, tmp_path / "g.jpg")


@needs_dot
def test_render_svg_png_pdf(tmp_path):
    e = course()
    svg = html.unescape(viz.render(e.root, tmp_path / "g.svg", title="f = (x + y) * z").read_text())
    assert "<svg" in svg and "f = (x + y) * z" in svg
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in ("data -2", "grad -4", "data 3", "data -12", "grad 1", "grad 3", "*", "+"):
        assert any(label in t for t in texts), label       # every value, gradient and op is drawn
    assert svg.count('class="node"') == 7 and svg.count('class="edge"') == 6
    # the PNG and PDF are the same layout: their size is the SVG's (in points) at 96 dpi / in points
    w_pt, h_pt = (float(v) for v in re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    png = viz.render(e.root, tmp_path / "g.png", title="f = (x + y) * z").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w_px, h_px = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert abs(w_px - w_pt * 96 / 72) <= 2 and abs(h_px - h_pt * 96 / 72) <= 2, (w_px, h_px, w_pt, h_pt)
    pdf = viz.render(e.root, tmp_path / "g.pdf", title="f = (x + y) * z").read_bytes()
    assert pdf[:5] == b"%PDF-"
    box = [float(v) for v in re.search(rb"/MediaBox \[\s*([\d.\s]+)\]", pdf).group(1).split()]
    pad_w, pad_h = box[2] - box[0] - w_pt, box[3] - box[1] - h_pt          # dot adds a margin to a PDF page
    assert 0 <= pad_w <= 80 and abs(pad_w - pad_h) <= 2, (box, w_pt, h_pt)
    loss, params = mlp()
    big = html.unescape(viz.render(loss, tmp_path / "mlp.svg", params=params).read_text())
    for name in params:                                    # each parameter node is labelled by its name
        assert name in big, name
    assert "loss" in big


def test_engine_never_imports_viz():
    code = ("import sys, tinygrad_cv, tinygrad_cv.step, tinygrad_cv.expr, tinygrad_cv.cli; "
            "assert 'viz' not in sys.modules, 'engine imported viz'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_viz_lazy_names_listed():
    assert {"grad_flow", "feature_maps", "filters"} <= set(viz.__all__)
    with pytest.raises(AttributeError):
        viz.no_such_thing


def test_draw_rejects_other_objects():
    with pytest.raises(TypeError, match="Value, a Tensor, a Graph or a Stepper"):
        viz.draw(3.0)
    d = viz.draw(np.float64(1.0) * 0 + tg.Value(1.0))
    assert isinstance(d, graphviz.Digraph) and "data 1" in d.source


@needs_dot
def test_lenet_loss_graph_on_a_batch_of_4_clusters_by_module(tmp_path):
    import tinygrad_cv.nn.functional as F

    tg.set_backend("numpy")
    model = tg.models.lenet5()
    loss = F.cross_entropy(model(tg.randn(4, 1, 28, 28)), np.array([1, 2, 3, 4]))
    loss.backward()
    params = dict(model.named_parameters())
    src = viz.draw(loss, params=params).source
    clusters = set(re.findall(r"subgraph (cluster_\w+)", src))
    assert any("features" in c for c in clusters) and any("classifier" in c for c in clusters)
    for name in ("features.0.weight", "features.3.weight", "classifier.4.bias"):
        assert f"<b>{name}</b>" in src
    viz.render(loss, tmp_path / "lenet.svg", params=params)
    assert (tmp_path / "lenet.svg").stat().st_size > 10_000
