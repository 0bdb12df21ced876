"""``tgcv flow mlp``: the gradient-flow diagram of a deep MLP after one batch of digits.

    tgcv flow mlp --depth 6 --act tanh --init small -o flow.svg     # vanishing gradients
    tgcv flow mlp --depth 6 --act tanh --init xavier -o flow.svg    # none vanishing
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from . import fail

INITS = ("small", "xavier", "he")
ACTS = ("tanh", "relu", "sigmoid")
FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv")


def build_mlp(depth: int, width: int, act: str, init: str) -> Any:
    """784 -> width x depth -> 10 with nn.Linear and ``act`` between; weights drawn by ``init``
    (small_random_ std 0.01, xavier_ std 1/sqrt(fan_in), he_ std sqrt(2/fan_in)), biases zero."""
    from tinygrad_cv import nn

    activation = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[act]
    fill = {"small": nn.init.small_random_, "xavier": nn.init.xavier_, "he": nn.init.he_}[init]
    sizes = [784] + [width] * depth + [10]
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        fill(lin.weight)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < depth:
            layers.append(activation())
    return nn.Sequential(*layers)


def run_mlp(depth: int = 6, width: int = 100, act: str = "tanh", init: str = "small", batch: int = 256,
            seed: int = 0) -> tuple[Any, dict[str, Any], float]:
    """Build the MLP, push the first ``batch`` shipped training digits through it with
    cross-entropy and backpropagate. Returns (model, outputs of each Linear, loss)."""
    import tinygrad_cv as tg
    import tinygrad_cv.nn.functional as F
    from tinygrad_cv import data, nn
    from viz.maps import capture_outputs

    tg.manual_seed(seed)
    model = build_mlp(depth, width, act, init)
    images, labels = data.mnist("train")
    x = data.normalize(data.to_float(images[:batch])).reshape(min(batch, len(images)), -1)
    with capture_outputs(model, nn.Linear) as outs:
        loss = F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(labels[:batch]))
    loss.backward()
    return model, dict(outs), float(loss.item())


@click.command("flow")
@click.argument("model", type=click.Choice(["mlp"]))
@click.option("--depth", type=click.IntRange(1, 100), default=6, show_default=True, help="Hidden layers.")
@click.option("--width", type=click.IntRange(1, 4096), default=100, show_default=True, help="Units per hidden layer.")
@click.option("--act", type=click.Choice(ACTS), default="tanh", show_default=True, help="Activation.")
@click.option("--init", "init", type=click.Choice(INITS), default="small", show_default=True,
              help="small: std 0.01; xavier: std 1/sqrt(fan_in); he: std sqrt(2/fan_in).")
@click.option("--batch", type=click.IntRange(1, 8000), default=256, show_default=True, help="Digits in the batch.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Also show the update/weight ratio lr*|dW|/|W|.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initialization.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Diagram: .svg, .png, .pdf or .dot (.dot needs no Graphviz install).")
@click.option("--rankdir", type=click.Choice(["LR", "TB"]), default="LR", show_default=True,
              help="Diagram direction: LR (a row, for slides) or TB (a column, for deep nets).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also a bar plot over depth (.png/.svg/.pdf; needs matplotlib).")
def command(model: str, depth: int, width: int, act: str, init: str, batch: int, lr: float | None, seed: int,
            output: Path | None, rankdir: str, plot: Path | None) -> None:
    """One batch of digits through a deep MLP: per-layer gradients as a table and a diagram.

    \b
    tgcv flow mlp --depth 6 --act tanh --init small -o flow.svg --plot bars.png
    """
    for p in (output, plot):
        if p is not None and not p.parent.is_dir():
            fail(f"cannot write {p}: directory {p.parent} does not exist")
    if output is not None and output.suffix.lower() not in FORMATS:
        fail(f"cannot tell the format of {output.name!r}: use one of .svg, .png, .pdf, .dot")
    import viz
    from viz import flow

    net, outs, loss = run_mlp(depth, width, act, init, batch, seed)
    rows = flow.layer_stats(net, lr=lr, outputs=outs)
    title = f"MLP 784 → {width} x {depth} → 10, {act}, {init} init, batch {batch}: loss {loss:.3f}"
    click.echo(title)
    click.echo(flow.format_table(rows))
    if output is not None:
        try:
            path = viz.render(flow.grad_flow(net, lr=lr, outputs=outs, title=title, rankdir=rankdir), output)
        except viz.GraphvizMissing as e:
            fail(str(e))
            return
        click.echo(f"wrote {path}")
    if plot is not None:
        try:
            click.echo(f"wrote {flow.grad_flow_plot(net, plot, lr=lr, outputs=outs, title=title)}")
        except RuntimeError as e:
            fail(str(e))
