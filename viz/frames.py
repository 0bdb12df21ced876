"""Step frames: one SVG per Stepper position and a self-contained HTML player (no network).

``write_frames(stepper, "frames/")`` writes ``frame_000.svg`` (the inputs only),
one frame per event after it (the current node or edge highlighted, values and
gradients known so far annotated) and ``index.html``, which holds every SVG
inline, with previous/next buttons, a slider, the arrow keys (Space plays and
pauses, Home/End jump) and a play button.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from tinygrad_cv.step import Stepper

from .draw import draw, pipe
from .format import describe
from .text import format_inputs, format_state

_XML_PROLOGUE = re.compile(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.S)

PLAYER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tgcv step: {title}</title>
<style>
  body {{ font-family: Helvetica, Arial, sans-serif; margin: 0; background: #fafbfc; color: #222; }}
  header {{ padding: 10px 18px; background: #1f4e79; color: white; }}
  header h1 {{ font-size: 18px; margin: 0; font-weight: normal; }}
  header code {{ font-size: 18px; }}
  #controls {{ display: flex; align-items: center; gap: 10px; padding: 10px 18px; background: #eef3fa;
              border-bottom: 1px solid #cfd9e6; position: sticky; top: 0; }}
  button {{ font-size: 14px; padding: 5px 12px; border: 1px solid #8aa4c8; border-radius: 4px;
           background: white; cursor: pointer; }}
  button:hover {{ background: #dbe9f6; }}
  #slider {{ flex: 1; max-width: 520px; }}
  #counter {{ font-variant-numeric: tabular-nums; min-width: 90px; }}
  .hint {{ color: #667; font-size: 12px; }}
  .caption {{ font-family: Menlo, Consolas, monospace; font-size: 13px; background: white; margin: 12px 18px;
             padding: 10px 12px; border-left: 4px solid #e67e22; white-space: pre-wrap; }}
  .known {{ font-family: Menlo, Consolas, monospace; font-size: 12px; color: #556; margin: 0 18px; }}
  .frame svg {{ display: block; margin: 8px 18px; height: auto; }}
</style>
</head>
<body>
<header><h1>Backprop, step by step: <code>{title}</code></h1></header>
<div id="controls">
  <button id="prev" title="previous (Left arrow)">&#9664; prev</button>
  <button id="play" title="play / pause (Space)">&#9654; play</button>
  <button id="next" title="next (Right arrow)">next &#9654;</button>
  <input id="slider" type="range" min="0" max="{last}" value="0" step="1" aria-label="frame">
  <span id="counter">1 / {count}</span>
  <span class="hint">Enter or &rarr; next, b or &larr; back, Space play, Home/End</span>
</div>
<main id="stage">
{frames}
</main>
<script>
(function () {{
  var frames = document.querySelectorAll(".frame");
  var slider = document.getElementById("slider");
  var counter = document.getElementById("counter");
  var playButton = document.getElementById("play");
  var current = 0, timer = null;
  function show(i) {{
    current = Math.max(0, Math.min(frames.length - 1, i));
    for (var k = 0; k < frames.length; k++) frames[k].hidden = (k !== current);
    slider.value = current;
    counter.textContent = (current + 1) + " / " + frames.length;
    document.body.setAttribute("data-frame", String(current + 1));
  }}
  function pause() {{
    if (timer !== null) {{ clearInterval(timer); timer = null; }}
    playButton.innerHTML = "&#9654; play";
  }}
  function play() {{
    if (current >= frames.length - 1) show(0);
    playButton.innerHTML = "&#10074;&#10074; pause";
    timer = setInterval(function () {{
      if (current >= frames.length - 1) {{ pause(); return; }}
      show(current + 1);
    }}, {interval});
  }}
  document.getElementById("prev").addEventListener("click", function () {{ pause(); show(current - 1); }});
  document.getElementById("next").addEventListener("click", function () {{ pause(); show(current + 1); }});
  playButton.addEventListener("click", function () {{ if (timer === null) play(); else pause(); }});
  slider.addEventListener("input", function () {{ pause(); show(parseInt(slider.value, 10)); }});
  document.addEventListener("keydown", function (e) {{
    var keys = {{ArrowRight: 1, ArrowDown: 1, Enter: 1, ArrowLeft: -1, ArrowUp: -1, b: -1, Backspace: -1}};
    if (e.key === "Enter" && e.target.tagName === "BUTTON") return;   // a focused button takes its own Enter
    if (e.key in keys) {{ e.preventDefault(); pause(); show(current + keys[e.key]); }}
    else if (e.key === " ") {{ e.preventDefault(); if (timer === null) play(); else pause(); }}
    else if (e.key === "Home") {{ e.preventDefault(); pause(); show(0); }}
    else if (e.key === "End") {{ e.preventDefault(); pause(); show(frames.length - 1); }}
  }});
  show(0);
}})();
</script>
</body>
</html>
"""


