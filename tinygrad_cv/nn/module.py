"""Module and Parameter: PyTorch's way of holding a network's state.

A Module registers the Parameters, buffers (running statistics) and sub-Modules
assigned to its attributes; state_dict keys are their dotted paths, exactly as
PyTorch names them ("features.0.weight", "bn.running_mean"), so weights move
between the two 1:1. Calling a module runs ``forward`` inside
``name_scope(<its attribute name>)``, so every tensor it creates carries the
module's dotted path (``tensor.scope``) for clustering a model's graph.

Forward hooks (PyTorch's) let a tool watch or change a layer without editing it:
``register_forward_pre_hook(fn)`` calls ``fn(module, inputs)`` just before
``forward`` and ``register_forward_hook(fn)`` calls ``fn(module, inputs, output)``
just after; each returns a :class:`RemovableHandle` whose ``remove()`` takes the
hook off again. The model summary, the feature maps and the gradient-flow
diagrams are built this way.
"""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from contextlib import nullcontext
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from ..graph import name_scope
from ..tensors import Tensor


class Parameter(Tensor):
    """A Tensor that a Module treats as learnable: requires_grad=True, float32 by default."""

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True):
        # nn.Parameter(tensor) keeps the tensor's dtype (and shares its data), as in PyTorch
        data = np.zeros(0, np.float32) if data is None else data
        super().__init__(data, requires_grad=requires_grad,
                         dtype=data.dtype if isinstance(data, Tensor) and data.dtype.kind == "f" else None)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


_hook_ids = itertools.count()


