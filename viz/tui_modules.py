"""The full-screen stepper for a model, module by module: ``tgcv step lenet5`` on a terminal.

The same keys and the same screen as the expression view (:mod:`viz.tui`), with a
:class:`tinygrad_cv.step.ModuleStepper` instead of scalar nodes:

* a table of the model's modules, one row each in the order they run (the input first,
  the loss last): name, kind, output shape, the output's mean / std / min / max, the
  fraction of dead ReLUs (outputs exactly 0) once the forward pass reaches it, and once
  the backward pass reaches it the norm of the gradient arriving at its output,
  |dL/d(output)|, and the update-to-weight ratio lr*|dW|/|W| of its weight (the course's
  rule of thumb: about 1e-3). When the whole table is wider than the screen (80 columns),
  the kind, std and min columns are left out; the step panel still writes them;
* the current module step in the course's words (:func:`viz.format.describe_module`):
  forward, shape and statistics (the loss: the softmax and the target); backward, the
  upstream gradient, the module's local rule, the downstream gradient and the parameters'
  gradients;
* ``o`` opens the current step into the primitive ops inside the module (a panel that
  follows the steps while it is open) and closes it again;
* keys as for expressions: Enter, Space or Right next; Left or b back; Home and End; q quits.

Only wording from :mod:`viz.format` is shown; this module lays it out.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tinygrad_cv.step import ModuleBackward, ModuleForward, ModuleStepper, SeedStep, StepState

from .format import LR, describe, describe_module, describe_ops, norm, number, update_ratio
from .tui import ROLE_STYLES, STEP_KEYS, _marking, header_text, no_color_wanted, rich_text

HELP = "Enter/Space/→ next  ←/b back  Home/End  o open/close the step's ops  q quit"
COLUMNS = [("module", "module"), ("kind", "kind"), ("output", "output"), ("mean", "mean"), ("std", "std"),
           ("min", "min"), ("max", "max"), ("dead", "dead"), ("|grad|", "grad"), ("upd/w", "ratio")]
STAT_KEYS = ("mean", "std", "min", "max")
NARROW_HIDDEN = ("kind", "std", "min")     # left out when the whole table does not fit (the step panel has them)


class ModuleRow:
    """One row of the table: a module's forward and backward step (the model's input has neither).

    The forward columns never change once computed, so they are worked out once; so is the
    norm of each gradient the row has shown (the stepper's gradients are fixed arrays)."""

    def __init__(self, key: str, name: str, kind: str, forward: ModuleForward | None = None, node: Any = None):
        self.key, self.name, self.kind = key, name, kind
        self.forward = forward
        self.backward: ModuleBackward | None = None
        self.node = node if node is not None else forward.output
        self._forward_cells: dict[str, str] | None = None
        self._norms: dict[int, str] = {}

    def forward_cells(self) -> dict[str, str]:
        """output shape, mean / std / min / max (one number: the mean only) and the dead-ReLU share."""
        if self._forward_cells is None:
            value = np.asarray(self.node.data if self.forward is None else self.forward.result)
            cells = {"output": str(tuple(value.shape))}
            if value.size == 1:                                   # the loss: one number, no spread
                cells["mean"] = number(float(value.reshape(-1)[0]))
            elif value.size:
                v = value.astype(np.float64, copy=False)
                for key, f in zip(STAT_KEYS, (np.mean, np.std, np.min, np.max)):
                    cells[key] = number(float(f(v)))
            dead = self.forward.dead_fraction if self.forward is not None else None
            if dead is not None:
                cells["dead"] = f"{dead:.1%}"
            self._forward_cells = cells
        return self._forward_cells

    def grad_norm(self, grad: Any) -> str:
        if id(grad) not in self._norms:
            self._norms[id(grad)] = number(norm(grad))
        return self._norms[id(grad)]


def module_rows(stepper: ModuleStepper) -> list[ModuleRow]:
    """The input(s) the model reads, then one row per module forward step (the loss last)."""
    forward = [e for e in stepper.events if isinstance(e, ModuleForward)]
    rows: list[ModuleRow] = []
    params = {id(p) for e in forward for _, p in e.params}
    for leaf in stepper.graph.leaves:
        if id(leaf) not in params and (leaf.requires_grad or leaf.label):
            rows.append(ModuleRow(f"in{len(rows)}", stepper.name(leaf), "input", node=leaf))
    by_scope: dict[str, ModuleRow] = {}
    for e in forward:
        kind = type(e.module).__name__ if e.module is not None else "+".join(dict.fromkeys(e.op_names))
        row = ModuleRow(f"m{e.index}", e.scope, kind, forward=e)
        rows.append(row)
        by_scope.setdefault(e.scope, row)
    for e in stepper.events:
        if isinstance(e, ModuleBackward) and e.scope in by_scope:
            by_scope[e.scope].backward = e
    return rows


def _weight_ratio(e: ModuleBackward, lr: float) -> str:
    """The update-to-weight ratio of the module's weight (else its first parameter); blank without one."""
    if not e.param_grads:
        return ""
    name, p, g = next((t for t in e.param_grads if t[0].endswith("weight")), e.param_grads[0])
    ratio = update_ratio(g, p.data, lr)
    return "|W|=0" if ratio == float("inf") else number(ratio)


def row_cells(row: ModuleRow, state: StepState, lr: float = LR) -> dict[str, str]:
    """What the row shows in ``state``: the forward columns once its forward step is taken (the
    model's input: from the start); the norm of the gradient at its output once the backward
    pass reaches it (the step of the module it feeds); its weight's update-to-weight ratio once
    its own backward step is taken."""
    cells = {key: "" for _, key in COLUMNS}
    cells.update(module=row.name, kind=row.kind)
    if row.forward is None or row.forward.index < state.position:
        cells.update(row.forward_cells())
    grad = state.grads.get(id(row.node))
    if grad is not None:
        cells["grad"] = row.grad_norm(grad)
    if row.backward is not None and row.backward.index < state.position:
        cells["ratio"] = _weight_ratio(row.backward, lr)
    return cells


class ModuleStepView(App):
    """Step a :class:`ModuleStepper` module by module on one screen (see the module docstring)."""

    TITLE = "tgcv step"
    CSS = """
    Screen { layout: vertical; }
    #header { height: 1; padding: 0 1; text-style: bold; }
    #modules { height: auto; max-height: 60%; }
    #step-pane { height: 1fr; min-height: 4; border-top: solid $primary; padding: 0 1; }
    #ops-pane { height: 1fr; min-height: 4; border-top: solid $secondary; padding: 0 1; display: none; }
    #help { height: 1; padding: 0 1; }
    """
    BINDINGS = [*STEP_KEYS, Binding("o", "toggle_ops", "ops", priority=True, show=False)]

    def __init__(self, stepper: ModuleStepper, title: str | None = None, lr: float = LR, ops_open: bool = False,
                 **kwargs: Any):
        super().__init__(ansi_color=no_color_wanted() or kwargs.pop("ansi_color", False), **kwargs)
        self.stepper = stepper
        self.lr = lr
        self.heading = title or f"{stepper.name(stepper.root)}: {len(stepper.events)} module steps"
        self.rows = module_rows(stepper)
        self.ops_open = ops_open                   # the ops panel open from the start (tgcv step MODEL --ops)
        self.message = ""
        self._shown: dict[tuple[str, str], str] = {}
        end = stepper.state(len(stepper.events))                  # every cell filled: the widest the table gets
        filled = [row_cells(row, end, lr) for row in self.rows]
        self._full_width = sum(max([len(label)] + [len(c[key]) for c in filled]) + 2 for label, key in COLUMNS) + 2
        self.shown_columns: list[tuple[str, str]] = []
        self._mounted = False

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield DataTable(id="modules", cursor_type="row", zebra_stripes=False)
        with VerticalScroll(id="step-pane", can_focus=False) as step:
            step.border_title = "step"
            yield Static(id="step")
        with VerticalScroll(id="ops-pane", can_focus=False) as ops:
            ops.border_title = "ops inside"
            yield Static(id="ops")
        yield Static(id="help")

    def on_mount(self) -> None:
        self.query_one("#modules", DataTable).focus()
        self._mounted = True
        self.fit_columns()

    def on_resize(self, event: Any) -> None:
        if self._mounted:
            self.fit_columns(event.size.width)

    def fit_columns(self, width: int | None = None) -> None:
        """All the columns when they fit the screen's ``width``, else all but :data:`NARROW_HIDDEN`."""
        width = self.size.width if width is None else width
        wanted = COLUMNS if width >= self._full_width else [c for c in COLUMNS if c[1] not in NARROW_HIDDEN]
        if wanted == self.shown_columns:
            return
        self.shown_columns = wanted
        table = self.query_one("#modules", DataTable)
        table.clear(columns=True)
        for label, key in wanted:
            table.add_column(label, key=key)
        for row in self.rows:
            table.add_row(*(Text("") for _ in wanted), key=row.key)
        self._shown.clear()
        self.refresh_view()

    # drawing --------------------------------------------------------------------------------
    def current_row(self) -> ModuleRow | None:
        """The row of the current step's module (the loss for the seed step)."""
        event = self.stepper.current
        if isinstance(event, SeedStep):
            return self.rows[-1]
        scope = getattr(event, "scope", None)
        return next((r for r in self.rows if r.forward is not None and r.forward.scope == scope), None)

    def refresh_view(self) -> None:
        s = self.stepper
        event = s.current
        where = f"{event.kind} {event.number}/{event.total}: {event.scope}" if hasattr(event, "scope") else None
        self.query_one("#header", Static).update(header_text(self.heading, s, where, "input is"))

        table = self.query_one("#modules", DataTable)
        here = self.current_row()
        state = s.state()
        for row in self.rows:
            cells = row_cells(row, state, self.lr)
            for _, key in self.shown_columns:
                style = ""
                if row is here:
                    style = "reverse" if key in ("module", "kind") else ""
                    if isinstance(event, ModuleForward) and key in ("output", *STAT_KEYS, "dead"):
                        style = "reverse " + ROLE_STYLES["value"]
                    elif not isinstance(event, ModuleForward) and key in ("grad", "ratio"):
                        style = "reverse " + ROLE_STYLES["grad"]
                elif key in ("grad", "ratio"):
                    style = ROLE_STYLES["grad"]
                elif key not in ("module", "kind"):
                    style = ROLE_STYLES["value"]
                shown = f"{cells[key]}\0{style}"
                if self._shown.get((row.key, key)) != shown:           # redraw only what changed
                    self._shown[(row.key, key)] = shown
                    table.update_cell(row.key, key, Text(cells[key], style), update_width=True)
        if here is not None:
            table.move_cursor(row=self.rows.index(here), animate=False)

        if event is None:
            step = Text(f"Nothing computed yet: {self.rows[0].name} is the model's input. Enter (or Space, →) "
                        "runs the first module; o opens a step into its primitive ops.")
        elif isinstance(event, SeedStep):
            step = rich_text(describe(event, _marking))
        else:
            step = rich_text(describe_module(event, _marking, lr=self.lr))
        self.query_one("#step", Static).update(step)
        self.query_one("#step-pane", VerticalScroll).scroll_home(animate=False)

        ops_pane = self.query_one("#ops-pane", VerticalScroll)
        ops_pane.display = self.ops_open
        if self.ops_open:
            if hasattr(event, "ops"):
                n = len(event.ops)
                ops_pane.border_title = (f"ops inside {event.scope}: {n} primitive {event.kind} "
                                         f"step{'s' if n != 1 else ''} (o closes)")
                ops = rich_text(describe_ops(event, _marking))
            else:
                ops_pane.border_title = "ops inside (o closes)"
                ops = Text("This step is not a module: nothing to open. Step on, or press o to close.", "dim")
            self.query_one("#ops", Static).update(ops)
            ops_pane.scroll_home(animate=False)
        self.query_one("#help", Static).update(Text(self.message, "bold") if self.message else Text(HELP, "dim"))

    # keys -----------------------------------------------------------------------------------
    def action_next(self) -> None:
        self.message = ""
        if self.stepper.next() is None:
            self.message = "at the end: ← or b steps back, Home goes to the start, q quits"
        self.refresh_view()

    def action_back(self) -> None:
        self.message = "at the start: Enter takes the first step" if self.stepper.position == 0 else ""
        self.stepper.back()
        self.refresh_view()

    def action_start(self) -> None:
        self.message = ""
        self.stepper.reset()
        self.refresh_view()

    def action_end(self) -> None:
        self.message = ""
        self.stepper.position = len(self.stepper.events)
        self.refresh_view()

    def action_toggle_ops(self) -> None:
        self.ops_open = not self.ops_open
        self.message = ""
        self.refresh_view()

    def action_quit_view(self) -> None:
        self.exit()
