"""Gradient flow: per-layer statistics, statuses, the diagram, the plot and ``tgcv flow``."""
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import nn
from tinygrad_cv.cli.flow import build_mlp, run_mlp
from viz import flow


@pytest.fixture(scope="module")
def tanh_small():
    return run_mlp(depth=6, width=100, act="tanh", init="small", batch=256)


@pytest.fixture(scope="module")
def tanh_xavier():
    return run_mlp(depth=6, width=100, act="tanh", init="xavier", batch=256)


def test_tanh_small_init_vanishes(tanh_small):
    model, outs, loss = tanh_small
    rows = flow.layer_stats(model, outputs=outs)
    assert [r["name"] for r in rows] == ["0", "2", "4", "6", "8", "10", "12"]
    assert [r["status"] for r in rows] == ["vanishing"] * 7
    assert all(r["ratio"] < flow.VANISHING for r in rows)
    assert all(r["mean_grad"] < 1e-6 for r in rows)                 # weight gradients ~1e-8
    assert math.isclose(loss, math.log(10), rel_tol=1e-3)           # tiny weights: uniform scores
    # the signal reaching each layer shrinks ~10x per tanh layer: 6 orders of magnitude over depth
    first, last = rows[0]["out_grad"], rows[-1]["out_grad"]
    assert first < 1e-5 * last
    back = [r["out_grad"] for r in rows]
    assert all(a < 0.2 * b for a, b in zip(back, back[1:]))
    # the last hidden layer's signal is below 1e-3 x the output's, the first below 1e-8 absolute
    assert rows[-2]["out_grad"] < 0.1 * last and first < 1e-8


def test_tanh_xavier_none_vanish(tanh_xavier):
    model, outs, _ = tanh_xavier
    rows = flow.layer_stats(model, outputs=outs)
    assert [r["status"] for r in rows] == ["healthy"] * 7
    assert all(1e-2 < r["ratio"] < 1.0 for r in rows)
    assert all(r["mean_grad"] > 1e-3 for r in rows)
    assert rows[0]["out_grad"] > 0.05 * rows[-1]["out_grad"]        # at most ~10x over 6 layers


def test_relu_he_healthy():
    model, outs, _ = run_mlp(depth=6, width=64, act="relu", init="he", batch=128)
    rows = flow.layer_stats(model, outputs=outs)
    assert [r["status"] for r in rows] == ["healthy"] * 7
    assert all(1e-2 < r["ratio"] < 1.0 for r in rows)


def _one_batch(model, n=64):
    images, labels = tg.data.mnist("train")
    x = tg.data.normalize(tg.data.to_float(images[:n])).reshape(n, -1)
    loss = F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(labels[:n]))
    loss.backward()
    return loss


def test_large_weights_explode():
    model = build_mlp(depth=4, width=64, act="relu", init="he")
    for _, p in model.named_parameters():
        if p.ndim == 2:
            nn.init.normal_(p, 0.0, 1.0)                              # std 1: ~6x larger per layer
    _one_batch(model)
    rows = flow.layer_stats(model)
    assert [r["status"] for r in rows[:-1]] == ["exploding"] * 4
    assert all(r["ratio"] > flow.EXPLODING for r in rows[:-1])


def test_update_ratio_from_lr_and_from_snapshot():
    model = build_mlp(depth=2, width=32, act="tanh", init="xavier")
    _one_batch(model)
    before = model.state_dict()
    lr = 0.05
    for p in model.parameters():
        p.data -= lr * p.grad                                         # one SGD step by hand
    by_lr = flow.layer_stats(model, lr=lr)
    by_snapshot = flow.layer_stats(model, before=before)
    for a, b in zip(by_lr, by_snapshot):
        w1, g = a["weight_norm"], a["grad_norm"]
        assert b["update_ratio"] == pytest.approx(lr * g / np.linalg.norm(before[f"{a['name']}.weight"]), rel=1e-4)
        assert a["update_ratio"] == pytest.approx(lr * g / w1, rel=1e-6)
    assert flow.layer_stats(model)[0]["update_ratio"] is None


def test_graph_input_uses_parameter_leaves(tanh_small):
    model = build_mlp(depth=2, width=16, act="tanh", init="small")
    loss = _one_batch(model, n=32)
    params = dict(model.named_parameters())
    rows = flow.layer_stats(tg.trace(loss), names=params)
    assert [r["name"] for r in rows] == list(params)                 # weights and biases, in order
    by_model = {r["name"]: r for r in flow.layer_stats(model)}
    for r in rows:
        if r["name"].endswith("weight"):
            assert r["ratio"] == pytest.approx(by_model[r["name"].rsplit(".", 1)[0]]["ratio"])
    unnamed = flow.layer_stats(loss)                                  # a root is traced; leaves get leafN
    assert [r["name"] for r in unnamed] == [f"leaf{i}" for i in range(6)]


