"""The step player: frames (HTML sections) with buttons, a slider and keys, as a page or inline in Jupyter.

    p = viz.player(loss)                     # a Value or Tensor (wrapped in a Stepper) or any Stepper
    p                                        # in a notebook: the player inline (p._repr_html_())
    p.save("player.html")                    # the same player as a self-contained page

One player is one ``<div class="tgcv-player" id="tgcv-player-XXXXXXXX">`` holding its own
style (every rule prefixed with that id), its frames (``<section class="frame">``, ids
``<player id>-frame-1`` ...) and a script that finds its elements inside that div only,
so several players on one notebook page do not clash. Inline, the keys act on the player
that has the focus (click it, or Tab to it) and are not passed on to the notebook (JupyterLab's
shortcuts are suppressed inside it, ``data-lm-suppress-shortcuts``); on a
page of its own (:func:`page`) they act anywhere on the page. Keys: Right, Down, Enter
next; Left, Up, b, Backspace back; Space play/pause; Home/End the first/last frame;
a page opened as ``index.html#frame-5`` starts at frame 5. Nothing is fetched: no server, no network.
"""
from __future__ import annotations

import html
import re
import secrets
from pathlib import Path
from typing import Any

__all__ = ["Player", "player", "player_html", "page", "frames_html", "new_id", "prefix_svg_ids"]

_CSS = """
#@ID@ { font-family: Helvetica, Arial, sans-serif; background: #fafbfc; color: #222; border: 1px solid #cfd9e6;
        border-radius: 4px; outline: none; margin: 4px 0; }
#@ID@:focus-within, #@ID@:focus { border-color: #e67e22; }
#@ID@ .tg-title { padding: 8px 14px; background: #1f4e79; color: white; font-size: 16px; }
#@ID@ .tg-title code { font-size: 15px; }
#@ID@ .tg-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; padding: 8px 14px;
        background: #eef3fa; border-bottom: 1px solid #cfd9e6; position: sticky; top: 0; z-index: 2; }
#@ID@ button { font-size: 14px; padding: 4px 11px; border: 1px solid #8aa4c8; border-radius: 4px;
        background: white; cursor: pointer; color: #222; }
#@ID@ button:hover { background: #dbe9f6; }
#@ID@ .tg-slider { flex: 1; max-width: 520px; }
#@ID@ .tg-counter { font-variant-numeric: tabular-nums; min-width: 80px; }
#@ID@ .tg-hint { color: #667; font-size: 12px; }
#@ID@ .tg-body { display: flex; align-items: flex-start; gap: 4px; }
#@ID@ .tg-stage { flex: 1; min-width: 0; }
#@ID@ .caption { font-family: Menlo, Consolas, monospace; font-size: 12.5px; background: white; margin: 10px 14px;
        padding: 9px 11px; border-left: 4px solid #e67e22; white-space: pre-wrap; overflow-x: auto; }
#@ID@ .frame[data-dir="backward"] .caption { border-left-color: #c0392b; }
#@ID@ .known { font-family: Menlo, Consolas, monospace; font-size: 12px; color: #556; margin: 0 14px; }
#@ID@ .frame svg { display: block; margin: 8px 14px; height: auto; }
"""

