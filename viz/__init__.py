"""viz: everything that draws the engine's graphs (it reads the engine; the engine never imports viz).

    viz.draw(f)                      # graphviz.Digraph; shows itself in Jupyter
    viz.render(f, "graph.svg")       # .svg .png .pdf .dot
    viz.write_frames(stepper, "frames/")   # one frame per step in frames/index.html, the player
    viz.player(stepper_or_root)      # the same player inline in Jupyter (_repr_html_)
    viz.step(f)                      # the full-screen stepper in a terminal (viz/tui.py, Textual)
"""
from __future__ import annotations

import importlib
from typing import Any

from .draw import GraphvizMissing, GraphvizTimeout, draw, has_dot, render
from .frames import write_frames
from .player import player

# Drawn by viz/flow.py and viz/maps.py; loaded on first use so viz imports without them.
_LAZY = {
    "grad_flow": "flow",
    "feature_maps": "maps",
    "filters": "maps",
}


def step(root: Any, grad: Any = None, title: str | None = None) -> Any:
    """Step through the forward and backward pass of ``root`` (a recorded Value or Tensor, or a
    Stepper) in the full-screen view; tensor values are summarised. Blocks until q; returns the
    Stepper. Without a terminal (a pipe, a notebook) it prints the line transcript instead."""
    import sys

    from tinygrad_cv.step import Stepper

    stepper = root if isinstance(root, Stepper) else Stepper(root, grad=grad)
    try:
        ttys = sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        ttys = False
    if ttys:
        from . import tui                    # Textual is imported only here

        return tui.run(stepper, title)
    from .text import format_event, format_gradients, use_color

    color = use_color()
    for event in stepper:
        print(format_event(event, color))
    print(format_gradients(stepper, color))
    return stepper


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'viz' has no attribute {name!r}")


__all__ = ["draw", "render", "write_frames", "player", "has_dot", "GraphvizMissing", "GraphvizTimeout", "step", *_LAZY]
