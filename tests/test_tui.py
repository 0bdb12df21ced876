"""The full-screen stepper (viz/tui.py): driven in a real terminal (tmux) the way a student uses it,
and with Textual's headless Pilot for what a screen capture cannot reach (mouse, tensors)."""
from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv.expr import parse
from tinygrad_cv.step import Stepper

ROOT = Path(__file__).resolve().parents[1]
COURSE = "--expr '(x + y) * z' --set x=-2 --set y=5 --set z=-4"
NEURON = "--expr 'sigmoid(w0*x0 + w1*x1 + w2)' --set w0=2 --set x0=-1 --set w1=-3 --set x1=-2 --set w2=-3"
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


# --- a real terminal -----------------------------------------------------------------------------

PROMPT = "tgcv-test$"        # bash shows it followed by a space


class Terminal:
    """``tgcv step ARGS`` in a private tmux server of ``width`` x ``height``; ``close()`` kills it.

    ``shell=True`` types the command into an interactive bash whose prompt is :data:`PROMPT`,
    so a test can see the prompt come back after the view quits."""

    def __init__(self, args: str, width: int = 80, height: int = 24, no_color: bool = True, shell: bool = False):
        self.server = ["tmux", "-L", f"tgcv-tui-{uuid.uuid4().hex[:8]}"]
        self.env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        if no_color:
            self.env["NO_COLOR"] = "1"
        self.env["TERM"] = "xterm-256color"
        self.env["PYTHONPATH"] = str(ROOT)
        line = f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m tinygrad_cv step {args}; echo EXIT=$?"
        cmd = f"env PS1={shlex.quote(PROMPT + ' ')} bash --norc --noprofile -i" if shell else f"{line}; sleep 60"
        subprocess.run(self.server + ["new-session", "-d", "-s", "s", "-x", str(width), "-y", str(height), cmd],
                       check=True, env=self.env)
        if shell:
            self.wait_for(PROMPT)
            subprocess.run(self.server + ["send-keys", "-t", "s", "-l", line], check=True, env=self.env)
            subprocess.run(self.server + ["send-keys", "-t", "s", "Enter"], check=True, env=self.env)

    def screen(self, colors: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", "s"] + (["-e"] if colors else [])
        return subprocess.run(self.server + args, capture_output=True, text=True, env=self.env).stdout

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.05)
        pytest.fail(f"{text!r} never appeared; screen:\n{self.screen()}")

    def wait_until(self, check, what: str, timeout: float = 20.0) -> str:
        """The screen once ``check(screen)`` holds (a message may show a frame before the table redraws)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            shown = self.screen()
            try:
                if check(shown):
                    return shown
            except (StopIteration, KeyError, ValueError, AttributeError):
                pass
            time.sleep(0.05)
        pytest.fail(f"{what} never appeared; screen:\n{self.screen()}")

    def send(self, *keys: str) -> None:
        for key in keys:                        # one at a time, as a person types
            subprocess.run(self.server + ["send-keys", "-t", "s", key], check=True, env=self.env)
            time.sleep(0.05)

    def step_to(self, n: int, total: int) -> str:
        return self.wait_for(f"step {n}/{total} ")

    def close(self) -> None:
        subprocess.run(self.server + ["kill-server"], capture_output=True, env=self.env)


def table(screen: str) -> dict[str, tuple[str, str, str]]:
    """The node table on a captured screen: name -> (op, value, grad), cut at the header's columns."""
    lines = screen.splitlines()
    head = next(i for i, line in enumerate(lines) if re.search(r"node\s+op\s+value\s+grad", line))
    h = lines[head]
    start = re.search(r"(?<= )node\b", h).start()
    cols = [start] + [re.compile(rf"(?<= ){w}\b").search(h, start).start() for w in ("op", "value", "grad")]
    rows = {}
    for line in lines[head + 1:]:
        if len(line) <= cols[0] or line[cols[0] - 1] != " " or not line[cols[0]:cols[1]].strip():
            break
        cells = [line[a:b].strip() for a, b in zip(cols, cols[1:] + [cols[3] + 12])]
        rows[cells[0]] = tuple(cells[1:])
    return rows


