"""The ``tgcv`` command. Each subcommand lives in its own module and loads on first use."""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

# command name -> module under tinygrad_cv.cli that defines ``command``
COMMANDS = {
    "step": "step", "render": "render", "flow": "flow", "maps": "maps",
    "lesson": "lesson", "train": "train", "summary": "summary", "bench": "bench",
}
HELP = {
    "step": "Step through the forward and backward pass of an expression.",
    "render": "Draw an expression's annotated graph to .svg/.png/.pdf/.dot.",
    "flow": "Draw a gradient-flow diagram of an MLP on a batch of digits.",
    "maps": "Draw a trained CNN's feature maps and filters for one digit.",
    "lesson": "List or run the course's lessons.",
    "train": "Train a model on the shipped MNIST digits.",
    "summary": "Per-layer shapes, parameters, MACs and memory of a model.",
    "bench": "Time the conv and pool kernels against the references.",
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


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit non-zero: how every command reports bad input."""
    click.echo(f"tgcv: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's own errors stay one line, anything unexpected too (no traceback)."""
    try:
        cli.main(args=argv, prog_name="tgcv", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        sys.exit(130)
    except click.ClickException as e:
        click.echo(f"tgcv: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, TypeError, OSError, RuntimeError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        click.echo(f"tgcv: error: {msg}", err=True)
        sys.exit(1)
