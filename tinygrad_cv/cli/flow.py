"""``tgcv flow MODEL``: the gradient flow of a network after one batch, per layer, as a table and a picture.

    tgcv flow mlp --depth 6 --act tanh --init small -o flow_small.svg   # vanishing gradients
    tgcv flow resnet50 --input 3x64x64 --batch 8 -o r50.png             # any model of the zoo
    tgcv flow cnn --depth 20 --compare plain,residual -o pair.png       # side by side, one scale

MODEL is ``mlp`` (784 -> width x depth -> 10), ``cnn`` (a stem conv, depth 3x3 convs in
two-conv blocks, pooling, FC: tinygrad_cv.models.deep) or a name from the model zoo's
registry. The batch is the shipped training digits, resized or padded to the input size
and repeated over its channels, or unit-Gaussian images with ``--synthetic``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

import numpy as np

from . import fail
from .options import SHAPE, NamedChoice, backend_option

INITS = ("small", "xavier", "he")
ACTS = ("tanh", "relu", "sigmoid")
FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv")
SHEET_FORMATS = (".svg", ".png", ".pdf")
MAX_VALUES = 3 * 1024 * 1024 * 8   # one batch's input, e.g. 8 images of 3x1024x1024
DIAGRAM_MAX = 7                  # more lines than this: the compact sheet (a column of 7 boxes is ~1500 px tall)
# --compare names: each sets one knob of the mlp / cnn
VARIANTS = {"plain": ("residual", False), "residual": ("residual", True), "bn": ("bn", True),
            "nobn": ("bn", False), **{a: ("act", a) for a in ACTS}, **{i: ("init", i) for i in INITS}}


def _model_names() -> list[str]:
    from ..models import registry

    return ["mlp", "cnn", *registry.names()]


def build_mlp(depth: int, width: int, act: str, init: str, bn: bool = False) -> Any:
    """784 -> width x depth -> 10 with nn.Linear, [BatchNorm1d,] ``act``; weights drawn by ``init``
    (small_random_ std 0.01, xavier_ std 1/sqrt(fan_in), he_ std sqrt(2/fan_in)), biases zero."""
    from ..models.deep import deep_mlp

    return deep_mlp(depth, width, act, init, bn)


def run_mlp(depth: int = 6, width: int = 100, act: str = "tanh", init: str = "small", batch: int = 256,
            seed: int = 0) -> tuple[Any, dict[str, Any], float]:
    """Build the MLP, push the first ``batch`` shipped training digits through it with
    cross-entropy and backpropagate. Returns (model, outputs of each Linear, loss)."""
    import tinygrad_cv as tg
    import tinygrad_cv.nn.functional as F
    from tinygrad_cv import nn
    from viz.flow import input_batch
    from viz.maps import capture_outputs

    tg.manual_seed(seed)
    model = build_mlp(depth, width, act, init)
    x, y = input_batch((784,), batch)
    with capture_outputs(model, nn.Linear) as outs:
        loss = F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(y))
    loss.backward()
    return model, dict(outs), float(loss.item())


def build(model: str, knobs: dict[str, Any], seed: int) -> tuple[Any, tuple[int, ...], str]:
    """(fresh model, its default input shape, a one-line description) for a MODEL name and the knobs."""
    import tinygrad_cv as tg
    from ..models import registry
    from ..models.deep import deep_cnn

    tg.manual_seed(seed)
    k = knobs
    norm = ", batch norm" if k["bn"] else ""
    if model == "mlp":
        return (build_mlp(k["depth"], k["width"], k["act"], k["init"], k["bn"]), (784,),
                f"MLP 784 → {k['width']} x {k['depth']} → 10, {k['act']}, {k['init']} init{norm}")
    if model == "cnn":
        kind = "residual" if k["residual"] else "plain"
        return (deep_cnn(k["depth"], k["width"], k["residual"], k["bn"], k["act"], k["init"]), (1, 28, 28),
                f"{kind} CNN, {k['depth']} 3x3 convs of {k['width']}, {k['act']}, {k['init']} init{norm}")
    spec = registry.get(model)
    return spec.build(), spec.input_shape, spec.description


@click.command("flow")
@click.argument("model", metavar="MODEL", type=NamedChoice("model", _model_names))
@click.option("--input", "shape", type=SHAPE, default=None, metavar="CxHxW",
              help="Input size of one example [the model's own; mlp 784, cnn 1x28x28].")
@click.option("--synthetic", is_flag=True, help="Unit-Gaussian images and random labels instead of digits.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Weights to load (tgcv train --save); default: a fresh model.")
@click.option("--batch", type=click.IntRange(1, 8000), default=None, help="Examples in the batch [mlp 256, cnn 32, zoo 8].")
@click.option("--compare", default=None, metavar="A,B",
              help="mlp/cnn only: the same net with each variant, side by side on one scale: "
                   "plain,residual (cnn) | nobn,bn | sigmoid,relu,tanh | small,xavier,he.")
@click.option("--depth", type=click.IntRange(1, 200), default=None, help="Hidden layers (mlp, default 6) or convs (cnn, even, default 20).")
@click.option("--width", type=click.IntRange(1, 4096), default=None, help="Units per hidden layer (mlp, 100) or channels (cnn, 16).")
@click.option("--act", type=click.Choice(ACTS), default=None, help="Activation [mlp tanh, cnn relu].")
@click.option("--init", "init", type=click.Choice(INITS), default=None,
              help="small: std 0.01; xavier: std 1/sqrt(fan_in); he: std sqrt(2/fan_in) [mlp small, cnn he].")
@click.option("--bn/--no-bn", default=False, show_default=True, help="mlp/cnn: batch norm after each weight layer.")
@click.option("--residual/--plain", default=False, show_default=True, help="cnn: identity shortcuts around each block.")
@click.option("--collapse", type=click.IntRange(0, 9), default=0, show_default=True,
              help="One line per module this many names deep (2: ResNet's blocks); 0: every layer.")
@click.option("--eval", "eval_mode", is_flag=True, help="Batch norm with its running statistics (eval mode).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Also show the update/weight ratio lr*|dW|/|W|.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initialization.")
@backend_option(expose=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Picture: .svg, .png or .pdf (.dot: the box diagram's source, no Graphviz needed).")
@click.option("--style", type=click.Choice(["auto", "diagram", "sheet"]), default="auto", show_default=True,
              help=f"diagram: boxes and arrows (Graphviz); sheet: a table, any depth (matplotlib); "
                   f"auto: diagram up to {DIAGRAM_MAX} lines.")
@click.option("--rankdir", type=click.Choice(["auto", "LR", "TB"]), default="auto", show_default=True,
              help="Diagram direction: LR (a row), TB (a column); auto: a row up to 4 layers.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also a bar plot over depth (.png/.svg/.pdf; needs matplotlib).")
def command(model: str, shape: tuple[int, ...] | None, synthetic: bool, checkpoint: Path | None, batch: int | None,
            compare: str | None, depth: int | None, width: int | None, act: str | None, init: str | None, bn: bool,
            residual: bool, collapse: int, eval_mode: bool, lr: float | None, seed: int, output: Path | None,
            style: str, rankdir: str, plot: Path | None) -> None:
    """One batch through MODEL: per-layer mean and max |dL/dW|, |dL/dW|/|W|, mean |dL/d out| and a verdict.

    \b
    tgcv flow mlp --depth 6 --act tanh --init small -o flow_small.svg
    tgcv flow resnet50 --input 3x64x64 --batch 8 --collapse 2 -o r50.png
    tgcv flow cnn --depth 20 --compare plain,residual -o pair.png
    tgcv flow mlp --act sigmoid --compare nobn,bn -o bn.png
    """
    for p in (output, plot):
        if p is not None and not p.parent.is_dir():
            fail(f"cannot write {p}: directory {p.parent} does not exist")
    if output is not None and output.suffix.lower() not in FORMATS:
        fail(f"cannot tell the format of {output.name!r}: use one of .svg, .png, .pdf, .dot")
    toy = model in ("mlp", "cnn")
    knobs = {"depth": depth or (6 if model == "mlp" else 20), "width": width or (100 if model == "mlp" else 16),
             "act": act or ("tanh" if model == "mlp" else "relu"), "init": init or ("small" if model == "mlp" else "he"),
             "bn": bn, "residual": residual}
    if not toy and any(v is not None for v in (depth, width, act, init)) or not toy and (bn or residual):
        fail(f"--depth/--width/--act/--init/--bn/--residual shape the mlp and cnn only, not {model}")
    if model == "cnn" and knobs["depth"] % 2:
        fail(f"--depth {knobs['depth']}: the cnn's convs come in two-conv blocks, give an even number")
    variants = _variants(compare, model) if compare else [None]
    if compare and output is not None and output.suffix.lower() not in SHEET_FORMATS:
        fail(f"--compare draws a sheet: write .svg, .png or .pdf, not {output.suffix}")
    flows = []
    for variant in variants:
        k = dict(knobs, **({VARIANTS[variant][0]: VARIANTS[variant][1]} if variant else {}))
        flows.append(_measure(model, k, shape, synthetic, checkpoint, batch, collapse, eval_mode, lr, seed, variant))
    import viz
    from viz import flow

    for title, rows, _ in flows:
        click.echo(title)
        click.echo(flow.format_table(rows))
    if output is not None:
        lines = max(len(rows) for _, rows, _ in flows)
        as_sheet = compare is not None or style == "sheet" or (style == "auto" and lines > DIAGRAM_MAX)
        if as_sheet and output.suffix.lower() not in SHEET_FORMATS:
            fail(f"{lines} lines are drawn as a sheet: write .svg, .png or .pdf (or --style diagram)")
        try:
            if as_sheet:
                from viz.flowsheet import sheet

                what = flows[0][0]
                if compare:       # "plain CNN, ..." -> "plain vs residual CNN, ..."
                    pair = " vs ".join(variants)
                    what = what.replace(variants[0], pair, 1) if variants[0] in what.split(";")[0] else f"{pair}: {what}"
                drawn = sheet([(v or model, rows) for (_, rows, _), v in zip(flows, variants)], output,
                              title=f"Gradient flow: {what}")
                path = drawn.path
            else:
                title, rows, _ = flows[0]
                path = viz.render(flow.grad_flow(None, rows=rows, title=title, rankdir=rankdir), output)
        except viz.GraphvizMissing as e:
            fail(str(e))
            return
        except RuntimeError as e:
            fail(str(e))
            return
        click.echo(f"wrote {path}")
    if plot is not None:
        try:
            title, rows, _ = flows[0]
            click.echo(f"wrote {flow.grad_flow_plot(None, plot, rows=rows, title=title)}")
        except RuntimeError as e:
            fail(str(e))


def _variants(compare: str, model: str) -> list[str]:
    names = [v.strip() for v in compare.split(",") if v.strip()]
    if model not in ("mlp", "cnn"):
        raise click.BadParameter(f"compares variants of the mlp or the cnn, not of {model}", param_hint="'--compare'")
    bad = [v for v in names if v not in VARIANTS or (model == "mlp" and v in ("plain", "residual"))]
    if bad or len(names) < 2 or len(names) > 4:
        choices = ", ".join(v for v in VARIANTS if model == "cnn" or v not in ("plain", "residual"))
        what = f"unknown variant {bad[0]!r}" if bad else f"{compare!r} names {len(names)} variants, not 2 to 4"
        raise click.BadParameter(f"{what}; choose from {choices}", param_hint="'--compare'")
    return names


def _measure(model: str, knobs: dict[str, Any], shape: tuple[int, ...] | None, synthetic: bool,
             checkpoint: Path | None, batch: int | None, collapse: int, eval_mode: bool, lr: float | None,
             seed: int, variant: str | None) -> tuple[str, list[dict[str, Any]], Any]:
    from viz.flow import input_batch, measure

    net, default_shape, description = build(model, knobs, seed)
    if checkpoint is not None:
        from .. import checkpoint as ckpt

        try:
            ckpt.load(net, checkpoint)
        except (OSError, ValueError, KeyError) as e:
            fail(f"cannot load {checkpoint}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}", 1)
    shape = shape or default_shape
    n = batch or {"mlp": 256, "cnn": 32}.get(model, 8)
    values = n * int(np.prod(shape))
    if values > MAX_VALUES:
        raise click.BadParameter(f"a batch of {n} at {'x'.join(map(str, shape))} is {values:,} values; one pass "
                                 f"keeps every layer's output for backward, so at most {MAX_VALUES:,} "
                                 f"(fewer with --batch or a smaller --input)", param_hint="'--input'")
    try:
        x, y = input_batch(shape, n, synthetic=synthetic, seed=seed)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--input'") from None
    net.train(not eval_mode)
    try:
        rows, loss = measure(net, x, y, collapse=collapse or None, lr=lr)
    except MemoryError:
        fail(f"out of memory for {model} on a batch of {n} at {'x'.join(map(str, shape))}: "
             f"use a smaller --batch or --input", 1)
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise click.BadParameter(f"{model} does not take {'x'.join(map(str, shape))} inputs: {first}",
                                 param_hint="'--input'") from None
    source = "random images" if synthetic else "digits"
    weights = f"weights {checkpoint.name}" if checkpoint else "fresh"
    title = (f"{description}; {weights}, batch of {len(y)} {source} at {'x'.join(map(str, shape))}"
             f"{', eval mode' if eval_mode else ''}: loss {loss:.3f}")
    return title, rows, net
