"""The full-screen stepper for a model (viz/tui_modules.py): ``tgcv step lenet5`` in a real terminal
(tmux), and the same view at widget level with Textual's Pilot. The numbers on screen are checked
against what NumPy and the engine's own ``loss.backward()`` compute, not against the view."""
from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from tests.test_tui import PROMPT, needs_tmux, terminal  # noqa: F401  (terminal is a fixture)
from tinygrad_cv.step import ModuleBackward, ModuleForward, SeedStep
from viz.format import number

LENET_ROWS = ["x", "features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "flatten",
              "classifier.0", "classifier.1", "classifier.2", "classifier.3", "classifier.4", "loss"]
COLUMNS = ("module", "kind", "output", "mean", "std", "min", "max", "dead", "|grad|", "upd/w")


@pytest.fixture(scope="module")
def lenet_run():
    """``tgcv step lenet5 --digit 7``'s run, built in this process the way the CLI builds it."""
    import tinygrad_cv as tg
    from tinygrad_cv.cli.step import model_run

    tg.manual_seed(0)
    return model_run("lenet5", None, 7, None, 32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


def module_table(screen: str) -> dict[str, dict[str, str]]:
    """The module table on a captured screen: name -> {column: cell}, cut at the header's columns."""
    lines = screen.splitlines()
    head = next(i for i, line in enumerate(lines) if re.search(r"module\s+kind\s+output\s+mean", line))
    h = lines[head]
    starts = [h.index(" " + c) + 1 for c in COLUMNS]
    rows = {}
    for line in lines[head + 1:]:
        name = line[starts[0]:starts[1]].strip()
        if not name or line.startswith("─"):
            break
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line) + 1])]
        rows[name] = dict(zip(COLUMNS, cells))
    return rows


def step_text(screen: str) -> str:
    """The lines of the step panel (between its ─step rule and the next rule or the key line)."""
    lines = screen.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("─step"))
    rest = lines[top + 1:]
    end = next((i for i, line in enumerate(rest) if line.startswith("─") or "q quit" in line), len(rest))
    return "\n".join(rest[:end])


@needs_tmux
def test_lenet_in_a_terminal(terminal, lenet_run):
    stepper = lenet_run.stepper
    events = stepper.events
    total = len(events)
    assert total == 27
    t = terminal("lenet5 --digit 7", width=130, height=42, shell=True)
    s = t.wait_for(f"step 0/{total} ")
    assert "lenet5: held-out digit #9 (a 7), untrained weights" in s and "o open/close the step's ops" in s
    rows = module_table(s)
    assert list(rows) == LENET_ROWS
    assert rows["x"]["output"] == "(1, 1, 28, 28)" and rows["features.0"]["output"] == ""   # nothing run yet
    assert rows["features.1"]["kind"] == "ReLU" and rows["loss"]["kind"] == "cross_entropy"

    t.send(*["Right"] * 12)                                   # every module forward, up to the logits
    s = t.step_to(12, total)
    rows = module_table(s)
    assert [rows[n]["output"] for n in ("features.0", "features.2", "features.3", "flatten", "classifier.4")] == \
        ["(1, 6, 28, 28)", "(1, 6, 14, 14)", "(1, 16, 10, 10)", "(1, 400)", "(1, 10)"]
    relu = next(e for e in events if isinstance(e, ModuleForward) and e.scope == "features.1")
    a = np.asarray(relu.result)
    assert rows["features.1"]["dead"] == f"{np.mean(a == 0):.1%}"                  # zeros counted directly
    assert rows["features.1"]["max"] == number(float(a.max())) and rows["features.1"]["min"] == "0"
    conv = next(e for e in events if isinstance(e, ModuleForward) and e.scope == "features.0")
    assert rows["features.0"]["mean"] == number(float(np.mean(np.asarray(conv.result, np.float64))))
    assert rows["loss"]["output"] == "" and rows["features.0"]["|grad|"] == ""
    sgr = [p for code in re.findall(r"\x1b\[([0-9;]*)m", t.screen(colors=True)) for p in code.split(";") if p]
    assert "7" in sgr                                         # NO_COLOR: the current module in reverse video

    t.send("Right")                                           # the loss: softmax and target
    s = t.step_to(13, total)
    loss_step = events[12]
    logits = np.asarray(loss_step.ops[-1].inputs[0], np.float64)[0]
    p = softmax(logits)
    text = step_text(s)
    assert "softmax 0:" in text and f"7:{p[7]:.3f}" in text and "target 7:" in text
    assert f"loss = -log p[target] = {number(float(-np.log(p[7])))}" in text
    assert module_table(s)["loss"]["mean"] == number(float(-np.log(p[7])))

    t.send("Right", "Right", "Right")                         # seed, loss backward, classifier.4 backward
    s = t.step_to(16, total)
    text = step_text(s)
    assert "backward 2/13  classifier.4 (Linear)" in text
    assert "rule: a linear layer sends W^T x upstream to its input" in text
    back = events[15]
    assert isinstance(back, ModuleBackward) and back.scope == "classifier.4"
    rows = module_table(s)
    w = dict(lenet_run.net.named_parameters())["classifier.4.weight"]
    w_grad = next(g for name, _, g in back.param_grads if name == "classifier.4.weight")
    ratio = 0.01 * np.linalg.norm(np.asarray(w_grad, np.float64)) / np.linalg.norm(np.asarray(w.data, np.float64))
    assert rows["classifier.4"]["upd/w"] == number(float(ratio))
    up = softmax(logits) - np.eye(10)[7]                      # dL/dlogits = softmax - onehot
    assert rows["classifier.4"]["|grad|"] == number(float(np.linalg.norm(up)))
    assert rows["features.0"]["|grad|"] == ""                 # the backward pass has not reached it

    t.send("o")                                               # open the step into its primitive ops
    s = t.wait_for("ops inside classifier.4")
    assert "[linear:" in s and "primitive backward steps (o closes)" in s
    t.send("Left")                                            # the open panel follows the steps
    s = t.wait_for("ops inside loss")
    assert "[cross_entropy:" in s and f"step 15/{total}" in s
    t.send("o")
    s = t.wait_until(lambda s: "ops inside" not in s, "the ops panel closing")
    assert f"step 15/{total}" in s

    t.send("End")
    s = t.step_to(total, total)
    rows = module_table(s)
    assert all(rows[n]["|grad|"] for n in LENET_ROWS)         # every module reached, the input too
    assert "backward 13/13  features.0 (Conv2d)" in step_text(s)
    assert "flipped filter" in step_text(s)
    t.send("b")
    t.step_to(total - 1, total)
    t.send("Home")
    s = t.step_to(0, total)
    assert module_table(s)["features.0"]["output"] == ""
    t.send("q")
    s = t.wait_for("EXIT=0")
    assert s.rstrip().splitlines()[-1].rstrip() == PROMPT     # the shell prompt is back
    assert "module        kind" not in s                               # and the view is gone


