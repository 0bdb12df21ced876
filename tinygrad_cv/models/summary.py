"""Per-layer output shape, parameters, multiply-adds and activation memory of a model.

    s = tg.models.summary(tg.models.vgg16(), (3, 224, 224))   # input shape without the batch
    print(s)                                                  # the table
    s.rows[0]   # {'name': 'features.0', 'type': 'Conv2d', 'output_shape': (64, 224, 224),
                #  'params': 1792, 'macs': 86704128, 'memory': 3211264, 'inplace': False}

Everything is measured by a **shape pass**: the model's own forward runs once, in eval
mode and under no_grad, on a batch of one zero-filled example, with forward hooks
(``Module.register_forward_hook``) on its modules. Before each leaf module (a module
without sub-modules: conv, linear, pool, BN, activation, ...) runs, a pre-hook applies
its output-shape rule: the rule checks the input (an error names the layer), counts the
multiply-adds and says whether the output needs new memory; after it runs, a hook
records the output. Containers with their own forward (ResNet blocks, inception
modules) are followed as written, and the model's train/eval modes are restored after.
A leaf type without a rule is recorded all the same, with 0 MACs. The hooks are removed
at the end; a user's own hooks fire as usual. VGG16 at 224x224 (15.5G multiply-adds)
takes about 0.7 s with the numba kernels; build it inside ``skip_init()`` so its 138M
weights are not drawn first.

Rows: one per call of a leaf module, in call order (a module called twice gets two
rows), plus one row ``"<Type> output"`` for a container whose forward makes its own
output from its layers' (an inception module's depth-wise concatenation: 28x28x672).

Units, per example (the batch is never counted):

* ``params``: learnable parameters (weights and biases; BN's running statistics are
  buffers, not parameters). A parameter shared by two layers is counted once: a row
  shows the parameters first seen at that layer, so the column sums to ``total_params``.
* ``macs``: multiply-adds; one MAC is one multiplication and one addition (FLOPs are
  about 2 x MACs). Conv: out_h * out_w * out_c * (in_c / groups) * kh * kw; Linear:
  in * out for every position (a Linear on (N, L, in) counts L positions). Bias adds,
  pools, BatchNorm and activations count 0 multiply-adds.
* ``memory``: the number of output activation values of the layer (multiply by 4 for
  bytes in float32, as the course's "24M * 4 bytes"). ``total_memory`` counts values the
  way the course's VGG table does: the input plus every layer's output, except outputs
  that need no new memory -- rows with ``inplace`` True: ReLU, LeakyReLU, ELU (PyTorch
  runs them with inplace=True), Dropout and Identity (the identity at inference),
  Flatten (a view) and a layer that returns its input unchanged (an adaptive pool to the
  size it already has). A residual sum feeding an in-place ReLU is in place too
  (torchvision's ``out += identity``). ``total_memory_bytes`` = 4 * ``total_memory``.
  Forward pass only; training keeps about twice as much. For VGG16 this is the true sum
  of the course's per-line figures, 15,237,608 values (~61 MB), where the slide prints
  "TOTAL memory: 24M * 4 bytes ~= 96MB / image".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .. import nn
from ..backends.shapes import output_hw, pair
from ..graph import no_grad
from ..nn.module import Module
from ..tensor import Tensor
from ..nn import AdaptiveAvgPool2d

__all__ = ["Summary", "summary", "skip_init", "BYTES_PER_VALUE"]

BYTES_PER_VALUE = 4          # float32
Shape = tuple[int, ...]
# rule(module, input shape with the batch axis) -> (output shape with the batch axis, MACs, inplace)
Rule = Callable[[Any, Shape], tuple[Shape, int, bool]]


# -- output-shape rules, one per layer type ------------------------------------------------------

def _need(module: Any, x: Shape, ndims: tuple[int, ...], channels: int | None, layout: str) -> None:
    if len(x) not in ndims or (channels is not None and x[1] != channels):
        raise ValueError(f"{type(module).__name__} expects input of shape {layout}, got {x}")


def _conv(m: nn.Conv2d, x: Shape) -> tuple[Shape, int, bool]:
    _need(m, x, (4,), m.in_channels, f"(N, {m.in_channels}, H, W)")
    oh, ow = output_hw(x[2:], m.kernel_size, m.stride, m.padding)
    kh, kw = m.kernel_size
    macs = oh * ow * m.out_channels * (m.in_channels // m.groups) * kh * kw
    return (x[0], m.out_channels, oh, ow), macs, False


def _linear(m: Any, x: Shape, pieces: int = 1) -> tuple[Shape, int, bool]:
    _need(m, x, tuple(range(2, 9)), None, f"(N, ..., {m.in_features})")
    if x[-1] != m.in_features:
        raise ValueError(f"{type(m).__name__} expects input of shape (N, ..., {m.in_features}), got {x}")
    positions = math.prod(x[1:-1])
    return x[:-1] + (m.out_features,), positions * m.in_features * m.out_features * pieces, False


def _maxout(m: nn.Maxout, x: Shape) -> tuple[Shape, int, bool]:
    return _linear(m, x, m.pieces)


def _pool(m: Any, x: Shape) -> tuple[Shape, int, bool]:
    _need(m, x, (4,), None, "(N, C, H, W)")
    k, s, p = pair(m.kernel_size, "kernel_size"), pair(m.stride, "stride"), pair(m.padding, "padding")
    return x[:2] + output_hw(x[2:], k, s, p), 0, False


def _adaptive(m: AdaptiveAvgPool2d, x: Shape) -> tuple[Shape, int, bool]:
    _need(m, x, (4,), None, "(N, C, H, W)")
    out = x[:2] + m.output_size
    return out, 0, out == x


def _batch_norm(m: Any, x: Shape) -> tuple[Shape, int, bool]:
    _need(m, x, m._dims, m.num_features, m._shape_text.format(C=m.num_features))
    return x, 0, False


def _same(inplace: bool) -> Rule:
    return lambda m, x: (x, 0, inplace)


def _flatten(m: nn.Flatten, x: Shape) -> tuple[Shape, int, bool]:
    s, e = m.start_dim % len(x), m.end_dim % len(x)
    return x[:s] + (math.prod(x[s:e + 1]),) + x[e + 1:], 0, True


# keyed by the forward function: a subclass with its own forward runs that forward instead
_RULES: dict[Callable, Rule] = {
    nn.Conv2d.forward: _conv,
    nn.Linear.forward: _linear,
    nn.Maxout.forward: _maxout,
    nn.MaxPool2d.forward: _pool,
    nn.AvgPool2d.forward: _pool,
    AdaptiveAvgPool2d.forward: _adaptive,
    nn.BatchNorm1d.forward: _batch_norm,
    nn.BatchNorm2d.forward: _batch_norm,
    nn.Flatten.forward: _flatten,
    **{cls.forward: _same(True) for cls in (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Dropout, nn.Identity)},
    **{cls.forward: _same(False) for cls in (nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax)},
}


# -- the result -------------------------------------------------------------------------------------

def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:g}"


def _dims(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


@dataclass
class Summary:
    """The table of a shape pass: ``rows`` (one dict per leaf-layer call, in call order) and totals.

    Row keys: name (dotted path, as in state_dict), type, output_shape (without the batch),
    params, macs (multiply-adds), memory (output values), inplace (True: no new memory,
    not counted in ``total_memory``). See the module docstring for the units.
    """

    model_name: str
    input_shape: Shape
    rows: list[dict[str, Any]] = field(default_factory=list)
    total_params: int = 0
    unattributed_params: int = 0

    @property
    def input_memory(self) -> int:
        """Values in one input example (the course's INPUT line: 224*224*3 = 150K)."""
        return math.prod(self.input_shape)

    @property
    def total_macs(self) -> int:
        """Multiply-adds of one forward pass of one example."""
        return sum(r["macs"] for r in self.rows)

    @property
    def total_memory(self) -> int:
        """Activation values of one example's forward pass: the input plus every counted output."""
        return self.input_memory + sum(r["memory"] for r in self.rows if not r["inplace"])

    @property
    def total_memory_bytes(self) -> int:
        """``total_memory`` in bytes of float32 (4 bytes a value)."""
        return BYTES_PER_VALUE * self.total_memory

    def table(self) -> str:
        """The rows as aligned text, with an INPUT line first and the totals last."""
        head = ("Layer", "Type", "Output (CxHxW)", "Params", "MACs", "Memory")
        body = [("(input)", "", _dims(self.input_shape), "0", "0", f"{self.input_memory:,}")]
        for r in self.rows:
            mem = f"{r['memory']:,}" + ("*" if r["inplace"] else "")
            body.append((r["name"], r["type"], _dims(r["output_shape"]), f"{r['params']:,}", f"{r['macs']:,}", mem))
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        right = (False, False, False, True, True, True)

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

        rule = "-" * len(line(head))
        out = [f"{self.model_name} on input {_dims(self.input_shape)} (per example)", rule, line(head), rule]
        out += [line(b) for b in body]
        out += [rule,
                f"Total params: {self.total_params:,} ({_human(self.total_params)})",
                f"Total MACs:   {self.total_macs:,} ({_human(self.total_macs)} multiply-adds, "
                f"~{_human(2 * self.total_macs)} FLOPs)",
                f"Total memory: {self.total_memory:,} values ({_human(self.total_memory)}) "
                f"* 4 bytes = {_human(self.total_memory_bytes)}B / example, forward only (~x2 for backward)",
                "(* in place, a view or the identity: not counted again in the memory total)"]
        if self.unattributed_params:
            out.append(f"({self.unattributed_params:,} parameters belong to no layer that ran)")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        # The table, as torchinfo shows it: the last line of a notebook cell displays it.
        return self.table()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.table())}</pre>"


