"""The words and numbers a person reads about a graph, written in one place.

Numbers the way the course writes them (``-4``, ``0.5``, ``0.0183``), arrays in full
when small and as a summary when large, an op applied to its inputs (``x + y``,
``exp(x)``), each op's local derivative in the course's notation (``d(a*b)/db = a``),
and the sentence for each step of the Stepper: the terminal (viz.text), the frame
player (viz.frames), the diagrams (viz.draw) and the lessons all use these.

A ``style(text, role)`` function colours the pieces; roles: "name", "value", "grad",
"op", "rule", "head", "dim". The plain style returns the text unchanged.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinygrad_cv.graph import Op
from tinygrad_cv.step import BackwardStep, Event, ForwardStep, ModuleBackward, ModuleForward, SeedStep, Stepper

Style = Callable[[str, str], str]
FULL_ARRAY = 16      # arrays with at most this many numbers are printed in full


def plain(text: str, role: str) -> str:
    return text


def number(x: float) -> str:
    """A scalar the way the course writes it: -4, 0.5, 0.0183."""
    return f"{x:.4g}"


def summarize(x: Any, full: int = FULL_ARRAY) -> str:
    """A number, a small array in full, or a larger array as shape, dtype, norm, mean, min and max."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return number(x)
    a = np.asarray(x)
    if a.ndim == 0:
        return number(a.item())
    if a.size <= full:
        body = np.array2string(a, precision=4, suppress_small=True, separator=", ", max_line_width=10_000)
        return " ".join(body.split())
    if a.dtype.kind not in "fiub":
        return f"{a.shape} {a.dtype}"
    f = a.astype(np.float64, copy=False)
    return (f"shape {a.shape} {a.dtype}, norm {number(float(np.linalg.norm(f)))}, "
            f"mean {number(float(f.mean()))}, min {number(float(f.min()))}, "
            f"max {number(float(f.max()))}")


def op_expression(op: Op, parents: list[str]) -> str:
    """How the course writes node = op(inputs): "x + y", "-x", "x**2", "exp(x)", "leaky_relu(x, 0.1)"."""
    if op.symbol and len(parents) == 2:
        return f"{parents[0]} {op.symbol} {parents[1]}"
    if op.symbol == "-" and len(parents) == 1:
        return f"-{parents[0]}"
    if op.name == "pow" and hasattr(op, "k"):
        return f"{parents[0]}**{op.k:g}"
    extra = [f"{getattr(op, a):g}" for a in ("slope", "alpha") if isinstance(getattr(op, a, None), (int, float))]
    return f"{op.name}({', '.join(parents + extra)})"


def local_rule(op: Op, slot: int) -> str:
    """The local derivative of ``op`` for input ``slot``: "d(a*b)/db = a", or the fused op's sentence."""
    if op.formula:
        return f"d({op.formula})/d{op.inputs[slot]} = {op.derivative(slot)}"
    return op.derivative(slot)


def local_rules(op: Op, n_inputs: int) -> str:
    """Every input's local derivative: "d(a*b)/da = b, d(a*b)/db = a"."""
    rules = dict.fromkeys(local_rule(op, i) for i in range(n_inputs))    # alike inputs say it once
    return ", ".join(rules)


def _operand(x: float, style: Style) -> str:
    """A number inside an expression; negatives in parentheses where a sign would read wrong."""
    text = style(number(x), "value")
    return f"({text})" if x < 0 else text


def describe(event: Event, style: Style = plain) -> str:
    """One step in the course's words (forward ``q = x + y = -2 + 5 = 3``; backward
    ``upstream x local = downstream``, with the running sum where a node is used twice)."""
    if isinstance(event, (ModuleForward, ModuleBackward)):
        return describe_module(event, style)
    if isinstance(event, ForwardStep):
        return _describe_forward(event, style)
    if isinstance(event, SeedStep):
        s, g = style, summarize(event.grad)
        return (f"{s('backward starts', 'head')}  d{event.name}/d{event.name} = {s(g, 'grad')}  "
                f"({s(event.name, 'name')}.grad = {s(g, 'grad')})")
    return _describe_backward(event, style)


