"""The full-screen stepper: a recorded graph's forward and backward pass, one step at a time, on one screen.

``tgcv step --expr ...`` on a terminal, or ``viz.step(root)`` from Python, opens a view with

* the graph drawn as text (each node over the inputs that feed it), the current node or
  edge marked ``▶`` and highlighted, the gradient arriving along an edge written beside it;
* a table of every node, one row each, starting with its name: op, value, gradient (blank
  until the step that computes it); constants are marked as constants and get no gradient;
* the current step in the course's words (``q = x + y = -2 + 5 = 3``; ``upstream df/dq = -4
  * local dq/dx = 1 = downstream -4``), with the running sum over the children of a node
  used more than once;
* an inspector for the selected node (up/down arrows or a mouse click, in the table or the
  graph): how it was computed and its gradient written out as the chain rule's sum over its
  children, ``df/dx = df/dq * dq/dx + ...``, ``?`` for the terms not taken yet;
* keys: Enter, Space or Right next; Left or b back; Home and End; ``e`` (or typing ``set
  x=3``) changes an input and replays both passes keeping the position; q quits. The
  bottom line lists them.

Why Textual (https://textual.textualize.io): it is a maintained full-screen framework built
on Rich that gives, ready-made, what a plain Rich ``Live`` display would make us write by
hand: a focusable table with a keyboard and mouse cursor, an input line, key bindings with
priorities, layout that reflows on resize, NO_COLOR and tmux/SSH support (it speaks plain
ANSI over any tty), and a headless test driver (``App.run_test`` / Pilot) that presses keys
and reads the screen without a terminal. Textual is imported only here, and this module
only when the view opens, so ``tgcv`` itself starts as fast as before.

A model stepped module by module (``Stepper(loss, by="module")``, ``tgcv step lenet5``) opens
the module view of :mod:`viz.tui_modules` instead: a table of modules with shapes and
statistics, the same keys, and ``o`` to open a step into its primitive ops.

All wording lives in :mod:`viz.format`; this module lays it out. The engine knows nothing
of it: the view reads a :class:`tinygrad_cv.step.Stepper`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from tinygrad_cv.expr import ExprError, parse_assignment
from tinygrad_cv.graph import Node
from tinygrad_cv.step import BackwardStep, ForwardStep, ModuleStepper, SeedStep, Stepper

from .format import chain_rule, describe, node_role, op_expression, running_sum, short, summarize

# role -> Rich style; values cyan, gradients yellow, as in the line mode (viz.text) and the diagrams
ROLE_STYLES = {"head": "bold", "name": "bold", "value": "cyan", "grad": "bold yellow",
               "rule": "magenta", "dim": "dim"}
HELP = "Enter/Space/→ next  ←/b back  Home/End  ↑↓/click node  e set input  q quit"
MAX_GRAPH_LINES = 2000
_OPEN, _MID, _CLOSE = "\x1e", "\x1f", "\x1d"     # role markers inside the text from viz.format


def no_color_wanted() -> bool:
    """NO_COLOR set (to anything but ""): draw with the terminal's own ANSI colours only, no palette."""
    return os.environ.get("NO_COLOR", "") != ""


def _marking(text: str, role: str) -> str:
    return f"{_OPEN}{role}{_MID}{text}{_CLOSE}"


def rich_text(marked: str) -> Text:
    """Turn text written with :func:`_marking` as its style into a Rich Text (no markup parsing)."""
    out = Text()
    rest = marked
    while _OPEN in rest:
        before, rest = rest.split(_OPEN, 1)
        out.append(before)
        role, rest = rest.split(_MID, 1)
        piece, rest = rest.split(_CLOSE, 1)
        out.append(rich_text(piece) if _OPEN in piece else piece, ROLE_STYLES.get(role, ""))
    out.append(rest)
    return out


# -- the graph, drawn as text --------------------------------------------------------------------

# The keys both full-screen views share (each view adds its own).
STEP_KEYS = [
    Binding("enter,space,right,n", "next", "next", priority=True, show=False),
    Binding("left,b", "back", "back", priority=True, show=False),
    Binding("home", "start", "start", priority=True, show=False),
    Binding("end", "end", "end", priority=True, show=False),
    Binding("q,ctrl+c", "quit_view", "quit", priority=True, show=False),
]


