"""The options several ``tgcv`` commands share, each checked in one place.

A bad value stops the command with one line naming the option and the value, and exit
status 2 (click's BadParameter), e.g. ``tgcv: error: Invalid value for '--digit': '12'
is not a digit 0..9``. The model names come from the zoo's registry
(tinygrad_cv.models.registry); the backend names from tinygrad_cv.backends.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import click

__all__ = ["ShapeType", "NamedChoice", "ModelName", "DigitType", "SHAPE", "DIGIT", "POSITIVE", "backend_option",
           "model_argument"]

POSITIVE = click.IntRange(min=1)          # a count: epochs, batch size, a number of digits

_DIMS = re.compile(r"^\s*\d+(\s*[xX,]\s*\d+)*\s*$")


class ShapeType(click.ParamType):
    """"3x224x224" (or "3,224,224") -> (3, 224, 224): one example's shape, positive sizes, no batch."""

    name = "CxHxW"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        dims = [int(d) for d in re.split(r"[xX,]", text)] if _DIMS.match(text) else []
        if not dims or min(dims) < 1:
            self.fail(f"{text!r} is not a shape like 3x224x224 (positive sizes, no batch)", param, ctx)
        return tuple(dims)


class NamedChoice(click.ParamType):
    """One of a list of names (a callable giving them, for lists known only at run time);
    otherwise "unknown <kind> 'x'; choose one of a, b, c"."""

    name = "name"

    def __init__(self, kind: str, choices: Sequence[str] | Callable[[], Sequence[str]]) -> None:
        self.kind = kind
        self._choices = choices

    def choices(self) -> list[str]:
        return list(self._choices() if callable(self._choices) else self._choices)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "{" + "|".join(self.choices()) + "}"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in self.choices() if n.startswith(incomplete)]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        choices = self.choices()
        if value not in choices:
            self.fail(f"unknown {self.kind} {value!r}; choose one of {', '.join(choices)}", param, ctx)
        return value


class ModelName(NamedChoice):
    """A model name from the registry; ``mnist=True``: only those that train on the shipped digits."""

    def __init__(self, mnist: bool | None = None) -> None:
        super().__init__("model", self._names)
        self.mnist = mnist

    def _names(self) -> list[str]:
        from ..models import registry

        return registry.names(mnist=self.mnist)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..models import registry

        try:
            return registry.get(str(value), mnist=self.mnist).name
        except ValueError as e:          # unknown, or a zoo model that does not take digits
            self.fail(str(e), param, ctx)


class DigitType(click.ParamType):
    """One digit class, 0..9."""

    name = "0-9"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            digit = int(value)
        except (TypeError, ValueError):
            digit = -1
        if not 0 <= digit <= 9:
            self.fail(f"{value!r} is not a digit 0..9", param, ctx)
        return digit


SHAPE = ShapeType()
DIGIT = DigitType()


def model_argument(mnist: bool | None = None) -> Callable[[Callable], Callable]:
    """The MODEL argument of a command; the names it takes, from the registry, end the command's help."""
    kind = ModelName(mnist)

    def decorate(f: Callable) -> Callable:
        import inspect

        from ..models import registry

        specs = [registry.MODELS[n] for n in kind.choices()]
        lines = [f"  {s.name:<16} {'x'.join(map(str, s.input_shape)):<10} {s.description}" for s in specs]
        f.__doc__ = inspect.cleandoc(f.__doc__ or "") + "\n\n\b\nMODEL is one of (input CxHxW):\n" + "\n".join(lines)
        return click.argument("model", metavar="MODEL", type=kind)(f)
    return decorate


def _select_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from ..backends import set_backend

        try:
            set_backend(value)
        except (RuntimeError, ImportError, ValueError) as e:      # e.g. cuda without a GPU
            raise click.BadParameter(str(e).strip().splitlines()[0] or type(e).__name__, ctx, param) from None
    return value


def backend_option(expose: bool = True) -> Any:
    """``--backend NAME``: select the conv/pool kernels before the command runs.

    Not given (None): the backend already selected, i.e. $TGCV_BACKEND if set, else the
    library's default. ``expose=False``: the command does not receive the value.
    """
    from ..backends import BACKENDS, DEFAULT

    return click.option("--backend", type=NamedChoice("backend", list(BACKENDS)), default=None,
                        callback=_select_backend, expose_value=expose,
                        help=f"Conv/pool kernels: {', '.join(BACKENDS)} "
                             f"[default: $TGCV_BACKEND if set, else {DEFAULT}].")