@pytest.fixture
def terminal():
    opened = []

    def open_(*args, **kwargs):
        t = Terminal(*args, **kwargs)
        opened.append(t)
        return t

    try:
        yield open_
    finally:
        for t in opened:                        # no tmux server, no tgcv process left behind
            t.close()


@needs_tmux
def test_course_example_every_key(terminal):
    t = terminal(COURSE)
    s = t.step_to(0, 7)
    assert "f = (x + y) * z" in s and "Enter/Space/→ next" in s and "q quit" in s
    assert table(s) == {"x": ("input", "-2", ""), "y": ("input", "5", ""), "q": ("x + y", "", ""),
                        "z": ("input", "-4", ""), "f": ("q * z", "", "")}
    t.send("Enter")
    s = t.step_to(1, 7)
    assert "q = x + y = -2 + 5 = 3" in s and table(s)["q"] == ("x + y", "3", "")
    assert "▶ ├─ q = x + y = 3" in s                                  # the node just computed
    t.send("Space")
    s = t.step_to(2, 7)
    assert "f = q * z = 3 * (-4) = -12" in s and table(s)["f"] == ("q * z", "-12", "")
    t.send("Right")
    s = t.step_to(3, 7)
    assert "backward starts" in s and table(s)["f"][2] == "1"
    t.send("Enter")                                                   # mid-backward: f -> q
    s = t.step_to(4, 7)
    assert "upstream df/df = 1  *  local df/dq = -4  =  downstream -4" in s
    assert "▶ ├─ q = x + y ◀ -4" in s and "● f = q * z" in s           # the edge, child and parent
    rows = table(s)
    assert rows["q"] == ("x + y", "3", "-4") and rows["x"] == ("input", "-2", "") and rows["z"][2] == ""
    assert "inspector: q" in s and "= 1 * (-4) = -4" in s            # the step's node is inspected
    t.send("Left")
    s = t.step_to(3, 7)
    assert table(s)["q"][2] == ""
    t.send("b")
    t.step_to(2, 7)
    t.send("End")
    s = t.step_to(7, 7)
    assert "done" in s
    rows = table(s)
    assert {k: v[2] for k, v in rows.items()} == {"x": "-4", "y": "-4", "q": "-4", "z": "3", "f": "1"}
    assert {k: v[1] for k, v in rows.items()} == {"x": "-2", "y": "5", "q": "3", "z": "-4", "f": "-12"}
    t.send("Home")
    s = t.step_to(0, 7)
    assert table(s)["f"] == ("q * z", "", "")
    t.send("End")
    t.step_to(7, 7)
    # the inspector: up/down select a node; its chain rule is written out
    t.send("Up", "Up", "Up", "Up", "Up", "Up")                    # to the first row, x
    s = t.wait_for("inspector: x")
    assert "df/dx = df/dq*dq/dx" in s and "= (-4) * 1 = -4" in s
    t.send("Down", "Down")
    s = t.wait_for("inspector: q")
    assert "q = x + y = -2 + 5 = 3" in s and "df/dq = df/df*df/dq" in s
    # e changes an input and replays, keeping the position
    t.send("Home", "Enter", "Enter", "Enter", "Enter", "Enter")
    t.step_to(5, 7)
    t.send("e")
    t.wait_for("set z=")                                           # the selected input, ready to type
    t.send("C-u", *"set x=3", "Enter")
    s = t.wait_until(lambda s: "replayed with x = 3" in s and table(s)["q"][1] == "8", "the replay with x = 3")
    assert "step 5/7" in s
    rows = table(s)
    assert rows["x"] == ("input", "3", "") and rows["q"] == ("x + y", "8", "-4") and rows["f"] == ("q * z", "-32", "1")
    assert rows["z"][2] == "8"                                        # df/dz = q = 8 now
    # typing "set y=1" does the same
    t.send("s", "e", "t", "Space", "y", "=", "1", "Enter")
    s = t.wait_until(lambda s: "replayed with y = 1" in s and table(s)["q"][1] == "4", "the replay with y = 1")
    assert table(s)["q"] == ("x + y", "4", "-4") and "step 5/7" in s
    t.send("e", "C-u")                                                 # a bad value is one line, nothing changes
    t.send(*"set x=abc", "Enter")
    s = t.wait_for("error:")
    assert table(s)["x"][1] == "3"
    t.send("q")
    t.wait_for("EXIT=0")


