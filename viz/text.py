"""Terminal text for step events: the Stepper's words, coloured only on a terminal and never under NO_COLOR."""
from __future__ import annotations

import os
import sys
from typing import IO, Any

import click

from tinygrad_cv.step import Event, Stepper, StepState

from .format import Style, describe, number, summarize

# role -> click.style arguments; values blue, gradients orange-red, as in the diagrams
STYLES: dict[str, dict[str, Any]] = {
    "head": {"bold": True},
    "name": {"fg": "bright_white", "bold": True},
    "value": {"fg": "cyan"},
    "grad": {"fg": "yellow", "bold": True},
    "rule": {"fg": "magenta"},
    "dim": {"dim": True},
}


def use_color(stream: IO[str] | None = None) -> bool:
    """Colour when ``stream`` (stdout by default) is a terminal and NO_COLOR is unset (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    stream = stream if stream is not None else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def styler(color: bool) -> Style:
    """The ``style(text, role)`` function the events' ``describe`` takes."""
    if not color:
        return lambda text, role: text
    return lambda text, role: click.style(text, **STYLES.get(role, {}))


def format_event(event: Event, color: bool = False) -> str:
    """One event's description, coloured or plain."""
    return describe(event, styler(color))


def format_inputs(stepper: Stepper, color: bool = False) -> str:
    """The inputs line: ``inputs  x = -2, y = 5, z = -4``."""
    s = styler(color)
    parts = [f"{s(n.label, 'name')} = {s(summarize(n.data), 'value')}" for n in stepper.graph.leaves
             if n.label and n.requires_grad]
    return f"{s('inputs', 'head')}  " + (", ".join(parts) if parts else "(none)")


def format_values(stepper: Stepper, color: bool = False) -> str:
    """Every computed node's value, for after a replay: ``q = 8, f = -32``."""
    s = styler(color)
    parts = [f"{s(stepper.name(n), 'name')} = {s(summarize(n.data), 'value')}"
             for n in stepper.graph.nodes if not n.is_leaf]
    return ", ".join(parts)


def format_gradients(stepper: Stepper, color: bool = False) -> str:
    """The final gradients of the labelled inputs, one per line: ``x.grad = -4``."""
    s = styler(color)
    lines = [s("gradients", "head")]
    for name, g in stepper.gradients.items():
        lines.append(f"    {s(name, 'name')}.grad = {s(summarize(g) if g is not None else 'none', 'grad')}")
    return "\n".join(lines)


def format_position(stepper: Stepper, color: bool = False) -> str:
    """``[3/9]`` and what is next."""
    s = styler(color)
    total = len(stepper.events)
    if stepper.done:
        nxt = "done"
    else:
        nxt = "next: " + stepper.events[stepper.position].kind
    return s(f"[{stepper.position}/{total}] {nxt}", "dim")


def format_state(state: StepState, stepper: Stepper) -> str:
    """Plain one-line summary of the values and gradients known at a position (for the frame player)."""
    parts = []
    for n in stepper.graph.nodes:
        k = id(n)
        if k in state.values:
            v = state.values[k]
            text = f"{stepper.name(n)} = {number(v) if isinstance(v, float) else summarize(v)}"
            if k in state.grads:
                g = state.grads[k]
                text += f" (grad {number(g) if isinstance(g, float) else summarize(g)})"
            parts.append(text)
    return ", ".join(parts)