def header_text(heading: str, stepper: Stepper, where: str | None, known: str) -> Text:
    """The top line: the title, the position, what this step is (``where``; the start and the
    seed are named here) and what comes next."""
    event = stepper.current
    if event is None:
        where = f"start: only the {known} known"
    elif isinstance(event, SeedStep):
        where = "backward starts"
    nxt = "done" if stepper.done else "next: " + stepper.events[stepper.position].kind
    return Text.assemble((heading, "bold"), "   ", (f"step {stepper.position}/{len(stepper.events)}", "bold"),
                         f"  {where}  ({nxt})")


@dataclass
class GraphLine:
    """One line of the drawn graph: ``node`` reached from input ``slot`` of ``child`` (None at the root)."""

    prefix: str
    node: Node
    child: Node | None
    slot: int
    first: bool            # the node's first (expanded) appearance
    label: str


def graph_lines(stepper: Stepper) -> list[GraphLine]:
    """The graph as an indented tree: each node over the inputs that feed it, a node used again
    written ``(see above)`` so every edge appears exactly once."""
    lines: list[GraphLine] = []
    seen: set[int] = set()
    stack: list[tuple[Node, str, str, Node | None, int]] = [(stepper.root, "", "", None, 0)]
    while stack and len(lines) < MAX_GRAPH_LINES:
        node, prefix, connector, child, slot = stack.pop()
        name = stepper.name(node)
        first = id(node) not in seen
        if node.is_leaf:
            label = name if node.requires_grad else f"{name} (constant)"
        elif first:
            label = f"{name} = {op_expression(node.op, [stepper.name(p) for p in node.parents])}"
        else:
            label = f"{name} (see above)"
        lines.append(GraphLine(prefix + connector, node, child, slot, first, label))
        if node.is_leaf or not first:
            continue
        seen.add(id(node))
        inner = prefix + ("" if child is None else ("   " if connector.startswith("└") else "│  "))
        n = len(node.parents)
        for i in reversed(range(n)):
            stack.append((node.parents[i], inner, "└─ " if i == n - 1 else "├─ ", node, i))
    return lines


def _current_lines(lines: list[GraphLine], event: Any) -> tuple[int | None, int | None]:
    """(the highlighted line, the secondary line): the node computed, or the edge's parent and child."""
    if isinstance(event, ForwardStep):
        return next((i for i, g in enumerate(lines) if g.node is event.node and g.first), None), None
    if isinstance(event, SeedStep):
        return 0, None
    if isinstance(event, BackwardStep):
        edge = next((i for i, g in enumerate(lines) if g.child is event.child and g.slot == event.slot
                     and g.node is event.parent), None)
        child = next((i for i, g in enumerate(lines) if g.node is event.child and g.first), None)
        return edge, child
    return None, None


def draw_graph(stepper: Stepper, lines: list[GraphLine], position: int) -> Text:
    """The drawn graph at ``position``: the current node or edge marked ▶ (and ● its child)."""
    event = stepper.events[position - 1] if position else None
    main, other = _current_lines(lines, event)
    out = Text(no_wrap=True)
    for i, g in enumerate(lines):
        if i:
            out.append("\n")
        mark = "▶ " if i == main else "● " if i == other else "  "
        style = "reverse bold" if i == main else "bold" if i == other else ""
        out.append(mark, "bold")
        out.append(g.prefix, "dim")
        out.append(g.label, style)
        if i == main and isinstance(event, ForwardStep):
            out.append(f" = {short(event.result)}", ROLE_STYLES["value"])
        elif i == main and isinstance(event, BackwardStep):
            out.append(f" ◀ {short(event.downstream)}", ROLE_STYLES["grad"])
        elif i == main and isinstance(event, SeedStep):
            out.append(f" ◀ {short(event.grad)}", ROLE_STYLES["grad"])
    if len(lines) >= MAX_GRAPH_LINES:
        out.append("\n  ... (the rest of the graph is in the table)", "dim")
    return out


# -- the app -----------------------------------------------------------------------------------