@needs_tmux
def test_neuron_ends_with_the_course_gradients(terminal):
    t = terminal(NEURON)
    t.step_to(0, 15)
    t.send("End")
    s = t.step_to(15, 15)
    rows = table(s)
    assert set(rows) == {"w0", "x0", "w1", "x1", "w2", "q", "r", "s", "t", "f"}     # every node, at 80x24
    shown = {name: round(float(rows[name][2]), 2) for name in ("w0", "x0", "w1", "x1", "w2")}
    assert shown == {"w0": -0.2, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.2}
    assert rows["f"][:2] == ("sigmoid(t)", "0.7311")
    assert len(max(s.splitlines(), key=len)) <= 80
    t.send("q")
    t.wait_for("EXIT=0")


@needs_tmux
def test_node_used_twice_shows_the_sum_over_children(terminal):
    t = terminal("--expr 'x*x + 2*x' --set x=3")
    t.step_to(0, 9)
    t.send("End", "b")
    s = t.step_to(8, 9)
    assert "sum over x's children: 2 (via r) + 3 (via q) = 5, 1 more to come" in s
    assert "inspector: x" in s and "used 3 times (r, q twice): gradients add" in s
    assert "2 + 3 + ? = 5 so far (2 of 3 terms)" in s
    assert table(s)["2"] == ("constant", "2", "constant")            # constants are marked
    t.send("End")
    s = t.step_to(9, 9)
    assert "= 2 + 3 + 3 = 8" in s and table(s)["x"][2] == "8"
    t.send("q")
    t.wait_for("EXIT=0")


@needs_tmux
def test_resize_and_colour(terminal):
    t = terminal(COURSE, width=100, height=30, no_color=False)
    t.step_to(0, 7)
    t.send("End")
    s = t.step_to(7, 7)
    assert "\x1b[" in t.screen(colors=True)                             # colour on a terminal
    subprocess.run(t.server + ["resize-window", "-t", "s", "-x", "60", "-y", "20"], check=True, env=t.env)
    end = time.monotonic() + 10
    while time.monotonic() < end:                                      # until the view has laid itself out again
        s = t.screen()
        step_rule = next((line for line in s.splitlines() if line.startswith("─step")), "")
        if len(step_rule) == 60 and re.search(r"node\s+op\s+value\s+grad", s):
            break
        time.sleep(0.05)
    assert len(s.splitlines()) <= 20 and "step 7/7" in s
    assert {k: v[2] for k, v in table(s).items()} == {"x": "-4", "y": "-4", "q": "-4", "z": "3", "f": "1"}
    t.send("q")
    t.wait_for("EXIT=0")


@needs_tmux
def test_no_color_draws_no_colours(terminal):
    t = terminal(COURSE, no_color=True)
    t.step_to(0, 7)
    t.send("Enter")
    t.step_to(1, 7)
    coloured = t.screen(colors=True)
    params = [int(p) for sgr in re.findall(r"\x1b\[([0-9;]*)m", coloured) for p in sgr.split(";") if p]
    colours = [p for p in params if 30 <= p <= 38 or 40 <= p <= 48 or 90 <= p <= 97 or 100 <= p <= 107]
    assert not colours and 7 in params, coloured[:2000]                # no colour; reverse video marks the step
    assert "▶ ├─ q = x + y = 3" in t.screen()                       # the highlight is still readable
    t.send("q")
    t.wait_for("EXIT=0")