# -- the shape pass -----------------------------------------------------------------------------------

def _check_input_shape(input_shape: Any) -> Shape:
    try:
        dims = tuple(input_shape)
    except TypeError:
        dims = ()
    if not dims or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise ValueError(f"summary: input_shape must be a tuple of positive ints without the batch, "
                         f"e.g. (3, 224, 224); got {input_shape!r}")
    return tuple(int(d) for d in dims)


def summary(model: Module, input_shape: Sequence[int]) -> Summary:
    """Shape pass of ``model`` on one example of ``input_shape`` (no batch axis, e.g. (3, 224, 224)).

    Returns a :class:`Summary`: ``.rows`` (name, type, output_shape, params, macs, memory,
    inplace), ``.total_params``, ``.total_macs`` (multiply-adds), ``.total_memory``
    (activation values, input included; ``.total_memory_bytes`` in float32); ``print``
    shows the table. A layer whose input does not fit raises ValueError naming the layer.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary() takes a tinygrad_cv.nn.Module, got {type(model).__name__}")
    shape = _check_input_shape(input_shape)
    try:
        return _shape_pass(model, shape)
    except ValueError as e:
        if len(shape) < 2 or shape[0] != 1:
            raise
        try:
            _shape_pass(model, shape[1:])
        except ValueError:
            raise e from None
        raise ValueError(f"summary: input_shape {shape} seems to include the batch; give one example's "
                         f"shape, {shape[1:]} (the summary counts per example)") from None


def _shape_pass(model: Module, shape: Shape) -> Summary:
    names = {id(m): name for name, m in model.named_modules()}
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    made: list[Tensor] = []                 # outputs already in a row (kept alive, so their ids stay unique)
    made_ids: set[int] = set()
    calls: list[tuple[Any, Shape | None, int, bool]] = []    # (input, rule's shape, MACs, inplace) per leaf call

    def row_name(module: Module) -> str:
        return names.get(id(module)) or type(module).__name__

    def add_row(name: str, kind: str, out: Tensor, params: int, macs: int, inplace: bool) -> None:
        made.append(out)
        made_ids.add(id(out))
        rows.append({"name": name, "type": kind, "output_shape": tuple(out.shape[1:]), "params": params,
                     "macs": int(macs), "memory": int(math.prod(out.shape[1:])), "inplace": bool(inplace)})

    def leaf_before(module: Module, args: tuple, kwargs: dict) -> None:
        # the layer's rule checks the input and counts the MACs before the layer runs
        x = args[0] if len(args) == 1 and not kwargs and isinstance(args[0], Tensor) else None
        rule = _RULES.get(getattr(type(module), "forward", None))
        if rule is None or x is None:
            calls.append((x, None, 0, False))
            return
        try:
            out_shape, macs, inplace = rule(module, tuple(x.shape))
        except ValueError as e:
            raise ValueError(f"summary: layer {row_name(module)!r} ({type(module).__name__}) on input "
                             f"{_dims(x.shape[1:])}: {e}") from None
        calls.append((x, out_shape, macs, inplace))

    def leaf_after(module: Module, args: tuple, out: Any) -> None:
        x, out_shape, macs, inplace = calls.pop()
        if out_shape is None:                         # no rule: in place if it gave back its input
            inplace = x is not None and out is x
        elif isinstance(out, Tensor) and tuple(out.shape) != out_shape:
            raise RuntimeError(f"summary: the shape rule of {type(module).__name__} says {out_shape}, "
                               f"but layer {row_name(module)!r} returned {tuple(out.shape)}")
        new = [p for p in module.parameters() if id(p) not in seen]
        seen.update(id(p) for p in new)
        if isinstance(out, Tensor):
            add_row(row_name(module), type(module).__name__, out, int(sum(p.size for p in new)), macs, inplace)

    def container_after(module: Module, args: tuple, out: Any) -> None:
        if isinstance(out, Tensor) and id(out) not in made_ids:
            # its forward made the output itself (an inception module's concatenation): one row for it
            add_row(row_name(module), f"{type(module).__name__} output", out, 0, 0, False)

    x0 = Tensor(np.zeros((1, *shape), dtype=np.float32))
    made.append(x0)
    made_ids.add(id(x0))
    handles = []
    for m in model.modules():
        if any(c is not None for c in m._modules.values()):
            handles.append(m.register_forward_hook(container_after))
        else:
            handles.append(m.register_forward_pre_hook(leaf_before, with_kwargs=True))
            handles.append(m.register_forward_hook(leaf_after))
    modes = [(m, m.training) for m in model.modules()]       # parents before their children
    try:
        model.eval()
        with no_grad():
            model(x0)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:        # train(mode) sets a whole subtree: parents first, children after
            m.train(mode)
    total = int(sum(p.size for p in model.parameters()))
    result = Summary(type(model).__name__, shape, rows, total)
    result.unattributed_params = max(0, total - sum(r["params"] for r in rows))
    return result


skip_init = nn.init.skip_init