def forward_formula(e: ForwardStep, s: Style = plain) -> str | None:
    """A scalar forward step's arithmetic, ``q = x + y = -2 + 5 = 3`` (None for tensors)."""
    if not (all(isinstance(v, float) for v in e.inputs) and isinstance(e.result, float)):
        return None
    expr = op_expression(e.op, [s(n, "name") for n in e.input_names])
    if len(e.inputs) == 2 and e.op.symbol:
        shown = [s(number(e.inputs[0]), "value"), _operand(e.inputs[1], s)]
    elif len(e.inputs) == 1 and (e.op.symbol == "-" or e.op.name == "pow"):
        shown = [_operand(e.inputs[0], s)]
    else:
        shown = [s(number(v), "value") for v in e.inputs]
    values = op_expression(e.op, shown)
    return f"{s(e.name, 'name')} = {expr} = {values} = {s(number(e.result), 'value')}"


def _describe_forward(e: ForwardStep, s: Style) -> str:
    head = s(f"forward {e.number}/{e.total}", "head")
    formula = forward_formula(e, s)
    if formula is not None:
        return f"{head}  {formula}"
    expr = op_expression(e.op, [s(n, "name") for n in e.input_names])
    shapes = op_expression(e.op, [str(np.shape(v)) for v in e.inputs])
    lines = [f"{head}  {s(e.name, 'name')} = {expr}    {s(shapes, 'dim')} -> {s(str(np.shape(e.result)), 'dim')}"]
    for n, v in zip(e.input_names, e.inputs):
        lines.append(f"    {s(n, 'name')}: {s(summarize(v), 'value')}")
    lines.append(f"    -> {s(e.name, 'name')}: {s(summarize(e.result), 'value')}")
    return "\n".join(lines)


def _describe_backward(e: BackwardStep, s: Style) -> str:
    r, c, p = e.root_name, e.child_name, e.parent_name
    rule = local_rule(e.op, e.slot)
    head = (f"{s(f'backward {e.number}/{e.total}', 'head')}  {s(c, 'name')} -> {s(p, 'name')}  "
            f"{s(f'[{e.op.name}: {rule}]', 'rule')}")
    if e.local is not None:
        mid = (f"    upstream d{r}/d{c} = {s(number(e.upstream), 'grad')}  *  "
               f"local d{c}/d{p} = {s(number(e.local), 'value')}  =  "
               f"downstream {s(number(e.downstream), 'grad')}")
        if e.previous is None:
            acc = f"    {s(p, 'name')}.grad = {s(number(e.accumulated), 'grad')}"
        else:
            acc = (f"    {s(p, 'name')}.grad = {number(e.previous)} + {number(e.downstream)} = "
                   f"{s(number(e.accumulated), 'grad')}  (used more than once: gradients add)")
        return "\n".join([head, mid, acc])
    lines = [head,
             f"    upstream d{r}/d{c}: {s(summarize(e.upstream), 'grad')}",
             f"    downstream to {s(p, 'name')}: {s(summarize(e.downstream), 'grad')}"]
    more = "  (gradients add)" if e.previous is not None else ""
    if np.shape(e.downstream) != np.shape(e.accumulated):
        more += f"  (summed over the broadcast axes back to {np.shape(e.accumulated)})"
    lines.append(f"    {s(p, 'name')}.grad so far: {s(summarize(e.accumulated), 'grad')}{more}")
    return "\n".join(lines)


# -- one node's story: what the full-screen stepper (viz.tui) and others show per node ---------

def node_role(stepper: Stepper, node) -> str:
    """What a node is: "input", "constant", or its op on its inputs ("x + y", "sigmoid(t)")."""
    if node.is_leaf:
        return "input" if node.requires_grad else "constant"
    return op_expression(node.op, [stepper.name(p) for p in node.parents])