MAX_FRAME_BOXES = 40_000     # frames x drawn boxes per frame: beyond this the player is refused (max_boxes=)

_SIZE = re.compile(r'<svg width="([\d.]+)pt"\s+height="([\d.]+)pt"')


def _inline_svg(svg: str) -> str:
    """An SVG document as an element inside HTML: no XML prologue, and free to grow to 1.6x on a wide page."""
    svg = _XML_PROLOGUE.sub("", svg, count=1)
    return _SIZE.sub(lambda m: f'<svg style="width: min(100% - 36px, {float(m[1]) * 1.6:.0f}pt)"', svg, count=1)


def write_frames(stepper: Stepper, directory: str | Path, *, title: str | None = None,
                 interval_ms: int = 1200, max_boxes: int = MAX_FRAME_BOXES, **draw_options: Any) -> Path:
    """Write one SVG per position of ``stepper`` and ``index.html``; returns the index path.

    The stepper's position is restored afterwards. Needs Graphviz's ``dot``
    (raises :class:`~viz.draw.GraphvizMissing` otherwise). Bounded: when the
    number of frames times the boxes in each is above ``max_boxes`` (a long sum
    gives hundreds of frames of hundreds of boxes: minutes of layout and hundreds
    of MB), a ValueError says so before anything is written.
    """
    graph = stepper.graph
    frames = len(stepper.events) + 1
    boxes = len(graph) + sum(1 for n in graph.nodes if n.op is not None)
    if frames * boxes > max_boxes:
        raise ValueError(f"stepping this graph gives {frames:,} frames of {boxes:,} boxes each, more than "
                         f"{max_boxes:,} boxes in all: step a smaller expression (the text transcript has no "
                         f"limit), or raise max_boxes=")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    title = title or stepper.name(stepper.root)
    saved = stepper.position
    figures = []
    try:
        for pos in range(len(stepper.events) + 1):
            stepper.position = pos
            svg = pipe(draw(stepper, **draw_options), "svg").decode("utf-8")
            (out / f"frame_{pos:03d}.svg").write_text(svg, encoding="utf-8")
            event = stepper.current
            caption = (f"start  {format_inputs(stepper)}\nEnter (or the right arrow) runs the forward pass "
                       "one node at a time." if event is None else describe(event))
            known = format_state(stepper.state(), stepper)
            figures.append(
                f'<section class="frame" id="frame-{pos + 1}" data-index="{pos}"{"" if pos == 0 else " hidden"}>\n'
                f'<pre class="caption">{html.escape(caption)}</pre>\n'
                f'<p class="known">known: {html.escape(known)}</p>\n'
                f"{_inline_svg(svg)}\n</section>")
    finally:
        stepper.position = saved
    page = PLAYER.format(title=html.escape(title), frames="\n".join(figures), last=len(figures) - 1,
                         count=len(figures), interval=int(interval_ms))
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