@needs_tmux
def test_line_flag_keeps_the_prompt_on_a_terminal(terminal):
    t = terminal("lenet5 --digit 7 --line", width=130, height=30)      # and --ops opens the full view's panel:
    full = terminal("lenet5 --digit 7 --ops", width=130, height=42)
    full.wait_for("step 0/27 ")
    full.send("Enter")
    assert "= conv2d(x, " in full.wait_for("ops inside features.0: 1 primitive forward step (o closes)")
    full.send("q")
    full.wait_for("EXIT=0")
    t.wait_for("keys: Enter next, b back, o open")
    t.send("Enter")
    s = t.wait_for("forward 1/13  features.0 (Conv2d)")
    assert "(1, 1, 28, 28) -> (1, 6, 28, 28)" in s and "ops inside" not in s
    t.send("q", "Enter")
    t.wait_for("EXIT=0")


@needs_tmux
def test_checkpoint_weights_reach_the_view(terminal, tmp_path):
    import tinygrad_cv as tg
    from tinygrad_cv import checkpoint, data
    from tinygrad_cv.models import registry

    tg.manual_seed(5)
    net = registry.get("lenet5").build()
    conv = net.features[0]
    conv.weight.data = (conv.weight.data * 3).astype(np.float32)       # weights no fresh lenet5 has
    path = checkpoint.save(net, tmp_path / "w.npz")
    images, labels = data.mnist("test")
    i3 = int(np.nonzero(labels == 3)[0][0])
    with tg.no_grad():
        out = np.asarray(conv(tg.Tensor(data.normalize(data.to_float(images[i3:i3 + 1])))).data, np.float64)
    t = terminal(f"lenet5 --checkpoint {path} --digit 3", width=130, height=42)
    t.wait_for(f"(a 3), weights from {path.name}")
    t.send("Enter")
    s = t.step_to(1, 27)
    row = module_table(s)["features.0"]
    assert row["output"] == "(1, 6, 28, 28)" and row["mean"] == number(float(out.mean()))
    assert row["max"] == number(float(out.max()))
    t.send("q")
    t.wait_for("EXIT=0")


# --- Textual's headless driver ----------------------------------------------------------------------

def cells(app) -> dict[str, dict[str, str]]:
    from textual.widgets import DataTable

    t = app.query_one("#modules", DataTable)
    labels = [str(c.label) for c in t.columns.values()]
    rows = (t.get_row_at(i) for i in range(t.row_count))
    return {str(r[0]): dict(zip(labels, (str(c) for c in r))) for r in rows}


def text_of(app, selector: str) -> str:
    from textual.widgets import Static

    return str(app.query_one(selector, Static).content)