def short(x: Any, width: int = 12) -> str:
    """A value for a table cell: a number, a small array when it fits, else its shape and norm."""
    text = summarize(x)
    if len(text) <= width or isinstance(x, (int, float)):
        return text
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        return str(a.shape)
    return f"{a.shape} |{number(float(np.linalg.norm(a.astype(np.float64, copy=False))))}|"


def gradient_terms(stepper: Stepper, node) -> list[BackwardStep]:
    """The backward steps that add into ``node``'s gradient: one per use of the node, in the engine's order."""
    return [e for e in stepper.events if isinstance(e, BackwardStep) and e.parent is node]


_TIMES = {2: "twice", 3: "three times"}


def _product(up: Any, local: Any, s: Style) -> str:
    return f"{_operand(up, s) if up < 0 else s(number(up), 'grad')} * {_operand(local, s)}"


def running_sum(event: BackwardStep, stepper: Stepper, s: Style = plain) -> str | None:
    """For a node used more than once: its gradient so far as the sum over its children,
    ``sum over x's children: 2 (via r) + 3 (via q) = 5, 1 more to come``; None for a node used once."""
    terms = gradient_terms(stepper, event.parent)
    if len(terms) < 2:
        return None
    taken = [t for t in terms if t.index <= event.index]
    parts = [f"{s(summarize(t.downstream), 'grad')} (via {t.child_name})" for t in taken]
    rest = len(terms) - len(taken)
    more = f", {rest} more to come" if rest else ", all its children done"
    total = s(summarize(event.accumulated), "grad")
    return f"    sum over {event.parent_name}'s children: {' + '.join(parts)} = {total}{more}"


def chain_rule(stepper: Stepper, node, position: int | None = None, s: Style = plain) -> list[str]:
    """One node's whole story at ``position``: its value (how it was computed) and its gradient
    written as the chain rule's sum over its children, ``df/dx = df/dq * dq/dx + ...``, with the
    terms not yet taken shown as ``?``."""
    state = stepper.state(position)
    pos, name, root = state.position, stepper.name(node), stepper.name(stepper.root)
    lines = []
    role = node_role(stepper, node)
    if node.is_leaf:
        lines.append(f"{s(name, 'name')}  {role}  value {s(summarize(node.data), 'value')}")
    else:
        fwd = next(e for e in stepper.events if isinstance(e, ForwardStep) and e.node is node)
        if fwd.index < pos:
            lines.append(forward_formula(fwd, s) or
                         f"{s(name, 'name')} = {role}  value {s(summarize(fwd.result), 'value')}")
        else:
            lines.append(f"{s(name, 'name')} = {role}  {s('(value not computed yet)', 'dim')}")
    if not node.requires_grad:
        lines.append(s("a constant: it takes no gradient", "dim"))
        return lines
    d = f"d{root}/d{name}"
    if node is stepper.root:
        seed = next(e for e in stepper.events if isinstance(e, SeedStep))
        known = seed.index < pos
        lines.append(f"{d} = {s(summarize(seed.grad), 'grad') if known else '?'}  (backward starts here)")
        return lines
    terms = gradient_terms(stepper, node)
    if not terms:
        lines.append(s("no gradient flows back to it", "dim"))
        return lines
    uses = {}
    for t in terms:
        uses[t.child_name] = uses.get(t.child_name, 0) + 1
    by = ", ".join(c if k == 1 else f"{c} {_TIMES.get(k, f'{k} times')}" for c, k in uses.items())
    if len(terms) > 1:
        lines.append(f"used {len(terms)} times ({by}): gradients add")
    else:
        lines.append(f"used once, by {by}: {s(local_rule(terms[0].op, terms[0].slot), 'rule')}")
    lines.append(f"{d} = " + " + ".join(f"d{root}/d{t.child_name}*d{t.child_name}/d{name}" for t in terms))
    done = [t for t in terms if t.index < pos]
    pad = " " * len(d)
    if not done:
        total = ""
    elif len(done) == len(terms):
        total = f" = {s(summarize(state.grads[id(node)]), 'grad')}"
    else:
        total = f" = {s(summarize(state.grads[id(node)]), 'grad')} so far ({len(done)} of {len(terms)} terms)"
    if all(t.local is not None for t in terms):
        lines.append(f"{pad} = " + " + ".join(_product(t.upstream, t.local, s) if t.index < pos else "?"
                                              for t in terms))
        if len(terms) > 1:
            lines.append(f"{pad} = " + " + ".join(s(number(t.downstream), "grad") if t.index < pos else "?"
                                                  for t in terms) + total)
        else:
            lines[-1] += total
    else:
        for t in terms if len(terms) > 1 else ():
            got = s(summarize(t.downstream), "grad") if t.index < pos else "?"
            lines.append(f"  via {t.child_name}: {got}")
        lines.append(f"{pad}{total or ' = ?'}")
    if not done:
        lines[-1] += "  " + s("(not reached yet)", "dim")
    return lines


