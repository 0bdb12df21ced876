"""The ``tgcv`` command. Each subcommand lives in its own module and loads on first use."""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import warnings

import click

# command name -> module under tinygrad_cv.cli that defines ``command``
COMMANDS = {
    "step": "step", "render": "render", "flow": "flow", "maps": "maps",
    "lesson": "lesson", "train": "train", "summary": "summary", "bench": "bench",
}
HELP = {
    "step": "Step through the forward and backward pass of an expression.",
    "render": "Draw an expression's annotated graph to .svg/.png/.pdf/.dot.",
    "flow": "Per-layer gradient flow of any model after one batch, or side by side.",
    "maps": "Draw a trained CNN's feature maps and filters for one digit.",
    "lesson": "List or run the course's lessons.",
    "train": "Train a model on the shipped MNIST digits.",
    "summary": "Per-layer shapes, parameters, MACs and memory of a model.",
    "bench": "Time kernels, a LeNet-5 epoch and a ResNet-18 step against torch, each engine alone.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(f"{__name__}.{COMMANDS[name]}") is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        return importlib.import_module(f"{__name__}.{COMMANDS[name]}").command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, HELP[name]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinygrad_cv", prog_name="tgcv")
def cli() -> None:
    """tinygrad_cv: watch deep networks for vision compute and learn."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with control characters (escape sequences, newlines, NUL...) shown as ``\\x1b``-style escapes."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(text))


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit non-zero: how every command reports bad input.

    Control characters in ``message`` (it often echoes the user's input) are escaped.
    """
    click.echo(f"tgcv: error: {clean(message)}", err=True)
    sys.exit(code)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_environment() -> None:
    """Settings read from the environment are checked before any command runs (one line, exit 2)."""
    name = os.environ.get("TGCV_BACKEND", "").strip().lower()
    if not name:
        return
    from .. import backends

    try:
        if name in ("numpy", "numba"):
            backends._check(name)
        else:
            backends.set_backend(name)
    except (ValueError, RuntimeError, ImportError) as e:
        fail(f"TGCV_BACKEND={name}: {_first_line(e)}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's own errors stay one line, anything unexpected too (no traceback).

    Exit codes: 0 success, 2 bad input (usage, values, files that are not what they should
    be), 1 anything else that failed, 130 interrupted (Ctrl-C). Python and NumPy warnings
    are not shown (run with ``python -W default`` or ``PYTHONWARNINGS`` to see them); a
    closed stdin reads as empty.
    """
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
    for stream, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, stream) is None:                  # started with <&- or >&-
            setattr(sys, stream, open(os.devnull, mode))
    try:
        _check_environment()
        cli.main(args=argv, prog_name="tgcv", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("tgcv: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"tgcv: error: {clean(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("tgcv: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")                 # e.g. tgcv ... | head: stop quietly
        sys.exit(1)
    except MemoryError:
        fail("out of memory: the input is too large for this machine (try a smaller one)")
    except RecursionError:
        fail("the input is nested too deeply")
    except (ValueError, TypeError, KeyError, ArithmeticError) as e:
        fail(_first_line(e))
    except (OSError, RuntimeError) as e:
        fail(_first_line(e), 1)
    except Exception as e:                                 # noqa: BLE001 -- last resort: still one line
        if os.environ.get("TGCV_DEBUG"):
            raise
        fail(f"{type(e).__name__}: {_first_line(e)} (set TGCV_DEBUG=1 to see the traceback)", 1)
