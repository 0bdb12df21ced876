"""tgcv bench: each engine timed alone in its own process; the kernels, LeNet-5, ResNet-18."""
from __future__ import annotations

import click


@click.command("bench")
@click.option("--quick", is_flag=True, help="Fewer rounds and repetitions.")
@click.option("--only", default="kernels,lenet5,resnet18", show_default=True,
              help="Comma-separated groups: kernels, lenet5, resnet18.")
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Alternating rounds [3; 2 with --quick].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per engine [all cores].")
@click.option("--markdown", is_flag=True, help="Print the table in Markdown (the README's).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where the engines run: cuda = ours on the numba.cuda backend, torch on the GPU.")
def command(quick: bool, only: str, rounds: int | None, threads: int | None, markdown: bool, device: str) -> None:
    """Forward + backward of conv and pool layers, a LeNet-5 epoch and a ResNet-18 training step:
    tinygrad_cv vs torch vs the NumPy reference, each alone in a fresh process, medians."""
    from ..bench import GROUPS, format_table, run

    groups = tuple(g.strip() for g in only.split(",") if g.strip())
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise click.BadParameter(f"unknown group(s) {', '.join(bad)}; choose from {', '.join(GROUPS)}",
                                 param_hint="--only")
    results = run(quick=quick, only=groups, rounds=rounds, threads=threads,
                  progress=lambda s: click.echo(s, err=True), device=device)
    click.echo(format_table(results, markdown=markdown))