def test_scalar_graph():
    x, w = tg.Value(2.0, label="x"), tg.Value(-3.0, label="w")
    f = (x * w).tanh()
    f.backward()
    rows = flow.layer_stats(f)
    assert [r["name"] for r in rows] == ["x", "w"]
    assert rows[1]["mean_grad"] == pytest.approx(abs(2.0 * (1 - math.tanh(-6.0) ** 2)))


def test_status_thresholds_and_errors():
    assert flow.status_of(1e-5) == "vanishing" and flow.status_of(0.0) == "vanishing"
    assert flow.status_of(1e-4) == "healthy" and flow.status_of(10.0) == "healthy"
    assert flow.status_of(11.0) == "exploding" and flow.status_of(float("nan")) == "exploding"
    assert flow.status_of(float("inf")) == "exploding"
    with pytest.raises(ValueError, match="backward"):
        flow.layer_stats(build_mlp(depth=1, width=4, act="relu", init="he"))
    with pytest.raises(TypeError, match="Module"):
        flow.layer_stats(42)


def test_diagram_boxes_colours_and_legend(tanh_small):
    import viz

    model, outs, _ = tanh_small
    dot = viz.grad_flow(model, outputs=outs, title="tanh small")
    src = dot.source
    assert src.count("VANISHING") == 7 and "HEALTHY" not in src
    assert src.count(flow.STATUS_COLORS["vanishing"][0]) >= 8        # 7 boxes + the legend
    for text in ("healthy: 0.0001", "vanishing: ρ &lt; 0.0001", "exploding: ρ &gt; 10"):
        assert text in src
    assert "input" in src and "loss" in src and src.count("dir=back") == 8


def test_table_text(tanh_xavier):
    model, outs, _ = tanh_xavier
    text = flow.format_table(flow.layer_stats(model, outputs=outs))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["layer", "type", "weight"] and "status" in lines[0]
    assert len(lines) == 2 + 7 + 1 and lines[2].split()[:3] == ["0", "Linear", "100x784"]
    assert all(line.endswith("healthy") for line in lines[2:9])


def test_bar_plot(tmp_path, tanh_small):
    pytest.importorskip("matplotlib")
    model, outs, _ = tanh_small
    path = flow.grad_flow_plot(model, tmp_path / "bars.png", outputs=outs)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def tgcv(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_writes_dot_and_table(tmp_path):
    out = tgcv("flow", "mlp", "--depth", "6", "--act", "tanh", "--init", "small", "--batch", "64",
               "-o", str(tmp_path / "flow.dot"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "tanh, small init" in lines[0]
    rows = [ln for ln in lines if ln.split() and ln.split()[0] in {"0", "2", "4", "6", "8", "10", "12"}]
    assert len(rows) == 7 and all(r.endswith("vanishing") for r in rows)
    source = (tmp_path / "flow.dot").read_text()
    assert source.startswith("digraph") and source.rstrip().endswith("}") and source.count("VANISHING") == 7
    if shutil.which("dot"):
        check = subprocess.run(["dot", "-Tsvg", str(tmp_path / "flow.dot")], capture_output=True, text=True)
        assert check.returncode == 0 and "<svg" in check.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_cli_writes_svg_and_plot(tmp_path):
    args = ["flow", "mlp", "--depth", "2", "--width", "32", "--act", "relu", "--init", "he", "--batch", "32",
            "-o", str(tmp_path / "flow.svg")]
    try:
        import matplotlib  # noqa: F401
        args += ["--plot", str(tmp_path / "bars.png")]
    except ImportError:
        pass
    out = tgcv(*args)
    assert out.returncode == 0, out.stderr
    svg = (tmp_path / "flow.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg and svg.count("HEALTHY") == 3
    assert "--plot" not in args or (tmp_path / "bars.png").stat().st_size > 0


@pytest.mark.parametrize("args, words", [
    (["flow", "mlp", "--act", "swish"], "swish"),
    (["flow", "mlp", "--depth", "0"], "depth"),
    (["flow", "mlp", "-o", "flow.bmp"], "flow.bmp"),
    (["flow", "mlp", "-o", "no/such/dir/flow.svg"], "does not exist"),
])
def test_cli_errors_one_line(args, words, tmp_path):
    out = tgcv(*args, cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and words in out.stderr and "Traceback" not in out.stderr
