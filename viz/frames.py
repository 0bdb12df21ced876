"""Step frames: one frame per Stepper position, in a self-contained HTML player (no network).

``write_frames(stepper, "frames/")`` writes ``index.html``, the player (viz/player.py:
previous/next buttons, a slider, the arrow keys, Enter and b, Space plays and pauses,
Home/End jump). For an expression or tensor stepper it also writes ``frame_000.svg``
(the inputs only) and one SVG per event after it (the current node or edge
highlighted, values and gradients known so far annotated), each inline in the page.
For a module stepper (``Stepper(loss, by="module", model=net)``) each frame is one
module step with its pictures (viz/module_frames.py): feature maps forward, gradient
maps backward, the softmax at the loss, beside the input digit and the module graph.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinygrad_cv.step import ModuleStepper, Stepper

from .draw import draw, pipe
from .format import describe
from .player import frames_html, page, prefix_svg_ids
from .text import format_inputs, format_state

_XML_PROLOGUE = re.compile(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.S)

MAX_FRAME_BOXES = 40_000     # frames x drawn boxes per frame: beyond this the player is refused (max_boxes=)

_SIZE = re.compile(r'<svg width="([\d.]+)pt"\s+height="([\d.]+)pt"')


@dataclass
class Frames:
    """A stepper's frames for :func:`viz.player.player_html`: HTML sections (``@ID@`` stands for the
    player's id), a panel shown beside every frame, extra CSS, and files worth writing beside index.html."""

    title: str
    sections: list[str]
    aside: str = ""
    css: str = ""
    files: dict[str, bytes] = field(default_factory=dict)


def _inline_svg(svg: str, prefix: str) -> str:
    """An SVG document as an element inside HTML: no XML prologue, ids prefixed, free to grow to 1.6x."""
    svg = prefix_svg_ids(_XML_PROLOGUE.sub("", svg, count=1), prefix)
    return _SIZE.sub(lambda m: f'<svg style="width: min(100% - 28px, {float(m[1]) * 1.6:.0f}pt)"', svg, count=1)


def expression_frames(stepper: Stepper, *, title: str | None = None, max_boxes: int = MAX_FRAME_BOXES,
                      **draw_options: Any) -> Frames:
    """One Graphviz SVG per position of ``stepper`` (its position is restored afterwards).

    Bounded: when the number of frames times the boxes in each is above ``max_boxes``
    (a long sum gives hundreds of frames of hundreds of boxes: minutes of layout and
    hundreds of MB), a ValueError says so before anything is drawn.
    """
    graph = stepper.graph
    frames = len(stepper.events) + 1
    boxes = len(graph) + sum(1 for n in graph.nodes if n.op is not None)
    if frames * boxes > max_boxes:
        raise ValueError(f"stepping this graph gives {frames:,} frames of {boxes:,} boxes each, more than "
                         f"{max_boxes:,} boxes in all: step a smaller expression (the text transcript has no "
                         f"limit), or raise max_boxes=")
    result = Frames(title or stepper.name(stepper.root), [])
    saved = stepper.position
    try:
        for pos in range(frames):
            stepper.position = pos
            svg = pipe(draw(stepper, **draw_options), "svg").decode("utf-8")
            result.files[f"frame_{pos:03d}.svg"] = svg.encode("utf-8")
            event = stepper.current
            caption = (f"start  {format_inputs(stepper)}\nEnter (or the right arrow) runs the forward pass "
                       "one node at a time." if event is None else describe(event))
            known = format_state(stepper.state(), stepper)
            direction = "forward" if event is None else event.kind
            result.sections.append(
                f'<section class="frame" id="@ID@-frame-{pos + 1}" data-index="{pos}" data-dir="{direction}"'
                f'{"" if pos == 0 else " hidden"}>\n'
                f'<pre class="caption">{html.escape(caption)}</pre>\n'
                f'<p class="known">known: {html.escape(known)}</p>\n'
                f"{_inline_svg(svg, f'@ID@-f{pos + 1}')}\n</section>")
    finally:
        stepper.position = saved
    return result


def stepper_frames(stepper: Stepper, *, title: str | None = None, **options: Any) -> Frames:
    """The frames of any stepper: module pictures for a :class:`ModuleStepper`, graph diagrams otherwise."""
    if isinstance(stepper, ModuleStepper):
        from .module_frames import module_frames

        return module_frames(stepper, title=title, **options)
    return expression_frames(stepper, title=title, **options)


def write_frames(stepper: Stepper, directory: str | Path, *, title: str | None = None,
                 interval_ms: int = 1200, **options: Any) -> Path:
    """Write the player ``index.html`` (and each expression frame as ``frame_NNN.svg``); returns its path.

    The stepper's position is restored afterwards. Expression frames need Graphviz's
    ``dot`` (raises :class:`~viz.draw.GraphvizMissing` otherwise) and are bounded by
    ``max_boxes`` (see :func:`expression_frames`); module frames draw their module graph
    with ``dot`` when it is installed and say so in one line when it is not.
    """
    frames = stepper_frames(stepper, title=title, **options)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in frames.files.items():
        (out / name).write_bytes(data)
    body = frames_html(frames, interval_ms=interval_ms, on_page=True)
    index = out / "index.html"
    index.write_text(page(body, frames.title), encoding="utf-8")
    return index