_SCRIPT = r"""
(function init(tries) {
  var root = document.getElementById("@ID@");
  if (!root) {                  // a notebook may run this before it puts the output on the page
    if (tries < 100) setTimeout(function () { init(tries + 1); }, 50);
    return;
  }
  if (root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var one = function (sel) { return root.querySelector(sel); };
  var frames = root.querySelectorAll(".frame");
  var slider = one(".tg-slider"), counter = one(".tg-counter"), playButton = one(".tg-play");
  var graph = one(".tg-graph"), nodes = {};
  if (graph) graph.querySelectorAll("g.node").forEach(function (g) {
    var t = g.querySelector("title"); if (t) nodes[t.textContent] = g; });
  var current = 0, timer = null;
  function mark(frame) {
    for (var k in nodes) nodes[k].classList.remove("tg-on", "tg-forward", "tg-backward");
    var g = nodes[frame.getAttribute("data-node")];
    if (!g) return;
    g.classList.add("tg-on", "tg-" + (frame.getAttribute("data-dir") || "forward"));
    var box = graph.getBoundingClientRect(), r = g.getBoundingClientRect();
    if (r.top < box.top || r.bottom > box.bottom)
      graph.scrollTop += (r.top - box.top) - graph.clientHeight / 2 + r.height / 2;
  }
  function show(i) {
    current = Math.max(0, Math.min(frames.length - 1, i));
    for (var k = 0; k < frames.length; k++) frames[k].hidden = (k !== current);
    slider.value = current;
    counter.textContent = (current + 1) + " / " + frames.length;
    root.setAttribute("data-frame", String(current + 1));
    mark(frames[current]);
  }
  function pause() {
    if (timer !== null) { clearInterval(timer); timer = null; }
    playButton.innerHTML = "&#9654; play";
  }
  function play() {
    if (current >= frames.length - 1) show(0);
    playButton.innerHTML = "&#10074;&#10074; pause";
    timer = setInterval(function () {
      if (current >= frames.length - 1) { pause(); return; }
      show(current + 1);
    }, @INTERVAL@);
  }
  one(".tg-prev").addEventListener("click", function () { pause(); show(current - 1); });
  one(".tg-next").addEventListener("click", function () { pause(); show(current + 1); });
  playButton.addEventListener("click", function () { if (timer === null) play(); else pause(); });
  slider.addEventListener("input", function () { pause(); show(parseInt(slider.value, 10)); });
  var keys = {ArrowRight: 1, ArrowDown: 1, Enter: 1, ArrowLeft: -1, ArrowUp: -1, b: -1, Backspace: -1};
  function onKey(e) {
    if (e.key === "Enter" && e.target.tagName === "BUTTON") return;   // a focused button takes its own Enter
    if (e.target === slider && e.key.indexOf("Arrow") === 0) return;  // the slider moves itself
    var used = true;
    if (e.key in keys) { pause(); show(current + keys[e.key]); }
    else if (e.key === " ") { if (timer === null) play(); else pause(); }
    else if (e.key === "Home") { pause(); show(0); }
    else if (e.key === "End") { pause(); show(frames.length - 1); }
    else used = false;
    if (used) { e.preventDefault(); e.stopPropagation(); }
  }
  (root.hasAttribute("data-page") ? document : root).addEventListener("keydown", onKey);
  root.addEventListener("mousedown", function (e) {     // a click anywhere in the player gives it the keys
    if (e.target === root || !e.target.closest("button, input")) root.focus({preventScroll: true}); });
  var start = root.hasAttribute("data-page") ? /^#frame-(\d+)$/.exec(location.hash) : null;
  show(start ? parseInt(start[1], 10) - 1 : 0);      // page.html#frame-5 opens at frame 5
})(0);
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tgcv step: {title}</title>
<style>body {{ margin: 0; background: #fafbfc; }} body > .tgcv-player {{ margin: 0; border: 0; border-radius: 0; }}</style>
</head>
<body>
{player}
</body>
</html>
"""


def new_id() -> str:
    """A fresh element id for one player ("tgcv-player-" and 8 random hex digits)."""
    return "tgcv-player-" + secrets.token_hex(4)


_SVG_ID = re.compile(r'\bid="([^"]*)"')


def prefix_svg_ids(svg: str, prefix: str) -> str:
    """Give every ``id="..."`` in an SVG (Graphviz writes node1, edge1, graph0) the prefix, so that
    many SVGs on one page keep their ids unique."""
    return _SVG_ID.sub(lambda m: f'id="{prefix}-{m[1]}"', svg)


