"""Per-layer output shape, parameters, multiply-adds and activation memory of a model.

    s = tg.models.summary(tg.models.vgg16(), (3, 224, 224))   # input shape without the batch
    print(s)                                                  # the table
    s.rows[0]   # {'name': 'features.0', 'type': 'Conv2d', 'output_shape': (64, 224, 224),
                #  'params': 1792, 'macs': 86704128, 'memory': 3211264, 'inplace': False}

Everything is measured by a **shape pass**: the model's own forward runs once, in eval
mode and under no_grad, on a batch of one zero-filled example, with forward hooks
(``Module.register_forward_hook``) on its modules. After each leaf module (a module
without sub-modules: conv, linear, pool, BN, activation, ...) runs, a hook records its
output's shape and the parameters it owns, and its layer type's rule counts the
multiply-adds from the input and output shapes and says whether the output needs new
memory (a leaf type without a rule counts 0). Containers with their own forward (ResNet
blocks, inception modules) run as written. The layers check their inputs themselves; a
layer that refuses its input is named in the error. The hooks are removed and every
module's train/eval mode restored at the end; a user's own hooks fire as usual. VGG16
at 224x224 (15.5G multiply-adds) takes about 0.7 s on the numba kernels (about a
minute on the numpy reference); build it inside ``skip_init()`` so that its 138M
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
from ..graph import no_grad
from ..nn.module import Module
from ..tensors import Tensor

__all__ = ["Summary", "summary", "skip_init", "BYTES_PER_VALUE"]

BYTES_PER_VALUE = 4          # float32
MAX_INPUT_VALUES = 3 * 1024 * 1024   # one example of at most this many values (VGG16 there: ~15 s)
Shape = tuple[int, ...]
# rule(module, input shape, output shape, both with the batch axis) -> (MACs, inplace)
Rule = Callable[[Any, Shape, Shape], tuple[int, bool]]


# -- multiply-adds and memory, one rule per layer type ---------------------------------------------
# The layers check their own inputs; a rule only counts, from the shapes the layer saw and made.

def _conv(m: nn.Conv2d, x: Shape, y: Shape) -> tuple[int, bool]:
    kh, kw = m.kernel_size
    return y[2] * y[3] * m.out_channels * (m.in_channels // m.groups) * kh * kw, False


def _conv_transpose(m: nn.ConvTranspose2d, x: Shape, y: Shape) -> tuple[int, bool]:
    kh, kw = m.kernel_size                       # every input value scatters one filter per output channel
    return x[2] * x[3] * m.in_channels * (m.out_channels // m.groups) * kh * kw, False


def _linear(m: Any, x: Shape, y: Shape) -> tuple[int, bool]:
    positions = math.prod(x[1:-1])               # a Linear on (N, L, in) counts L positions
    return positions * m.in_features * m.out_features * getattr(m, "pieces", 1), False


def _adaptive(m: nn.AdaptiveAvgPool2d, x: Shape, y: Shape) -> tuple[int, bool]:
    return 0, y == x                             # pooling to the size it already has returns its input


def _same(inplace: bool) -> Rule:
    return lambda m, x, y: (0, inplace)


# keyed by the forward function: a subclass with its own forward is counted as a layer without a rule
_RULES: dict[Callable, Rule] = {
    nn.Conv2d.forward: _conv,
    nn.ConvTranspose2d.forward: _conv_transpose,
    nn.Linear.forward: _linear,
    nn.Maxout.forward: _linear,
    nn.AdaptiveAvgPool2d.forward: _adaptive,
    **{cls.forward: _same(True) for cls in (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Dropout, nn.Identity, nn.Flatten)},
    **{cls.forward: _same(False) for cls in (nn.MaxPool2d, nn.AvgPool2d, nn.Upsample, nn.BatchNorm1d, nn.BatchNorm2d,
                                              nn.Sigmoid, nn.Tanh, nn.Softmax, nn.LogSoftmax)},
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
    dims = tuple(int(d) for d in dims)
    if math.prod(dims) > MAX_INPUT_VALUES:
        # the summary runs one real forward pass: past this size it takes minutes and gigabytes
        raise ValueError(f"summary: input_shape {dims} has {math.prod(dims):,} values; the summary runs one "
                         f"forward pass of it, so at most {MAX_INPUT_VALUES:,} (e.g. 3x1024x1024)")
    return dims


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
    running: list[tuple[Module, Any]] = []  # the leaf calls in progress, with their input

    def row_name(module: Module) -> str:
        return names.get(id(module)) or type(module).__name__

    def add_row(name: str, kind: str, out: Tensor, params: int, macs: int, inplace: bool) -> None:
        made.append(out)
        made_ids.add(id(out))
        rows.append({"name": name, "type": kind, "output_shape": tuple(out.shape[1:]), "params": params,
                     "macs": int(macs), "memory": int(math.prod(out.shape[1:])), "inplace": bool(inplace)})

    def leaf_before(module: Module, args: tuple, kwargs: dict) -> None:
        x = args[0] if len(args) == 1 and not kwargs and isinstance(args[0], Tensor) else None
        running.append((module, x))

    def leaf_after(module: Module, args: tuple, out: Any) -> None:
        _, x = running.pop()
        rule = _RULES.get(getattr(type(module), "forward", None))
        if rule is not None and x is not None and isinstance(out, Tensor):
            macs, inplace = rule(module, tuple(x.shape), tuple(out.shape))
        else:                                        # no rule: 0 MACs, in place if it gave back its input
            macs, inplace = 0, x is not None and out is x
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
    except ValueError as e:
        if not running:                              # raised by a container's own code: as it is
            raise
        module, x = running[-1]                      # the layer whose input did not fit
        where = f" on input {_dims(x.shape[1:])}" if x is not None else ""
        raise ValueError(f"summary: layer {row_name(module)!r} ({type(module).__name__}){where}: {e}") from None
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
