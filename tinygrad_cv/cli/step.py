"""``tgcv step``: step through the forward and backward pass of an expression, one node at a time."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import fail


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
@click.option("--expr", "source", required=True, help='The expression, e.g. "(x + y) * z".')
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="An input's value (repeat).")
@click.option("--interactive/--no-interactive", default=None,
              help="Wait for a key between steps, or print the whole transcript. "
                   "Interactive unless --frames is given.")
@click.option("--line", "line_mode", is_flag=True,
              help="On a terminal, use the line prompt instead of the full-screen view.")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write one SVG per step and an index.html player to this folder.")
def command(source: str, assignments: tuple[str, ...], interactive: bool | None, line_mode: bool,
            frames_dir: Path | None) -> None:
    """Step through backprop: values forward, then upstream x local = downstream, edge by edge.

    \b
    tgcv step --expr "(x + y) * z" --set x=-2 --set y=5 --set z=-4

    On a terminal this opens a full-screen view: the graph, a table of every node's
    value and gradient, the step's arithmetic and a node inspector. Keys: Enter,
    Space or Right next; Left or b back; Home/End; up/down (or a click) select a
    node; e or "set x=3" change an input and replay; q quit. When stdin or stdout
    is not a terminal, or with --line, it is a line prompt (Enter next, b back,
    "set x=3", q quit); --no-interactive prints the whole transcript.
    """
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

    out(f"keys: {key_hint(stepper)}")
    stdin = sys.stdin
    while True:
        out(f"{format_position(stepper, color)} > ", nl=False)
        line = stdin.readline()
        if not line:                       # EOF: end cleanly
            out("")
            return
        cmd = line.strip()
        if cmd in ("", "n", "next"):
            event = stepper.next()
            if event is None:
                out("(at the end: b steps back, set x=... replays, q quits)")
            else:
                out(format_event(event, color))
                if stepper.done:
                    out(format_gradients(stepper, color))
        elif cmd in ("b", "back"):
            if stepper.position == 0:
                out("(at the start)")
            else:
                stepper.back()
                event = stepper.current
                out("back to the start: only the inputs are known" if event is None
                    else "back to: " + format_event(event, color))
        elif cmd in ("q", "quit", "exit"):
            return
        elif cmd.startswith("set ") or cmd.startswith("set\t"):
            try:
                name, value = parse_assignment(cmd[4:])
                stepper.set(name, value)
            except (ExprError, KeyError, ValueError) as e:
                msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
                out(f"error: {msg}")
                continue
            out(f"replayed with {name} = {value:g}: {format_values(stepper, color)}")
            if stepper.current is not None:
                out("now at: " + format_event(stepper.current, color))
        elif cmd in ("h", "help", "?"):
            out(f"keys: {key_hint(stepper)}")
        else:
            out(f"unknown command {cmd!r}; keys: {key_hint(stepper)}")
