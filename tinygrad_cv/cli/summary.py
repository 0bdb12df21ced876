"""``tgcv summary MODEL [--input 3x224x224]``: the per-layer table of a zoo model.

Shapes, parameters, multiply-adds and activation memory per layer, from a shape pass
(tinygrad_cv.models.summary): one forward pass of one zero example with hooks on the
layers. The model is built without drawing its initial weights (``skip_init``): the
table needs shapes, not values. The models and their input shapes come from
tinygrad_cv.models.registry.
"""
from __future__ import annotations

import click

from . import fail
from .options import SHAPE, backend_option, model_argument


@click.command("summary")
@model_argument()
@click.option("--input", "shape", type=SHAPE, default=None, metavar="CxHxW",
              help="Input shape without the batch (default: the model's own, e.g. 3x224x224).")
@backend_option(expose=False)
def command(model: str, shape: tuple[int, ...] | None) -> None:
    """Per-layer output shape, parameters, multiply-adds and memory of MODEL.

    inception_naive and inception are the course's 28x28x256 GoogLeNet example, without
    and with 1x1 bottlenecks.
    """
    from ..models import registry
    from ..models.summary import skip_init, summary

    spec = registry.get(model)
    try:
        with skip_init():
            net = spec.build()
        table = summary(net, spec.input_shape if shape is None else shape)
    except (ValueError, RuntimeError) as e:
        fail(str(e).splitlines()[0])
        return
    click.echo(str(table))
