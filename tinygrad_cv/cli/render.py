"""``tgcv render``: an expression's annotated graph (values forward, gradients backward) as .svg/.png/.pdf/.dot."""
from __future__ import annotations

from pathlib import Path

import click

from . import fail


@click.command("render")
@click.option("--expr", "source", required=True, help='The expression, e.g. "(x + y) * z".')
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE", help="An input's value (repeat).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write: .svg, .png, .pdf or .dot (.dot needs no Graphviz install).")
@click.option("--rankdir", type=click.Choice(["LR", "TB", "RL", "BT"]), default="LR", show_default=True,
              help="Layout direction.")
def command(source: str, assignments: tuple[str, ...], output: Path, rankdir: str) -> None:
    """Draw an expression's graph after the forward and the backward pass.

    \b
    tgcv render --expr "(x + y) * z" --set x=-2 --set y=5 --set z=-4 -o graph.svg
    """
    from tinygrad_cv.expr import ExprError, parse, parse_assignments

    try:
        expr = parse(source, parse_assignments(assignments))
    except ExprError as e:
        fail(str(e))
        return
    import viz

    expr.root.backward()
    try:
        path = viz.render(expr.root, output, title=f"{expr.root.label} = {expr.source}", rankdir=rankdir)
    except viz.GraphvizMissing as e:
        fail(str(e))
        return
    except (ValueError, OSError, RuntimeError) as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        return
    click.echo(f"wrote {path}")