class RemovableHandle:
    """What ``register_forward_hook`` / ``register_forward_pre_hook`` return (PyTorch's
    torch.utils.hooks.RemovableHandle): ``handle.remove()`` takes the hook off its module.

    Removing twice is harmless. As a context manager the hook lives for the block only::

        with model.fc.register_forward_hook(lambda m, inputs, out: print(out.shape)):
            model(x)                       # prints fc's output shape
        model(x)                           # prints nothing: the hook is gone
    """

    def __init__(self, hooks: OrderedDict, *extra: set) -> None:
        self.id = next(_hook_ids)
        self._refs = [weakref.ref(hooks)]
        self._extra = list(extra)          # e.g. the set of hook ids that take kwargs

    def remove(self) -> None:
        hooks = self._refs[0]()
        if hooks is not None:
            hooks.pop(self.id, None)
        for ids in self._extra:
            ids.discard(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


def _array_of(value: Any) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


class Module:
    """Base class of every layer and model (PyTorch's nn.Module)."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_scope_name", "")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_hooks_with_kwargs", set())

    # -- registration ---------------------------------------------------------------------
    def _dicts(self) -> tuple[dict, dict, dict]:
        try:
            return self.__dict__["_parameters"], self.__dict__["_buffers"], self.__dict__["_modules"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning parameters or sub-modules") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (Parameter, Module)) or name in self.__dict__.get("_parameters", ()) \
                or name in self.__dict__.get("_buffers", ()) or name in self.__dict__.get("_modules", ()):
            params, buffers, modules = self._dicts()
            if isinstance(value, Parameter):
                self._forget(name)
                params[name] = value
            elif isinstance(value, Module):
                self._forget(name)
                modules[name] = value
                object.__setattr__(value, "_scope_name", name)
            elif name in params:
                if value is not None:
                    raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                                    f"(a Parameter or None is required)")
                params[name] = None
            elif name in buffers:
                buffers[name] = value if value is None or isinstance(value, Tensor) else Tensor(value)
            else:
                modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for d in self._dicts():
            d.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if any(name in d for d in self._dicts()):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._dicts()[0][name] = param

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """A state tensor that is not learned (e.g. running_mean); saved in state_dict if persistent."""
        self._forget(name)
        self._dicts()[1][name] = tensor if tensor is None or isinstance(tensor, Tensor) else Tensor(tensor)
        if not persistent:
            self._non_persistent.add(name)
        else:
            self._non_persistent.discard(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): {type(module).__name__} is not a Module")
        self._forget(name)
        self._dicts()[2][name] = module
        if module is not None:
            object.__setattr__(module, "_scope_name", name)

    # -- traversal ------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with dotted names ("" for self)."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for k, c in self._modules.items():
            if c is not None:
                yield k, c

    def children(self) -> Iterator[Module]:
        for _, c in self.named_children():
            yield c

    def _named(self, kind: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for mname, m in mods:
            for k, t in getattr(m, kind).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mname}.{k}" if mname else k), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every sub-module (children first) and on self, as PyTorch does."""
        for c in self.children():
            c.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ----------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def to(self, *args: Any, dtype: Any = None, device: Any = None, **_: Any) -> Module:
        """``model.to(tg.float64)`` converts floating parameters and buffers in place; ``.to("cpu")`` is a no-op."""
        for a in ((device,) if device is not None else ()) + args:
            if isinstance(a, str) or type(a).__name__ == "device":
                Tensor(0.0).to(a)                      # refuses anything but the CPU, clearly
            elif a is not None:
                dtype = a
        if dtype is not None:
            for t in itertools.chain(self.parameters(), self.buffers()):
                if t.data.dtype.kind == "f":
                    t.data = t.data.astype(dtype)
                    if t.grad is not None:
                        t.grad = t.grad.data.astype(dtype)
        return self

    def double(self) -> Module: return self.to(np.float64)
    def float(self) -> Module: return self.to(np.float32)
    def cpu(self) -> Module: return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # -- state ----------------------------------------------------------------------------------
    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        # PyTorch's order: own parameters, own persistent buffers, then each child's, recursively
        for k, p in self._parameters.items():
            if p is not None:
                yield prefix + k, p
        for k, b in self._buffers.items():
            if b is not None and k not in self._non_persistent:
                yield prefix + k, b
        for k, c in self._modules.items():
            if c is not None:
                yield from c._state_items(f"{prefix}{k}.")

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter and persistent buffer as a copy of its array, under PyTorch's keys."""
        return OrderedDict((k, t.data.copy()) for k, t in self._state_items())

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (numpy, Tensors, or anything np.asarray takes) into the parameters in place.

        strict=True raises ValueError naming missing keys, unexpected keys and shape differences;
        shape differences always raise.
        """
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        arrays = {k: _array_of(v) for k, v in state_dict.items() if k in own}
        shapes = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(a.shape)}"
                  for k, a in arrays.items() if tuple(a.shape) != tuple(own[k].shape)]
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if shapes:
            problems.append("shape mismatch " + "; ".join(shapes))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        from ..checkpoint import check_array     # real, finite numbers that fit the parameter's dtype
        for k, a in arrays.items():
            try:
                check_array(k, a, own[k].data.dtype)
            except ValueError as e:
                raise ValueError(f"load_state_dict into {type(self).__name__}: {e}") from None
        for k, a in arrays.items():
            t = own[k]
            t.data[...] = a.astype(t.data.dtype, copy=False)
        return IncompatibleKeys(missing, unexpected)

    # -- forward hooks ------------------------------------------------------------------------------
    def _add_hook(self, kind: str, hook: Callable, prepend: bool, with_kwargs: bool) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"register_{kind[1:-1]}({hook!r}): a hook must be callable")
        try:
            hooks, with_kw = self.__dict__[kind], self.__dict__["_hooks_with_kwargs"]
        except KeyError:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before hooks can be registered") from None
        handle = RemovableHandle(hooks, with_kw)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        if with_kwargs:
            with_kw.add(handle.id)
        return handle

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, inputs)`` every time this module is called, before ``forward``.

        ``inputs`` is the tuple of positional arguments. The hook may return new inputs --
        a tuple, or a single value that stands for a 1-tuple -- which ``forward`` (and the
        hooks after it) then receive; returning None keeps them. Hooks run in the order
        they were registered (``prepend=True`` puts this one first). With ``with_kwargs=True``
        the hook is ``hook(module, inputs, kwargs)`` and returns None or ``(inputs, kwargs)``.
        Returns a :class:`RemovableHandle`.
        """
        return self._add_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` every time this module is called, after ``forward``.

        ``inputs`` is the tuple of positional arguments ``forward`` received (after any
        pre-hook replaced them), ``output`` what it returned. The hook may return a
        replacement output, which the caller (and the hooks after it) get instead;
        returning None keeps it. Hooks run in the order they were registered
        (``prepend=True`` puts this one first). With ``with_kwargs=True`` the hook is
        ``hook(module, inputs, kwargs, output)``. Returns a :class:`RemovableHandle`.
        """
        return self._add_hook("_forward_hooks", hook, prepend, with_kwargs)

    # -- calling ----------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` inside ``name_scope(<attribute name>)``, with the forward hooks around it.

        Order: pre-hooks (each may replace the inputs), ``forward``, forward hooks (each may
        replace the output). The hooks are the ones registered when the call starts: a hook
        registered (or removed) by a hook takes effect from the next call, as in PyTorch.
        """
        forward = getattr(type(self), "forward", None)
        if forward is None:
            raise TypeError(f"{type(self).__name__} has no forward(); define forward(self, x) in the subclass")
        name = self._scope_name
        # a root module has no name: its children's names start the path
        with name_scope(name) if name else nullcontext():
            d = self.__dict__
            pre, post = d.get("_forward_pre_hooks"), d.get("_forward_hooks")
            if not pre and not post:
                return forward(self, *args, **kwargs)
            with_kw = d["_hooks_with_kwargs"]
            for hook_id, hook in tuple((pre or {}).items()):
                if hook_id in with_kw:
                    result = hook(self, args, kwargs)
                    if result is not None:
                        if not (isinstance(result, tuple) and len(result) == 2):
                            raise RuntimeError(f"forward pre-hook {hook!r} with kwargs must return None "
                                               f"or a tuple (inputs, kwargs), got {type(result).__name__}")
                        args, kwargs = result
                        args = args if isinstance(args, tuple) else (args,)
                else:
                    result = hook(self, args)
                    if result is not None:
                        args = result if isinstance(result, tuple) else (result,)
            output = forward(self, *args, **kwargs)
            for hook_id, hook in tuple((post or {}).items()):
                result = hook(self, args, kwargs, output) if hook_id in with_kw else hook(self, args, output)
                if result is not None:
                    output = result
            return output

    def extra_repr(self) -> str:
        """The arguments shown inside the parentheses of repr(); layers override this."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = []
        for k, c in self._modules.items():
            body = repr(c).replace("\n", "\n  ")
            children.append(f"({k}): {body}")
        if not children and len(lines) <= 1:
            return f"{type(self).__name__}({extra})"
        inner = "\n  ".join(lines + children)
        return f"{type(self).__name__}(\n  {inner}\n)"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))
