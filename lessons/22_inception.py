"""Case study: GoogLeNet's inception module, naive versus with 1x1 bottlenecks.

GoogLeNet (Szegedy et al., 2014) won ImageNet with 22 layers and only about 5M
parameters by stacking one carefully designed block, the inception module: 1x1,
3x3 and 5x5 convolutions and a 3x3 max pool run side by side on the same input
and their outputs are stacked depth-wise. Done naively that is very expensive;
1x1 convolutions that first shrink the depth ("bottlenecks") make it affordable.
We redo the course's example, a 28x28x256 input, with the library's module.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn

H = W = 28
C_IN = 256
# The course's conv-op lines: (label, output channels, kernel size, input depth of that conv)
NAIVE_LINES = [("1x1 conv, 128", 128, 1, 256), ("3x3 conv, 192", 192, 3, 256), ("5x5 conv, 96", 96, 5, 256)]
BOTTLENECK_LINES = [("1x1 conv, 64 (before 3x3)", 64, 1, 256), ("1x1 conv, 64 (before 5x5)", 64, 1, 256),
                    ("1x1 conv, 128", 128, 1, 256), ("3x3 conv, 192", 192, 3, 64), ("5x5 conv, 96", 96, 5, 64),
                    ("1x1 conv, 64 (after pool)", 64, 1, 256)]
PRINTED_NAIVE, PRINTED_BOTTLENECK = 854e6, 358e6       # "Total: 854M ops", "Total: 358M ops"


def ops(lines: list[tuple[str, int, int, int]]) -> list[int]:
    """The course's count per line: H * W * filters * k * k * input depth (one multiply-add each)."""
    return [H * W * k_out * f * f * d for _, k_out, f, d in lines]


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    naive = tg.models.inception_module(C_IN, 128, 192, 96)
    bottleneck = tg.models.inception_module(C_IN, 128, 192, 96, reduce3x3=64, reduce5x5=64, pool_proj=64)
    sn, sb = tg.models.summary(naive, (C_IN, H, W)), tg.models.summary(bottleneck, (C_IN, H, W))

    heading("The naive module: output sizes")
    say("""Q1: a 1x1 conv with 128 filters on 28x28x256 gives 28x28x128 (padding 0 is enough for a 1x1
        filter). Q2: the 3x3 conv (pad 1) gives 28x28x192, the 5x5 conv (pad 2) 28x28x96, and the 3x3 max
        pool (stride 1, pad 1) keeps all 256 channels, 28x28x256. Q3: stacked depth-wise, 28x28x(128 +
        192 + 96 + 256) = 28x28x672.""")
    branch_out = {r["name"].split(".")[0]: r["output_shape"] for r in sn.rows if r["type"] in ("Conv2d", "MaxPool2d")}
    check("Q1: 1x1 conv, 128 filters", branch_out["branch1"], (128, H, W))
    check("Q2: 3x3 conv, 192 filters", branch_out["branch2"], (192, H, W))
    check("Q2: 5x5 conv, 96 filters", branch_out["branch3"], (96, H, W))
    check("Q2: 3x3 max pool keeps the depth", branch_out["branch4"], (C_IN, H, W))
    check("Q3: after concatenation", sn.rows[-1]["output_shape"], (672, H, W), note="course: 28x28x672")
    side = H if not opts.quick else 8
    x = tg.randn(1, C_IN, side, side)
    with tg.no_grad():
        y = naive(x)
        parts = [naive.branch1(x), naive.branch2(x), naive.branch3(x), naive.branch4(x)]
    why = ", to keep quick mode quick; the depth does not depend on it" if opts.quick else ""
    say(f"""A real forward pass ({side}x{side} input{why})
        confirms it, and the output is literally the four branch outputs one after the other along
        the channel axis:""")
    check("real output shape", tuple(y.shape), (1, 672, side, side))
    check("output = the branches concatenated along channels",
          float(np.abs(y.data - np.concatenate([p.data for p in parts], axis=1)).max()), 0.0)

    heading("The naive module: the cost")
    n_lines = ops(NAIVE_LINES)
    table(["conv", "H*W*filters*k*k*depth", "multiply-adds"],
          [[lab, f"28*28*{k}*{f}*{f}*{d}", n] for (lab, k, f, d), n in zip(NAIVE_LINES, n_lines)] +
          [["total", "", sum(n_lines)]])
    check("sum of the course's lines", sum(n_lines), 854_196_224)
    check("the course's printed total", sum(n_lines), PRINTED_NAIVE, rel=0.001, note="course: 854M ops")
    check("summary's multiply-adds of the naive module", sn.total_macs, sum(n_lines))
    say("""Most of it is the 5x5 and 3x3 convs reading all 256 input channels. And because the pool
        branch passes its full depth through, the depth can only grow from one module to the next:""")
    two = nn.Sequential(tg.models.inception_module(C_IN, 128, 192, 96), tg.models.inception_module(672, 128, 192, 96))
    s2 = tg.models.summary(two, (C_IN, H, W))
    check("two naive modules in a row: depth 672 + 128 + 192 + 96", s2.rows[-1]["output_shape"][0], 1088)
    check("... and the second alone costs (multiply-adds)", s2.total_macs - sn.total_macs,
          sum(H * W * k * f * f * 672 for _, k, f, _ in NAIVE_LINES))

    heading("1x1 convolutions: shrink the depth, keep the size")
    say("""A 1x1 conv looks at one pixel at a time, through the whole depth: each of its filters is a
        dot product of the pixel's channel vector with a weight vector. The course's picture: 56x56x64
        through 32 1x1 filters gives 56x56x32, a linear projection of the 64 feature maps onto 32.""")
    x1 = tg.randn(1, 64, 56, 56)
    w1 = tg.randn(32, 64, 1, 1)
    y1 = F.conv2d(x1, w1)
    by_hand = np.einsum("oc,nchw->nohw", w1.data[:, :, 0, 0], x1.data)
    check("56x56x64 -> 32 1x1 filters", tuple(y1.shape[1:]), (32, 56, 56), note="course: 56x56x32")
    check("1x1 conv = per-pixel matrix product over channels (max |diff|)", float(np.abs(y1.data - by_hand).max()),
          0.0, tol=1e-4)

    heading("With bottlenecks: the cost")
    b_lines = ops(BOTTLENECK_LINES)
    table(["conv", "H*W*filters*k*k*depth", "multiply-adds"],
          [[lab, f"28*28*{k}*{f}*{f}*{d}", n] for (lab, k, f, d), n in zip(BOTTLENECK_LINES, b_lines)] +
          [["total", "", sum(b_lines)]])
    check("summary's multiply-adds = the sum of the course's six lines", sb.total_macs, sum(b_lines))
    check("sum of the six lines", sum(b_lines), 271_351_808)
    three_by_three = b_lines[3]
    say(f"""Here the course's slide and its own lines disagree: it prints "Total: 358M ops", but its six
        lines add up to {sum(b_lines):,}, about 271M. The gap between the printed 358M and the line sum,
        {(PRINTED_BOTTLENECK - sum(b_lines)) / 1e6:.2f}M, is almost exactly one more copy of the 3x3 line,
        {three_by_three:,}:
        271.35M + 86.70M = 358.06M. So the printed total seems to count the 3x3 conv twice. Either way the point stands:
        the bottlenecks cut the work to {sum(b_lines) / sum(n_lines):.0%} of the naive module (or to 42%
        by the printed numbers).""")
    check("printed 358M - line sum = one more 3x3 line", (PRINTED_BOTTLENECK - sum(b_lines)) / three_by_three, 1.0,
          tol=0.001)
    check("bottleneck depth: 128 + 192 + 96 + 64", sb.rows[-1]["output_shape"], (480, H, W))
    check("work of the bottleneck module / naive module", sb.total_macs / sn.total_macs, 0.318, tol=0.001)
    check("parameters: bottleneck / naive", sb.total_params / sn.total_params, at_most=0.35)
    table(["module", "output", "parameters", "multiply-adds"],
          [["naive", "28x28x672", sn.total_params, sn.total_macs], ["bottleneck", "28x28x480", sb.total_params,
                                                                   sb.total_macs]])
    say("""GoogLeNet stacks nine such modules (with different widths) into 22 layers, ends with global
        average pooling and a single small classifier instead of AlexNet's huge FC layers, and so needs
        only about 5M parameters, twelve times fewer than AlexNet.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        labels = [lab for lab, *_ in NAIVE_LINES]
        ax.barh(["naive: " + lab for lab in labels], np.array(n_lines) / 1e6, color="C3")
        ax.barh(["bottleneck: " + lab for lab, *_ in BOTTLENECK_LINES], np.array(b_lines) / 1e6, color="C0")
        ax.set(xlabel="multiply-adds (M)", title=f"inception on 28x28x256: {sum(n_lines) / 1e6:.0f}M vs "
                                                 f"{sum(b_lines) / 1e6:.0f}M")
        ax.tick_params(axis="y", labelsize=8)
        save_figure(opts, fig, "22_inception_ops")


if __name__ == "__main__":
    run(main)
