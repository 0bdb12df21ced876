"""tgcv bench: time the conv and pool kernels against the references."""
from __future__ import annotations

import click


@click.command("bench")
@click.option("--quick", is_flag=True, help="Fewer repetitions.")
def command(quick: bool) -> None:
    """Forward + backward of LeNet's conv and pool layers: numba vs NumPy vs torch."""
    from ..bench import format_table, run

    click.echo(format_table(run(quick=quick)))
