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
@click.option("--save", "save_path", default=None, metavar="FILE.npz", help="Write a checkpoint at the end.")
@click.option("--plot", "plot_path", default=None, metavar="FILE.png", help="Plot loss and accuracy (matplotlib).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for init, shuffling and augmentation.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(model: str, epochs: int | None, batch_size: int | None, lr: float | None, optimizer: str,
            backend: str | None, data_dir: str | None, limit: int | None, augment: int | None, save_path: str | None,
            plot_path: str | None, seed: int, quiet: bool) -> None:
    """Train MODEL and print one line per epoch: loss, held-out accuracy, seconds.

    Without --backend the kernels are $TGCV_BACKEND's if it is set, else the library's
    default (numba).
    """
    from .. import checkpoint
    from ..data import DataError
    from ..train import fit, plot_curves

    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install matplotlib")
    kwargs = dict(model=model, optimizer=optimizer, lr=lr, backend=backend, data=data_dir, limit=limit, seed=seed)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("augment", augment)):
        if value is not None:
            kwargs[name] = value
    try:
        config = TrainConfig(**kwargs)
        result = fit(config, progress=not quiet, log=click.echo)
    except (DataError, FileNotFoundError) as e:
        fail(f"cannot read the digits: {e}")
    except (ValueError, RuntimeError, ImportError, OSError) as e:
        fail(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    best = max(h.accuracy for h in result.history)
    click.echo(f"held-out accuracy {100 * result.history[-1].accuracy:.1f}% (best {100 * best:.1f}%)")
    if save_path is not None:
        try:
            path = checkpoint.save(result.model, save_path, model_name=model, epochs=config.epochs,
                                   accuracy=result.history[-1].accuracy, optimizer=optimizer, seed=seed)
        except (OSError, ValueError, TypeError) as e:
            fail(f"cannot save {save_path}: {e}")
        click.echo(f"saved {path}")
    if plot_path is not None:
        try:
            plot_curves(result, plot_path)
        except (OSError, ValueError, RuntimeError) as e:
            fail(f"cannot write {plot_path}: {e}")
        click.echo(f"plotted {plot_path}")