def test_pilot_lenet_module_view(lenet_run):
    from viz.tui_modules import ModuleStepView

    stepper = lenet_run.stepper
    stepper.reset()
    net, x = lenet_run.net, lenet_run.x
    loss = stepper.root
    for p in net.parameters():
        p.grad = None
    loss.backward()                                           # the engine's own gradients, for comparison
    engine = {name: np.asarray(p.grad, np.float64) for name, p in net.named_parameters()}
    x_grad = np.asarray(x.grad, np.float64)

    async def script(app, pilot):
        assert list(cells(app)) == LENET_ROWS and cells(app)["features.3"]["output"] == ""
        await pilot.press(*["right"] * 12)
        assert stepper.position == 12
        rows = cells(app)
        assert rows["features.3"]["output"] == "(1, 16, 10, 10)" and rows["classifier.4"]["output"] == "(1, 10)"
        relu = next(e for e in stepper.events if isinstance(e, ModuleForward) and e.scope == "classifier.1")
        assert rows["classifier.1"]["dead"] == f"{np.mean(np.asarray(relu.result) == 0):.1%}"
        assert "forward 12/13  classifier.4 (Linear)" in text_of(app, "#step")
        await pilot.press("space")                            # the loss
        step = text_of(app, "#step")
        probs = [float(v) for v in re.findall(r"\d:(\d\.\d+)", step.split("softmax", 1)[1].splitlines()[0])]
        assert len(probs) == 10 and abs(sum(probs) - 1) < 6e-3 and "target 7" in step
        await pilot.press("enter")                            # backward starts: the loss's gradient is 1
        assert isinstance(stepper.current, SeedStep) and cells(app)["loss"]["|grad|"] == "1"
        assert not app.query_one("#ops-pane").display
        await pilot.press("o")                                # nothing to open at the seed: said so
        assert app.query_one("#ops-pane").display and "nothing to open" in text_of(app, "#ops")
        await pilot.press("end")                              # the panel follows: the last module's ops
        ops = text_of(app, "#ops")
        assert "conv2d" in ops and "-> x" in ops and "ops inside features.0" in app.query_one("#ops-pane").border_title
        await pilot.press("o")
        assert not app.query_one("#ops-pane").display
        rows = cells(app)
        for scope in ("features.0", "features.3", "classifier.0", "classifier.2", "classifier.4"):
            w = dict(net.named_parameters())[f"{scope}.weight"]
            ratio = 0.01 * np.linalg.norm(engine[f"{scope}.weight"]) / np.linalg.norm(np.asarray(w.data, np.float64))
            assert rows[scope]["upd/w"] == number(float(ratio)), scope          # from loss.backward()'s dW
        assert rows["x"]["|grad|"] == number(float(np.linalg.norm(x_grad)))
        assert rows["features.1"]["upd/w"] == ""                             # a ReLU has no parameters
        await pilot.press("left", "b", "home")
        assert stepper.position == 0 and cells(app)["loss"]["mean"] == ""
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    async def main():
        app = ModuleStepView(stepper, lenet_run.title)
        async with app.run_test(size=(130, 42)) as pilot:
            await pilot.pause()
            await script(app, pilot)

    asyncio.run(main())


def test_tui_run_picks_the_module_view(lenet_run, monkeypatch):
    from viz import tui, tui_modules

    opened = []
    monkeypatch.setattr(tui_modules.ModuleStepView, "run",
                        lambda self, **kw: opened.append((type(self), self.lr, self.ops_open)))
    monkeypatch.setattr(tui.StepView, "run", lambda self, **kw: opened.append((type(self), None, None)))
    assert tui.run(lenet_run.stepper, "t", lr=0.1, ops_open=True) is lenet_run.stepper
    assert opened == [(tui_modules.ModuleStepView, 0.1, True)]


def test_pilot_80x24_keeps_the_gradient_columns(lenet_run):
    """On a small terminal the table drops kind, std and min (the step panel has them), not the gradients."""
    from viz.tui_modules import ModuleStepView

    stepper = lenet_run.stepper
    stepper.reset()
    conv = next(e for e in stepper.events if isinstance(e, ModuleBackward) and e.scope == "features.0")

    async def main():
        app = ModuleStepView(stepper, lenet_run.title)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("end")
            row = cells(app)["features.0"]
            assert list(row) == ["module", "output", "mean", "max", "dead", "|grad|", "upd/w"]
            assert row["|grad|"] == number(float(np.linalg.norm(np.asarray(conv.upstream, np.float64))))
            assert app.query_one("#modules").virtual_size.width <= 80
            await pilot.press("home", "right")
            step = text_of(app, "#step")                                  # the hidden columns, in words
            assert "features.0 (Conv2d)" in step and ", std " in step and ", min " in step
            await pilot.press("end")
            await pilot.resize_terminal(140, 42)
            for _ in range(20):
                await pilot.pause()
                if "kind" in cells(app)["features.0"]:
                    break
            assert list(cells(app)["features.0"]) == list(COLUMNS)      # wide again: every column
            assert cells(app)["features.0"]["kind"] == "Conv2d"
            await pilot.press("q")

    asyncio.run(main())
