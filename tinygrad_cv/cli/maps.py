"""``tgcv maps lenet5 --checkpoint model.npz --digit 7 -o DIR``: inside a trained CNN.

Writes, for the first held-out shipped digit of that class: ``input.png``, each conv
layer's feature maps ``<layer>_maps.png`` and their gradients ``<layer>_grads.png``
(d score of the digit / d activation: red +, blue -), the filters
``<layer>_filters.png`` and, with matplotlib, an annotated ``overview.png``.
"""
from __future__ import annotations

from pathlib import Path

import click

from . import fail
from .options import DIGIT, backend_option, model_argument


@click.command("maps")
@model_argument(mnist=True)
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Trained weights (.npz from tgcv train); without it the model is untrained.")
@click.option("--digit", type=DIGIT, default=7, show_default=True, help="Which digit (0-9) to look at.")
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory for the PNGs (created if missing).")
@backend_option(expose=False)
def command(model: str, checkpoint: Path | None, digit: int, out: Path) -> None:
    """Feature maps, their gradients and the filters of a CNN for one digit.

    \b
    tgcv maps lenet5 --checkpoint model.npz --digit 7 -o maps/
    """
    from tinygrad_cv import checkpoint as ckpt
    from tinygrad_cv import data, nn
    from tinygrad_cv.models import registry
    from viz import maps

    net = registry.get(model, mnist=True).build()
    if checkpoint is not None:
        try:
            ckpt.load(net, checkpoint)
        except (ValueError, OSError) as e:
            fail(str(e).splitlines()[0])
    else:
        click.echo("no --checkpoint: showing an untrained model")
    images, labels = data.mnist("test")
    index = int((labels == digit).nonzero()[0][0])
    x = data.normalize(data.to_float(images[index:index + 1]))
    fm = maps.feature_maps(net, x, grads=True, target=digit, path=out)
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            fm.files.append(maps.write_png(out / f"{name}_filters.png", maps.filters(m)))
    click.echo(f"digit {digit} (held-out image #{index}): predicted {fm.prediction}")
    for f in fm.files:
        click.echo(f"wrote {f}")
