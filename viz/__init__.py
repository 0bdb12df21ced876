"""viz: everything that draws the engine's graphs (it reads the engine; the engine never imports viz).

    viz.draw(f)                      # graphviz.Digraph; shows itself in Jupyter
    viz.render(f, "graph.svg")       # .svg .png .pdf .dot
    viz.write_frames(stepper, "frames/")   # one SVG per step + index.html player
"""
from __future__ import annotations

import importlib
from typing import Any

from .draw import GraphvizMissing, GraphvizTimeout, draw, has_dot, render
from .frames import write_frames

# Drawn by viz/flow.py and viz/maps.py; loaded on first use so viz imports without them.
_LAZY = {
    "grad_flow": "flow",
    "feature_maps": "maps",
    "filters": "maps",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'viz' has no attribute {name!r}")


__all__ = ["draw", "render", "write_frames", "has_dot", "GraphvizMissing", "GraphvizTimeout", *_LAZY]
