"""``tgcv summary NAME [--input 3x224x224]``: the per-layer table of a zoo model.

Shapes, parameters, multiply-adds and activation memory per layer, from a shape pass
(tinygrad_cv.models.summary). The model is built without drawing its initial weights
(``skip_init``): the table needs shapes, not values, so VGG16 takes well under a second.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import click

from . import fail

# name -> (constructor's name in tinygrad_cv.models and its arguments, default input C x H x W)
ZOO: dict[str, tuple[str, tuple[Any, ...], tuple[int, ...]]] = {
    "lenet5": ("lenet5", (), (1, 28, 28)),
    "alexnet": ("alexnet", (), (3, 227, 227)),
    "vgg16": ("vgg16", (), (3, 224, 224)),
    "vgg19": ("vgg19", (), (3, 224, 224)),
    "resnet18": ("resnet18", (), (3, 224, 224)),
    "resnet34": ("resnet34", (), (3, 224, 224)),
    "resnet50": ("resnet50", (), (3, 224, 224)),
    "mobilenet_v1": ("mobilenet_v1", (), (3, 224, 224)),
    # the course's GoogLeNet example: 28x28x256 in, 128 1x1, 192 3x3, 96 5x5 filters
    "inception_naive": ("inception_module", (256, 128, 192, 96), (256, 28, 28)),
    "inception": ("inception_module", (256, 128, 192, 96, 64, 64, 64), (256, 28, 28)),
}

_DIMS = re.compile(r"^\s*\d+(\s*[xX,]\s*\d+)*\s*$")


def parse_input(text: str) -> tuple[int, ...]:
    """"3x224x224" (or "3,224,224") -> (3, 224, 224); ValueError naming the text otherwise."""
    if not _DIMS.match(text) or any(int(d) < 1 for d in re.split(r"[xX,]", text)):
        raise ValueError(f"--input {text!r} is not a shape like 3x224x224 (positive sizes, no batch)")
    return tuple(int(d) for d in re.split(r"[xX,]", text))


def build(name: str) -> Callable[[], Any]:
    """The zero-argument constructor of zoo model ``name``; ValueError listing the names otherwise."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(ZOO)}")
    from .. import models

    attr, args, _ = ZOO[name]
    factory = getattr(models, attr, None)
    if factory is None:
        raise ValueError(f"model {name!r} is not available in this installation (tinygrad_cv.models.{attr})")
    return lambda: factory(*args)


@click.command("summary")
@click.argument("name")
@click.option("--input", "input_text", default=None, metavar="CxHxW",
              help="Input shape without the batch (default: the model's own, e.g. 3x224x224).")
def command(name: str, input_text: str | None) -> None:
    """Per-layer output shape, parameters, multiply-adds and memory of model NAME.

    NAME: lenet5, alexnet, vgg16, vgg19, resnet18, resnet34, resnet50, mobilenet_v1,
    inception_naive, inception (the course's 28x28x256 GoogLeNet example, with bottlenecks).
    """
    from ..models.summary import skip_init, summary

    try:
        factory = build(name)
        shape = parse_input(input_text) if input_text is not None else ZOO[name][2]
        with skip_init():
            model = factory()
        table = summary(model, shape)
    except ValueError as e:
        fail(str(e).splitlines()[0])
        return
    click.echo(str(table))