def player_html(sections: list[str], *, uid: str, title: str, aside: str = "", css: str = "",
                interval_ms: int = 1200, on_page: bool = False) -> str:
    """One player: the frames ``sections`` (``<section class="frame" ...>``, the first shown, the rest
    hidden), an optional ``aside`` panel shown beside every frame, extra ``css`` (its rules written
    with the placeholder ``@ID@`` for the player's id). ``on_page``: the keys act on the whole page."""
    if not sections:
        raise ValueError("a player needs at least one frame")
    n = len(sections)
    style = (_CSS + css).replace("@ID@", uid)
    script = _SCRIPT.replace("@ID@", uid).replace("@INTERVAL@", str(int(interval_ms)))
    page_attr = " data-page" if on_page else ""
    return (
        f'<div class="tgcv-player" id="{uid}" tabindex="0" data-frames="{n}" data-lm-suppress-shortcuts="true"'
        f'{page_attr}>\n'
        f"<style>{style}</style>\n"
        f'<div class="tg-title">Backprop, step by step: <code>{html.escape(title)}</code></div>\n'
        f'<div class="tg-controls">\n'
        f'  <button class="tg-prev" id="{uid}-prev" title="previous (Left arrow)">&#9664; prev</button>\n'
        f'  <button class="tg-play" id="{uid}-play" title="play / pause (Space)">&#9654; play</button>\n'
        f'  <button class="tg-next" id="{uid}-next" title="next (Right arrow)">next &#9654;</button>\n'
        f'  <input class="tg-slider" id="{uid}-slider" type="range" min="0" max="{n - 1}" value="0" step="1" '
        f'aria-label="frame">\n'
        f'  <span class="tg-counter" id="{uid}-counter">1 / {n}</span>\n'
        f'  <span class="tg-hint">Enter or &rarr; next, b or &larr; back, Space play, Home/End'
        f'{"" if on_page else " (click the player first)"}</span>\n'
        f"</div>\n"
        f'<div class="tg-body">{aside}<div class="tg-stage">\n' + "\n".join(sections) + "\n</div></div>\n"
        f"<script>{script}</script>\n</div>")


def frames_html(frames: Any, *, interval_ms: int = 1200, on_page: bool = False) -> str:
    """A :class:`viz.frames.Frames` as one player with a fresh id (its ``@ID@`` placeholders filled in)."""
    uid = new_id()
    return player_html([s.replace("@ID@", uid) for s in frames.sections], uid=uid, title=frames.title,
                       aside=frames.aside.replace("@ID@", uid), css=frames.css, interval_ms=interval_ms,
                       on_page=on_page)


def page(player: str, title: str) -> str:
    """A player (from :func:`player_html` with ``on_page=True``) as a whole self-contained HTML page."""
    return _PAGE.format(title=html.escape(title), player=player)


class Player:
    """A stepper's frames as a player: ``_repr_html_`` shows it inline in Jupyter, :meth:`save` writes a page.

    Each rendering gets a fresh element id, so the same player shown twice does not clash.
    """

    def __init__(self, stepper: Any, *, title: str | None = None, interval_ms: int = 1200,
                 **options: Any) -> None:
        self.stepper = stepper
        self.title = title
        self.interval_ms = interval_ms
        self.options = options
        self._frames: Any = None

    def _content(self) -> Any:
        if self._frames is None:
            from .frames import stepper_frames

            self._frames = stepper_frames(self.stepper, title=self.title, **self.options)
        return self._frames

    @property
    def frame_count(self) -> int:
        return len(self._content().sections)

    def html(self, *, on_page: bool = False) -> str:
        return frames_html(self._content(), interval_ms=self.interval_ms, on_page=on_page)

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str | Path) -> Path:
        """Write the player as a self-contained page; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page(self.html(on_page=True), self._content().title), encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"<viz.player: {self.frame_count} frames of {self.stepper!r}>"


def player(stepper_or_root: Any, *, grad: Any = None, model: Any = None, title: str | None = None,
           interval_ms: int = 1200, **options: Any) -> Player:
    """The step player of a Stepper (expression, tensor or module stepper), or of a recorded root
    Value/Tensor, wrapped in ``Stepper(root, grad=grad)`` (``by="module"`` when ``model`` is given).

    In Jupyter the returned object shows itself inline (``_repr_html_``): no server, no network.
    """
    from tinygrad_cv.graph import Node
    from tinygrad_cv.step import Stepper

    if isinstance(stepper_or_root, Stepper):
        if grad is not None or model is not None:
            raise ValueError("viz.player: grad= and model= go with a root Value/Tensor, not with a Stepper")
        stepper = stepper_or_root
    elif isinstance(stepper_or_root, Node):
        stepper = (Stepper(stepper_or_root, grad=grad) if model is None
                   else Stepper(stepper_or_root, grad=grad, by="module", model=model))
    else:
        raise TypeError(f"viz.player needs a Stepper or a recorded Value/Tensor, got {type(stepper_or_root).__name__}")
    return Player(stepper, title=title, interval_ms=interval_ms, **options)