class StepView(App):
    """Step through a Stepper's events on one screen (see the module docstring)."""

    TITLE = "tgcv step"
    CSS = """
    Screen { layout: vertical; }
    #header { height: 1; padding: 0 1; text-style: bold; }
    #top { height: 1fr; }
    #graph-pane { width: 2fr; border-top: solid $primary; }
    #right { width: 3fr; }
    #nodes { height: auto; max-height: 100%; }
    #inspector-pane { height: 1fr; min-height: 4; border-top: solid $primary; }
    #step { height: auto; max-height: 8; border-top: solid $primary; padding: 0 1; }
    #edit { height: 1; border: none; padding: 0 1; display: none; }
    #help { height: 1; padding: 0 1; }
    .graph-text { width: auto; }
    """
    BINDINGS = [
        *STEP_KEYS,
        Binding("e", "edit", "set input", priority=True, show=False),
        Binding("s", "type_set", "set", priority=True, show=False),
        Binding("escape", "cancel_edit", "cancel", show=False),
    ]

    def __init__(self, stepper: Stepper, title: str | None = None, **kwargs: Any):
        super().__init__(ansi_color=no_color_wanted() or kwargs.pop("ansi_color", False), **kwargs)
        self.stepper = stepper
        root = stepper.root
        self.heading = title or (f"{stepper.name(root)} = "
                                 f"{node_role(stepper, root) if not root.is_leaf else summarize(root.data)}")
        self.lines = graph_lines(stepper)
        self.order = list(stepper.graph.nodes)
        self.message = ""
        self.editing = False
        self._row_of = {id(n): i for i, n in enumerate(self.order)}
        self._cells: dict[tuple[str, str], tuple] = {}

    # layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="top"):
            with VerticalScroll(id="graph-pane", can_focus=False) as pane:
                pane.border_title = "graph"
                yield Static(id="graph", classes="graph-text")
            with Vertical(id="right"):
                yield DataTable(id="nodes", cursor_type="row", zebra_stripes=False)
                with VerticalScroll(id="inspector-pane", can_focus=False) as insp:
                    insp.border_title = "inspector"
                    yield Static(id="inspector")
        step = Static(id="step")
        step.border_title = "step"
        yield step
        yield Input(id="edit", select_on_focus=False, placeholder="set x=3   (Enter: replay, Esc: cancel)")
        yield Static(id="help")

    def on_mount(self) -> None:
        table = self.query_one("#nodes", DataTable)
        for key in ("node", "op", "value", "grad"):
            table.add_column(key, key=key)
        for n in self.order:
            table.add_row(self.stepper.name(n), node_role(self.stepper, n), "", "", key=str(id(n)))
        table.focus()
        self.refresh_view(follow=True)

    # drawing ------------------------------------------------------------------------------
    @property
    def selected(self) -> Node:
        table = self.query_one("#nodes", DataTable)
        return self.order[min(max(table.cursor_row, 0), len(self.order) - 1)]

    def refresh_view(self, follow: bool = False) -> None:
        """Redraw every panel for the stepper's position; ``follow`` selects the step's own node."""
        s = self.stepper
        state = s.state()
        event = state.event
        where = f"{event.kind} {event.number}/{event.total}" if isinstance(event, (ForwardStep, BackwardStep)) else None
        self.query_one("#header", Static).update(header_text(self.heading, s, where, "inputs are"))
        self.query_one("#graph", Static).update(draw_graph(s, self.lines, s.position))

        table = self.query_one("#nodes", DataTable)
        for n in self.order:
            k, key = id(n), str(id(n))
            value = Text(short(state.values[k]), ROLE_STYLES["value"]) if k in state.values else Text("")
            if not n.requires_grad:
                grad = Text("constant", "dim")
            elif k in state.grads:
                grad = Text(short(state.grads[k]), ROLE_STYLES["grad"])
            else:
                grad = Text("")
            if isinstance(event, ForwardStep) and event.node is n:
                value.stylize("reverse")
            if (isinstance(event, BackwardStep) and event.parent is n) or (isinstance(event, SeedStep) and event.node is n):
                grad.stylize("reverse")
            for column, cell in (("value", value), ("grad", grad)):
                shown = (cell.plain, str(cell.style), tuple(map(str, cell.spans)))
                if self._cells.get((key, column)) != shown:        # redraw only what changed
                    self._cells[(key, column)] = shown
                    table.update_cell(key, column, cell, update_width=True)

        if event is None:
            step = Text("Nothing computed yet: the inputs are in the table. Enter (or Space, →) takes the first "
                        "forward step.")
        else:
            marked = describe(event, _marking)
            if isinstance(event, BackwardStep):
                more = running_sum(event, s, _marking)
                if more:
                    marked += "\n" + more
            step = rich_text(marked)
        self.query_one("#step", Static).update(step)

        if follow:
            node = self._step_node(event)
            if node is not None:
                table.move_cursor(row=self._row_of[id(node)], animate=False)
        self.show_inspector()
        self.query_one("#help", Static).update(Text(self.message, "bold") if self.message else Text(HELP, "dim"))
        self._scroll_graph()

    def _step_node(self, event: Any) -> Node | None:
        if isinstance(event, ForwardStep) or isinstance(event, SeedStep):
            return event.node
        if isinstance(event, BackwardStep):
            return event.parent
        return None

    def _scroll_graph(self) -> None:
        main, _ = _current_lines(self.lines, self.stepper.current)
        if main is not None:
            pane = self.query_one("#graph-pane", VerticalScroll)
            if not (pane.scroll_y <= main < pane.scroll_y + pane.size.height - 1):
                pane.scroll_to(y=max(0, main - 2), animate=False)

    def show_inspector(self) -> None:
        node = self.selected
        lines = chain_rule(self.stepper, node, None, _marking)
        self.query_one("#inspector-pane", VerticalScroll).border_title = f"inspector: {self.stepper.name(node)}"
        self.query_one("#inspector", Static).update(rich_text("\n".join(lines)))

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self.show_inspector()

    def on_click(self, event: events.Click) -> None:
        """A click on a line of the drawn graph selects that node."""
        graph = self.query_one("#graph", Static)
        if event.widget is graph:
            y = event.get_content_offset(graph)
            if y is not None and 0 <= y.y < len(self.lines):
                node = self.lines[y.y].node
                self.query_one("#nodes", DataTable).move_cursor(row=self._row_of[id(node)], animate=False)

    # keys -----------------------------------------------------------------------------------
    def _moving(self) -> None:
        if self.editing:
            raise SkipAction()
        self.message = ""

    def action_next(self) -> None:
        self._moving()
        if self.stepper.next() is None:
            self.message = "at the end: ← or b steps back, Home goes to the start, e changes an input, q quits"
        self.refresh_view(follow=True)

    def action_back(self) -> None:
        self._moving()
        if self.stepper.position == 0:
            self.message = "at the start: Enter takes the first step"
        self.stepper.back()
        self.refresh_view(follow=True)

    def action_start(self) -> None:
        self._moving()
        self.stepper.reset()
        self.refresh_view(follow=True)

    def action_end(self) -> None:
        self._moving()
        self.stepper.position = len(self.stepper.events)
        self.refresh_view(follow=True)

    def action_quit_view(self) -> None:
        if self.editing:
            raise SkipAction()
        self.exit()

    def _open_edit(self, text: str) -> None:
        self.editing = True
        edit = self.query_one("#edit", Input)
        edit.display = True
        self.query_one("#help", Static).display = False
        edit.value = text
        edit.cursor_position = len(text)
        self.screen.set_focus(edit)

    def action_edit(self) -> None:
        if self.editing:
            raise SkipAction()
        inputs = [n for n in self.stepper.graph.leaves if n.label and n.requires_grad]
        node = self.selected if self.selected in inputs else (inputs[0] if inputs else None)
        self._open_edit(f"set {node.label}=" if node is not None else "set ")

    def action_type_set(self) -> None:
        if self.editing:
            raise SkipAction()
        self._open_edit("s")

    def _close_edit(self) -> None:
        self.editing = False
        edit = self.query_one("#edit", Input)
        edit.display = False
        self.query_one("#help", Static).display = True
        self.screen.set_focus(self.query_one("#nodes", DataTable))

    def action_cancel_edit(self) -> None:
        if self.editing:
            self._close_edit()
            self.message = ""
            self.refresh_view()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        text = message.value.strip()
        if text.startswith("set ") or text.startswith("set\t"):
            text = text[4:]
        self._close_edit()
        try:
            name, value = parse_assignment(text)
            self.stepper.set(name, value)
        except (ExprError, KeyError, ValueError) as e:
            self.message = "error: " + (e.args[0] if isinstance(e, KeyError) and e.args else str(e))
        else:
            self.message = f"replayed with {name} = {value:g}: both passes redone, still at step {self.stepper.position}"
        self.refresh_view()


def run(stepper: Stepper, title: str | None = None, **options: Any) -> Stepper:
    """Open the full-screen view on ``stepper`` (blocks until q); returns the stepper. A
    :class:`~tinygrad_cv.step.ModuleStepper` opens the module view (:mod:`viz.tui_modules`;
    ``options``: its ``lr`` and ``ops_open``)."""
    if isinstance(stepper, ModuleStepper):
        from .tui_modules import ModuleStepView

        ModuleStepView(stepper, title, **options).run(mouse=True)
    else:
        StepView(stepper, title, **options).run(mouse=True)
    return stepper