# -- module steps (Stepper(loss, by="module")) -----------------------------------------------------

LR = 0.01                   # the learning rate the update-to-weight ratio is stated for
RATIO_RULE = 1e-3           # the course's rule of thumb: updates about 1e-3 of the weights

# each op's backward rule for a whole module, in the course's words
MODULE_RULES = {
    "conv2d": "conv's input gradient is a convolution of the upstream gradient with the flipped filter; "
              "its filter gradient correlates the input with the upstream gradient",
    "conv_transpose2d": "a transposed conv's input gradient is a plain convolution of the upstream gradient "
                        "with the same filter; its filter gradient correlates the upstream gradient with the input",
    "interpolate": "upsampling sends each output's gradient back to the input pixels it was read from",
    "max_pool2d": "max pooling routes the gradient to each window's maximum (0 elsewhere)",
    "avg_pool2d": "average pooling spreads the gradient evenly over each window",
    "relu": "ReLU passes the gradient where the input was positive (0 where it was not)",
    "linear": "a linear layer sends W^T x upstream to its input; dW = upstream^T x input",
    "reshape": "a reshape only puts the gradient back in the input's shape",
    "cross_entropy": "dL/dlogits = softmax(logits) - onehot(target)",
    "batch_norm": "batch norm scales the gradient by gamma / sigma (in training it also removes the batch mean "
                  "of the gradient and its correlation with x-hat)",
    "add": "an addition copies the gradient to both of its inputs (the shortcut of a residual block)",
}


def stats(x: Any) -> str:
    """mean, std, min and max of an array, the way the module steps show them."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return "empty"
    return (f"mean {number(float(a.mean()))}, std {number(float(a.std()))}, "
            f"min {number(float(a.min()))}, max {number(float(a.max()))}")


def norm(x: Any) -> float:
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64)))


def _module_title(e: Any) -> str:
    kind = type(e.module).__name__ if e.module is not None else "+".join(e.op_names)
    return f"{e.scope} ({kind})" if e.module is not None else f"{e.scope} [{kind}]"


def module_rule(op_names: list[str]) -> str:
    """The local rule of a module's ops, in the course's words."""
    rules = [MODULE_RULES[n] for n in dict.fromkeys(op_names) if n in MODULE_RULES]
    return "; ".join(rules) if rules else "the chain rule through " + ", ".join(dict.fromkeys(op_names))


def softmax_target(e: ModuleForward) -> tuple[np.ndarray, np.ndarray]:
    """A cross-entropy step's softmax over the classes, (N, classes), and its targets, (N,)."""
    logits = np.asarray(e.ops[-1].inputs[0], dtype=np.float64)
    z = logits - logits.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), np.asarray(e.ops[-1].op.target)


