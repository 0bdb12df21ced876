"""``tgcv step``: step through the forward and backward pass of an expression, one node at a time."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import click

from . import fail
from .options import DIGIT, ModelName


def full_screen_possible() -> bool:
    """The full-screen view needs a real terminal on both ends (and a terminal that can draw)."""
    try:
        ttys = sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
    if not ttys or os.environ.get("TERM", "") in ("", "dumb"):
        return False
    import importlib.util

    return importlib.util.find_spec("textual") is not None    # the view's library (not imported yet)


def key_hint(stepper) -> str:
    """The keys, with a ``set`` example that names one of this expression's own inputs."""
    inputs = [n for n in stepper.graph.leaves if n.label and n.requires_grad]
    example = f"set {inputs[0].label}=3 change an input, " if inputs else ""
    return f"Enter next, b back, {example}q quit"


@click.command("step")
@click.argument("model", metavar="[MODEL]", required=False, default=None, type=ModelName())
@click.option("--expr", "source", default=None, help='The expression, e.g. "(x + y) * z".')
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With MODEL: load these weights (from tgcv train) first.")
@click.option("--digit", type=DIGIT, default=None, help="With MODEL: the first held-out digit of this class.")
@click.option("--index", "image_index", type=click.IntRange(min=0), default=None,
              help="With MODEL: the held-out image with this index (default: #0).")
@click.option("--size", type=click.IntRange(min=8), default=32, show_default=True,
              help="With a MODEL that does not take 28x28 digits: the digit's side, padded and resized.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True,
              help="With MODEL: the learning rate the update-to-weight ratios are stated for.")
@click.option("--ops", "show_ops", is_flag=True, help="With MODEL: open every module step into its primitive ops.")
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="An input's value (repeat).")
@click.option("--interactive/--no-interactive", default=None,
              help="Wait for a key between steps, or print the whole transcript. "
                   "Interactive unless --frames is given.")
@click.option("--line", "line_mode", is_flag=True,
              help="On a terminal, use the line prompt instead of the full-screen view.")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write one SVG per step and an index.html player to this folder.")