def test_without_a_terminal_the_line_mode_stays():
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm-256color"}
    r = subprocess.run([sys.executable, "-m", "tinygrad_cv", "step", *shlex.split(COURSE)], cwd=ROOT, env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("f = (x + y) * z\ninputs  x = -2, y = 5, z = -4\nkeys: ")
    assert "\x1b" not in r.stdout and r.stderr == ""


def test_the_cli_does_not_import_textual():
    code = ("import sys; from click.testing import CliRunner; from tinygrad_cv.cli import cli; "
            "r = CliRunner().invoke(cli, ['step', '--expr', 'x*y', '--set', 'x=2', '--set', 'y=3', "
            "'--no-interactive']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# --- Textual's headless driver ----------------------------------------------------------------------

def drive(stepper: Stepper, script, size=(80, 24)) -> None:
    """Run ``await script(app, pilot)`` against the view, headless."""
    from viz.tui import StepView

    async def main():
        app = StepView(stepper)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(app, pilot)

    asyncio.run(main())


def cells(app) -> dict[str, tuple[str, ...]]:
    from textual.widgets import DataTable

    t = app.query_one("#nodes", DataTable)
    return {str(r[0]): tuple(str(c) for c in r[1:]) for r in (t.get_row_at(i) for i in range(t.row_count))}


def text_of(app, selector: str) -> str:
    from textual.widgets import Static

    return str(app.query_one(selector, Static).content)


def test_pilot_keys_mouse_and_quit():
    stepper = Stepper(parse("(x + y) * z", {"x": -2, "y": 5, "z": -4}).root)

    async def script(app, pilot):
        assert cells(app)["q"] == ("x + y", "", "")
        await pilot.press("enter", "space", "right", "enter")
        assert stepper.position == 4 and cells(app)["q"] == ("x + y", "3", "-4")
        assert "downstream -4" in text_of(app, "#step")
        await pilot.press("left", "b")
        assert stepper.position == 2
        await pilot.press("end")
        assert cells(app)["x"][2] == "-4"
        graph = text_of(app, "#graph").splitlines()
        row = next(i for i, line in enumerate(graph) if line.endswith("─ z"))
        await pilot.click("#graph", offset=(6, row))                      # a click on z in the graph
        assert "inspector: z" in str(app.query_one("#inspector-pane").border_title)
        assert "df/dz = df/df*df/dz" in text_of(app, "#inspector")
        await pilot.click("#nodes", offset=(2, 2))                        # a click on the table's 2nd row: y
        await pilot.pause()
        assert "y  input" in text_of(app, "#inspector")
        await pilot.press("home")
        assert stepper.position == 0
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    drive(stepper, script)


def test_pilot_tensor_graph_is_summarised():
    tg.manual_seed(0)
    x = tg.Tensor(np.arange(6.0).reshape(2, 3), label="x")
    w = tg.randn(3, 6, requires_grad=True)
    w.label = "W"
    h = (x @ w).relu()
    loss = (h * h).mean()
    loss.label = "loss"
    stepper = Stepper(loss)

    async def script(app, pilot):
        assert cells(app)["x"] == ("constant", "(2, 3) |7.416|", "constant")
        await pilot.press("end")
        row = cells(app)["W"]
        assert row[0] == "input" and row[1].startswith("(3, 6) |") and row[2].startswith("(3, 6) |")
        await pilot.press("left")
        assert "downstream to" in text_of(app, "#step")
        await pilot.press("end")
        app.query_one("#nodes").move_cursor(row=list(cells(app)).index("W"))
        await pilot.pause()
        inspector = text_of(app, "#inspector")
        assert "dloss/dW = dloss/dn2*dn2/dW" in inspector and "shape (3, 6) float" in inspector
        app.query_one("#nodes").move_cursor(row=list(cells(app)).index("n3"))    # h, used twice by h * h
        await pilot.pause()
        inspector = text_of(app, "#inspector")
        assert "used 2 times (n4 twice)" in inspector and inspector.count("via n4: [[") == 2
        await pilot.press("q")

    drive(stepper, script)


def test_viz_step_without_a_terminal_prints_the_transcript(capsys):
    import viz

    x = tg.Tensor([1.0, -2.0, 3.0], requires_grad=True, label="x")
    s = viz.step((x * x).sum())
    out = capsys.readouterr().out
    assert isinstance(s, Stepper) and s.done and "gradients" in out and "x.grad = [ 2., -4., 6.]" in out


@needs_tmux
def test_readme_capture_is_what_the_view_shows(terminal):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"```text\n( f = \(x \+ y\) \* z   step 6/7.*?)```\n", readme, re.S)[1]
    lines = shown.rstrip("\n").splitlines()
    t = terminal(COURSE, width=80, height=len(lines))
    t.step_to(0, 7)
    t.send(*["Enter"] * 6)
    t.step_to(6, 7)
    time.sleep(0.3)
    assert [line.rstrip() for line in t.screen().rstrip("\n").splitlines()] == lines
    t.send("q")
    t.wait_for("EXIT=0")