def softmax_lines(e: ModuleForward, s: Style = plain) -> list[str]:
    """The loss step's softmax over the classes and the target, for a cross-entropy module."""
    p, target = softmax_target(e)
    lines = []
    for i in range(p.shape[0]):
        bars = "  ".join(f"{j}:{p[i, j]:.3f}" for j in range(p.shape[1]))
        t = int(target[i])
        lines.append(f"    softmax {s(bars, 'value')}")
        lines.append(f"    target {s(str(t), 'name')}: p = {number(float(p[i, t]))}, predicted "
                     f"{int(p[i].argmax())}; loss = -log p[target] = {number(float(-np.log(p[i, t])))}")
    return lines


def update_ratio(grad: Any, weight: Any, lr: float = LR) -> float:
    """lr * |dW| / |W| (inf for a zero weight)."""
    w = norm(weight)
    return lr * norm(grad) / w if w else float("inf")


def describe_module(e: Any, style: Style = plain, lr: float = LR) -> str:
    """A module step: forward shape and statistics (dead ReLUs, the loss's softmax); backward
    upstream and downstream norms, the module's local rule, each parameter's gradient and its
    update-to-weight ratio lr*|dW|/|W| against the course's ~1e-3."""
    s = style
    if isinstance(e, ModuleForward):
        head = s(f"forward {e.number}/{e.total}", "head")
        ins = ", ".join(str(tuple(np.shape(v))) for v in e.input_values) or "-"
        lines = [f"{head}  {s(_module_title(e), 'name')}    {s(ins, 'dim')} -> "
                 f"{s(str(tuple(np.shape(e.result))), 'dim')}"]
        if e.ops[-1].op.name == "cross_entropy":
            lines.append(f"    loss = {s(number(float(np.asarray(e.result))), 'value')}")
            lines += softmax_lines(e, s)
        else:
            lines.append(f"    output {s(stats(e.result), 'value')}")
        dead = e.dead_fraction
        if dead is not None:
            lines.append(f"    dead ReLUs: {s(f'{dead:.1%}', 'value')} of the outputs are 0")
        for name, p in e.params:
            lines.append(f"    {s(name, 'name')} {tuple(np.shape(p.data))}")
        if len(e.ops) > 1:
            lines.append(f"    {len(e.ops)} ops inside: {', '.join(e.op_names)}")
        return "\n".join(lines)
    head = s(f"backward {e.number}/{e.total}", "head")
    r = e.root_name
    lines = [f"{head}  {s(_module_title(e), 'name')}",
             f"    upstream d{r}/d(output) {tuple(np.shape(e.upstream))}: norm {s(number(norm(e.upstream)), 'grad')}",
             f"    rule: {s(module_rule([o.op.name for o in e.ops]), 'rule')}"]
    for node, g in e.downstream:
        lines.append(f"    downstream d{r}/d(input) {tuple(np.shape(g))}: norm {s(number(norm(g)), 'grad')}")
    for name, p, g in e.param_grads:
        ratio = update_ratio(g, p.data, lr)
        head_p = f"    {s(name, 'name')}.grad norm {s(number(norm(g)), 'grad')}; "
        if ratio == float("inf"):
            lines.append(head_p + "|W| = 0 (not trained yet), so no update-to-weight ratio")
            continue
        verdict = ("about right" if RATIO_RULE / 10 <= ratio <= RATIO_RULE * 10
                   else ("small" if ratio < RATIO_RULE else "large"))
        lines.append(head_p + f"update/weight lr*|dW|/|W| = {number(ratio)} at lr {number(lr)} "
                     f"({verdict} against the course's ~1e-3 rule of thumb)")
    return "\n".join(lines)


def describe_ops(e: Any, style: Style = plain) -> str:
    """A module step opened into its primitive events, each in its own words."""
    return "\n".join(describe(op, style) for op in e.ops)