def command(model: str | None, source: str | None, checkpoint: Path | None, digit: int | None,
            image_index: int | None, size: int, lr: float, show_ops: bool, assignments: tuple[str, ...],
            interactive: bool | None, line_mode: bool, frames_dir: Path | None) -> None:
    """Step through backprop: values forward, then upstream x local = downstream, edge by edge.

    \b
    tgcv step --expr "(x + y) * z" --set x=-2 --set y=5 --set z=-4
    tgcv step lenet5 --checkpoint model.npz --digit 7 --no-interactive

    With MODEL (a name from the model registry) one held-out shipped digit goes
    through the model and the cross-entropy, stepped module by module: each
    module's output shape and statistics, the loss's softmax, then backward the
    upstream and downstream gradients, the module's rule and its parameters'
    gradients with the update-to-weight ratio. On a terminal the full-screen view
    lists the modules (o opens a step into its primitive ops); --frames writes the
    module player (feature maps forward, gradient maps backward, softmax bars).

    On a terminal this opens a full-screen view: the graph, a table of every node's
    value and gradient, the step's arithmetic and a node inspector. Keys: Enter,
    Space or Right next; Left or b back; Home/End; up/down (or a click) select a
    node; e or "set x=3" change an input and replay; q quit. When stdin or stdout
    is not a terminal, or with --line, it is a line prompt (Enter next, b back,
    "set x=3", q quit); --no-interactive prints the whole transcript.
    """
    if model is not None:
        if source is not None or assignments:
            fail("give either MODEL or --expr, not both")
            return
        if digit is not None and image_index is not None:
            fail("give --digit or --index, not both")
            return
        _step_model(model, checkpoint, digit, image_index, size, lr, show_ops, interactive, frames_dir, line_mode)
        return
    if source is None:
        fail("give an expression (--expr \"(x + y) * z\") or a MODEL (e.g. tgcv step lenet5)")
        return
    from tinygrad_cv.expr import ExprError, parse, parse_assignment, parse_assignments
    from tinygrad_cv.step import Stepper
    from viz.text import format_event, format_gradients, format_inputs, format_position, format_values, use_color

    try:
        expr = parse(source, parse_assignments(assignments))
        stepper = Stepper(expr.root)
    except ExprError as e:
        fail(str(e))
        return
    except (ValueError, ArithmeticError) as e:
        fail(f"cannot compute {source.strip()!r}: {e}")
        return
    color = use_color()
    out = click.echo

    if frames_dir is not None:
        import viz

        try:
            index = viz.write_frames(stepper, frames_dir, title=f"{expr.root.label} = {expr.source}")
        except viz.GraphvizMissing as e:
            fail(str(e))
            return
        except OSError as e:
            fail(f"cannot write frames to {frames_dir}: {e.strerror or e}")
            return
        out(f"wrote {len(stepper.events) + 1} frames and {index}")
        if interactive is None:          # the frames were the job: no prompt unless asked for
            return

    if interactive is not False and not line_mode and full_screen_possible():
        from viz import tui

        tui.run(stepper, title=f"{expr.root.label} = {expr.source}")
        return

    out(f"{expr.root.label} = {expr.source}")
    out(format_inputs(stepper, color))
    if interactive is False:
        for event in stepper:
            out(format_event(event, color))
        out(format_gradients(stepper, color))
        return

    def show(event, back: bool = False) -> None:
        out(("back to: " if back else "") + format_event(event, color))
        if not back and stepper.done:
            out(format_gradients(stepper, color))

    def set_input(cmd: str) -> bool:
        if not (cmd.startswith("set ") or cmd.startswith("set\t")):
            return False
        try:
            name, value = parse_assignment(cmd[4:])
            stepper.set(name, value)
        except (ExprError, KeyError, ValueError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            out(f"error: {msg}")
            return True
        out(f"replayed with {name} = {value:g}: {format_values(stepper, color)}")
        if stepper.current is not None:
            out("now at: " + format_event(stepper.current, color))
        return True

    line_prompt(stepper, lambda: format_position(stepper, color), lambda: key_hint(stepper), show,
                start="back to the start: only the inputs are known",
                at_end="(at the end: b steps back, set x=... replays, q quits)", extra=set_input)


def line_prompt(stepper, prompt: Callable[[], str], keys: Callable[[], str], show: Callable[..., None], *,
                start: str, at_end: str, extra: Callable[[str], bool] | None = None) -> None:
    """The line prompt of both step modes: Enter (or n) next, b back, h help, q quit, until EOF.
    ``show(event, back=False)`` prints a step; ``extra(cmd)`` handles the mode's own commands
    and returns False for one it does not know."""
    out = click.echo
    out(f"keys: {keys()}")
    while True:
        out(f"{prompt()} > ", nl=False)
        line = sys.stdin.readline()
        if not line:                       # EOF: end cleanly
            out("")
            return
        cmd = line.strip()
        if cmd in ("", "n", "next"):
            event = stepper.next()
            if event is None:
                out(at_end)
            else:
                show(event)
        elif cmd in ("b", "back"):
            if stepper.position == 0:
                out("(at the start)")
            else:
                stepper.back()
                event = stepper.current
                if event is None:
                    out(start)
                else:
                    show(event, back=True)
        elif cmd in ("q", "quit", "exit"):
            return
        elif cmd in ("h", "help", "?"):
            out(f"keys: {keys()}")
        elif extra is None or not extra(cmd):
            out(f"unknown command {cmd!r}; keys: {keys()}")


def model_input(spec, image: "np.ndarray", size: int):
    """One digit (28x28 uint8) as the model's input: normalized; for a model that does not take
    digits, padded to a square of ``size``, its channels repeated."""
    import numpy as np

    from tinygrad_cv import data

    x = data.normalize(data.to_float(image[None]))           # (1, 1, 28, 28)
    if spec.mnist:
        return x
    c = spec.input_shape[0]
    side = max(size, 28)
    pad = side - 28
    x = np.pad(x, ((0, 0), (0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)),
               constant_values=float(x.min()))
    if side != size:
        idx = (np.arange(size) * side / size).astype(int)   # nearest-neighbour shrink
        x = x[:, :, idx][:, :, :, idx]
    return np.repeat(x, c, axis=1).astype(np.float32)


class ModelRun:
    """One shipped digit through a registry model and the cross-entropy, ready to step."""

    def __init__(self, name: str, stepper, net, x, target: int, index: int, checkpoint: Path | None):
        self.name, self.stepper, self.net, self.x = name, stepper, net, x
        self.target, self.index, self.checkpoint = target, index, checkpoint

    @property
    def title(self) -> str:
        return f"{self.name}: held-out digit #{self.index} (a {self.target})"

    def header(self) -> str:
        weights = f"weights from {self.checkpoint}" if self.checkpoint else "untrained weights"
        return (f"{self.title}, input {tuple(self.x.shape)}, {weights}; {len(self.stepper.events)} module steps "
                f"({len(self.stepper.ops_events)} primitive events)")


def model_run(name: str, checkpoint: Path | None, digit: int | None, image_index: int | None,
              size: int) -> ModelRun | None:
    """Build the model, load ``checkpoint``, pick the digit and record the loss; on bad input
    print one error line (exit status 1) and return None."""
    import numpy as np

    import tinygrad_cv as tg
    from tinygrad_cv import checkpoint as ckpt
    from tinygrad_cv import data
    from tinygrad_cv.models import registry
    from tinygrad_cv.nn.functional.loss import cross_entropy
    from tinygrad_cv.step import Stepper

    spec = registry.get(name)
    net = spec.build()
    if checkpoint is not None:
        try:
            ckpt.load(net, checkpoint)
        except (ValueError, OSError) as e:
            fail(str(e).splitlines()[0])
            return None
    images, labels = data.mnist("test")
    if digit is not None:
        index = int((labels == digit).nonzero()[0][0])
    else:
        index = 0 if image_index is None else image_index
        if index >= len(labels):
            fail(f"--index {index}: the shipped held-out set has {len(labels)} images (0..{len(labels) - 1})")
            return None
    target = int(labels[index])
    x = tg.Tensor(model_input(spec, images[index], size), requires_grad=True)
    x.label = "x"
    net.eval() if hasattr(net, "eval") else None
    try:
        logits = net(x)
    except ValueError as e:
        fail(f"{name} cannot take a {tuple(x.shape)} input: {e}")
        return None
    loss = cross_entropy(logits, np.array([target]))
    loss.label = "loss"
    return ModelRun(name, Stepper(loss, by="module", model=net), net, x, target, index, checkpoint)


def _step_model(name: str, checkpoint: Path | None, digit: int | None, image_index: int | None, size: int,
                lr: float, show_ops: bool, interactive: bool | None, frames_dir: Path | None,
                line_mode: bool = False) -> None:
    from viz.format import describe_module, describe_ops
    from viz.text import use_color, styler

    out = click.echo
    run = model_run(name, checkpoint, digit, image_index, size)
    if run is None:
        return
    stepper = run.stepper
    if frames_dir is not None:
        import viz

        try:
            index = viz.write_frames(stepper, frames_dir, title=run.title, lr=lr)
        except OSError as e:
            fail(f"cannot write frames to {frames_dir}: {e.strerror or e}")
            return
        out(f"wrote {len(stepper.events) + 1} frames and {index}")
        if not viz.has_dot():
            out("(the frames have no module graph: it needs Graphviz's dot, which is not installed)")
        if interactive is None:          # the frames were the job: no prompt unless asked for
            return
    if interactive is not False and not line_mode and full_screen_possible():
        from viz import tui

        weights = f"weights from {checkpoint.name}" if checkpoint is not None else "untrained weights"
        tui.run(stepper, title=f"{run.title}, {weights}", lr=lr, ops_open=show_ops)
        return
    style = styler(use_color())
    out(run.header())

    def show(event) -> None:
        out(describe_module(event, style, lr=lr) if hasattr(event, "ops") else _seed(event, style))
        if show_ops and hasattr(event, "ops"):
            show_inside(event)

    def show_inside(event) -> None:
        for line in describe_ops(event, style).splitlines():
            out("      | " + line)

    if interactive is False:
        for event in stepper:
            show(event)
        return
    def show_step(event, back: bool = False) -> None:
        if back:
            out("back to:")
        show(event)

    def open_ops(cmd: str) -> bool:
        if cmd not in ("o", "open"):
            return False
        event = stepper.current
        if event is None or not hasattr(event, "ops"):
            out("(no module step to open here)")
        else:
            show_inside(event)
        return True

    line_prompt(stepper, lambda: f"step {stepper.position}/{len(stepper.events)}",
                lambda: "Enter next, b back, o open the step into its ops, q quit", show_step,
                start="back to the start", at_end="(at the end: b steps back, q quits)", extra=open_ops)


def _seed(event, style) -> str:
    from viz.format import describe

    return describe(event, style)
