"""tgcv train MODEL: train a model on the shipped MNIST digits (or full MNIST from --data DIR)."""
from __future__ import annotations

import click

from ..train import DEFAULT_LR, OPTIMIZERS, TrainConfig
from . import fail
from .options import POSITIVE, NamedChoice, backend_option, model_argument

_D = TrainConfig()


@click.command("train")
@model_argument(mnist=True)
@click.option("--epochs", type=POSITIVE, default=None, help=f"Passes over the training digits [{_D.epochs}].")
@click.option("--batch-size", type=POSITIVE, default=None, help=f"Digits per step [{_D.batch_size}].")
@click.option("--lr", type=float, default=None, help="Peak learning rate [" + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + "].")
@click.option("--optimizer", type=NamedChoice("optimizer", OPTIMIZERS), default=_D.optimizer, show_default=True,
              help="adam or sgd.")
@backend_option()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="Full MNIST IDX files in DIR (default: the 8,000/2,000 shipped digits).")
@click.option("--limit", type=POSITIVE, default=None, help="Train on the first N digits only.")
@click.option("--augment", type=click.IntRange(min=0), default=None, help=f"Max random shift in pixels [{_D.augment}].")
@click.option("--save", "save_path", default=None, metavar="FILE.npz", help="Write a checkpoint at the end (or of the last finished epoch on Ctrl-C).")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png", help="Plot loss and accuracy (matplotlib).")
@click.option("--flow", "flow_path", default=None, metavar="FILE.png",
              help="Record per-layer gradient flow while training; draw it as layer x step heat maps (matplotlib).")
@click.option("--flow-every", type=POSITIVE, default=10, show_default=True, help="With --flow: record every K steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for init, shuffling and augmentation.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(model: str, epochs: int | None, batch_size: int | None, lr: float | None, optimizer: str,
            backend: str | None, data_dir: str | None, limit: int | None, augment: int | None, save_path: str | None,
            plot_path: str | None, flow_path: str | None, flow_every: int, seed: int, quiet: bool) -> None:
    """Train MODEL and print one line per epoch: loss, held-out accuracy, seconds.

    Without --backend the kernels are $TGCV_BACKEND's if it is set, else the library's
    default (numba).
    """
    from .. import checkpoint
    from ..data import DataError
    from ..train import fit, plot_curves

    for option, target in (("--plot", plot_path), ("--flow", flow_path)):
        if target is not None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                fail(f"{option} needs matplotlib: pip install matplotlib")
    if save_path is not None:
        _check_target(save_path, "--save")
    if plot_path is not None:
        _check_target(plot_path, "--plot", _plot_formats())
    if flow_path is not None:
        _check_target(flow_path, "--flow", _plot_formats())
    recorder = None
    if flow_path is not None:
        from viz.flowsheet import FlowRecorder

        recorder = FlowRecorder(every=flow_every)
    kwargs = dict(model=model, optimizer=optimizer, lr=lr, backend=backend, data=data_dir, limit=limit, seed=seed)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("augment", augment)):
        if value is not None:
            kwargs[name] = value
    try:
        config = TrainConfig(**kwargs)
        with _sigterm_as_interrupt():
            hooks = {"callbacks": [recorder]} if recorder is not None else {}
            result = fit(config, progress=not quiet, log=click.echo, **hooks)
    except (DataError, FileNotFoundError) as e:
        fail(f"cannot read the digits: {e}")
    except (ValueError, RuntimeError, ImportError, OSError) as e:
        fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    if result.interrupted:
        _stop(result, config.epochs, save_path, model, optimizer, seed)
    best = max(h.accuracy for h in result.history)
    click.echo(f"held-out accuracy {100 * result.history[-1].accuracy:.1f}% (best {100 * best:.1f}%)")
    if save_path is not None:
        click.echo(f"saved {_save(result, save_path, model, optimizer, seed)}")
    if plot_path is not None:
        try:
            plot_curves(result, plot_path)
        except (OSError, ValueError, RuntimeError) as e:
            fail(f"cannot write {plot_path}: {e}")
        click.echo(f"plotted {plot_path}")
    if recorder is not None:
        _draw_flow(recorder, flow_path, model, optimizer)


def _draw_flow(recorder, flow_path: str, model: str, optimizer: str) -> None:
    from viz.flowsheet import flow_summary

    try:
        recorder.plot(flow_path, title=f"{model}, {optimizer}: gradient flow while training")
    except (OSError, ValueError, RuntimeError) as e:
        fail(f"cannot write {flow_path}: {e}")
    for line in flow_summary(recorder):
        click.echo(line)
    click.echo(f"flow drawn to {flow_path}")


def _check_target(target: str, option: str, formats: tuple[str, ...] | None = None) -> None:
    """Refuse (exit 2) an output file that could not be written, before any training is spent on it."""
    import os
    from pathlib import Path

    path = Path(target).expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    if not str(target).strip() or path.name in ("", ".", ".."):
        fail(f"{option} {target!r}: give a file name")
    if path.is_dir():
        fail(f"{option} {target}: is a directory, give a file name")
    if not directory.is_dir():
        fail(f"{option} {target}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        fail(f"{option} {target}: not writable (permission denied)")
    if formats is not None and path.suffix.lower().lstrip(".") not in formats:
        fail(f"{option} {target}: cannot tell the format from {path.suffix or 'no suffix'!r}; "
             f"use one of {', '.join('.' + f for f in formats)}")


def _plot_formats() -> tuple[str, ...]:
    from matplotlib.figure import Figure

    return tuple(sorted(Figure().canvas.get_supported_filetypes()))


def _save(result, save_path: str, model: str, optimizer: str, seed: int, **extra) -> object:
    from .. import checkpoint

    try:
        return checkpoint.save(result.model, save_path, model_name=model, epochs=len(result.history),
                               accuracy=result.history[-1].accuracy, optimizer=optimizer, seed=seed, **extra)
    except (OSError, ValueError, TypeError) as e:
        fail(f"cannot save {save_path}: {e}", 1)


def _stop(result, total: int, save_path: str | None, model: str, optimizer: str, seed: int) -> None:
    """Ctrl-C: one line on stderr, the last finished epoch saved when --save was given, exit 130."""
    import sys

    done = len(result.history)
    where = f"interrupted during epoch {done + 1}/{total}"
    if not done:
        what = "no epoch finished, nothing saved" if save_path else "no epoch finished"
    elif save_path is not None:
        path = _save(result, save_path, model, optimizer, seed, interrupted=True)
        what = (f"saved epoch {done} (held-out accuracy {100 * result.history[-1].accuracy:.1f}%) to {path}")
    else:
        what = f"epoch {done} was the last finished (held-out accuracy {100 * result.history[-1].accuracy:.1f}%)"
    click.echo(f"tgcv: {where}: {what}", err=True)
    sys.exit(130)


class _sigterm_as_interrupt:
    """While training, SIGTERM stops like Ctrl-C (the last finished epoch is still saved)."""

    def __enter__(self):
        import signal
        import threading

        self.old = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise KeyboardInterrupt
            self.old = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
