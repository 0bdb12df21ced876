"""Pooling: max and average, their gradients, sizes and (lack of) parameters.

A pooling layer shrinks every activation map on its own, window by window: max
pooling keeps the largest value of each window, average pooling their mean. It
learns nothing, so it has no parameters; in the backward pass max pooling hands
the whole upstream gradient to the one winner of each window, while average
pooling spreads it evenly.
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

# The single depth slice of the classic slide: 4x4 in, 2x2 windows, stride 2.
SLICE = np.array([[1, 1, 2, 4],
                  [5, 6, 7, 8],
                  [3, 2, 1, 0],
                  [1, 2, 3, 4]], dtype=np.float32)


def show(name: str, a: np.ndarray) -> None:
    print(f"    {name}:")
    for row in np.asarray(a):
        print("      " + " ".join(f"{v:6.3g}" for v in row))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("Max pooling with 2x2 windows and stride 2")
    say("""The 4x4 slice is cut into four non-overlapping 2x2 windows; each window contributes one
        number to the 2x2 output. Three quarters of the activations are dropped.""")
    x = tg.Tensor(SLICE[None, None], requires_grad=True)
    mp = F.max_pool2d(x, 2, 2)
    show("input", SLICE)
    show("max pool", mp.data[0, 0])
    check("max pool of the slide's slice", mp.data[0, 0].ravel(), np.array([6, 8, 3, 4], dtype=np.float32),
          note="slides: 6 8 / 3 4")
    xa = tg.Tensor(SLICE[None, None], requires_grad=True)
    ap = F.avg_pool2d(xa, 2, 2)
    show("average pool", ap.data[0, 0])
    expected_avg = SLICE.reshape(2, 2, 2, 2).mean(axis=(1, 3))
    check("average pool = window means", ap.data[0, 0].ravel(), expected_avg.ravel(), tol=1e-6,
          note="(1+1+5+6)/4 = 3.25, ...")

    heading("Where the gradient goes")
    say("""Send a different upstream gradient into each output cell, 1, 2, 3 and 4, and run backward.
        Max is a switch: the local derivative is 1 for the input that won and 0 for the others,
        so each upstream number lands on exactly one input pixel (the 6, the 8, the 3 and the 4).
        Average multiplies each input by 1/4, so each window's four pixels get a quarter each.""")
    upstream = np.array([[[[1, 2], [3, 4]]]], dtype=np.float32)
    mp.backward(upstream)
    ap.backward(upstream)
    show("max pool: d out / d input", x.grad[0, 0])
    show("avg pool: d out / d input", xa.grad[0, 0])
    routed = np.zeros_like(SLICE)
    routed[1, 1], routed[1, 3], routed[2, 0], routed[3, 3] = 1, 2, 3, 4
    winners = " ".join(f"({r},{c})" for r, c in np.argwhere(x.grad[0, 0] != 0))
    check("input pixels that receive gradient (row,col)", winners, "(1,1) (1,3) (2,0) (3,3)",
          note="where the 6, 8, 3 and 4 sit")
    check("the gradient each of them receives", x.grad[0, 0][x.grad[0, 0] != 0], [1.0, 2.0, 3.0, 4.0],
          note="the upstream value of its window")
    check("max |max-pool grad - routed upstream|", float(np.abs(x.grad[0, 0] - routed).max()), 0.0)
    check("inputs that lost get exactly zero gradient", int((x.grad == 0).sum()), 12)
    check("max |avg-pool grad - upstream/4 spread over each window|",
          float(np.abs(xa.grad[0, 0] - np.kron(upstream[0, 0], np.ones((2, 2))) / 4).max()), 0.0, tol=1e-7)
    check("both pass on the total upstream gradient", (float(x.grad.sum()), float(xa.grad.sum())), (10.0, 10.0))
    xr = tg.Tensor(np.random.randn(2, 3, 6, 6), dtype=np.float64, requires_grad=True)
    check("gradcheck: max pool (random input, no ties)", tg.gradcheck(lambda t: F.max_pool2d(t, 2), xr), True)
    check("gradcheck: avg pool 3x3 stride 1", tg.gradcheck(lambda t: F.avg_pool2d(t, 3, 1), xr), True)

    heading("Output sizes")
    say("""A pool of size F and stride S follows the same counting rule as a convolution without
        padding, (W - F)/S + 1, and leaves the depth alone. 2x2 at stride 2 halves width and height;
        AlexNet used overlapping 3x3 windows at stride 2.""")
    rows = []
    for (w, c, f_, s), expect in [((28, 6, 2, 2), 14), ((224, 64, 2, 2), 112), ((55, 96, 3, 2), 27),
                                 ((13, 256, 3, 2), 6), ((7, 4, 2, 2), 3)]:
        y = F.max_pool2d(tg.zeros(1, c, w, w), f_, s)
        rows.append([f"{w}x{w}x{c}", f"{f_}x{f_}", s, f"({w} - {f_})/{s} + 1",
                     f"{y.shape[2]}x{y.shape[3]}x{y.shape[1]}"])
        check(f"{w}x{w}x{c}, pool {f_}x{f_} stride {s}", (y.shape[1], y.shape[2], y.shape[3]), (c, expect, expect))
    table(["input", "pool", "stride", "formula", "output"], rows)
    say("""The last row needs a remark. The slides summarise 2x2 pooling as ceil(W/2), which for a
        7x7 map would be 4x4, while the report's formula (7 - 2)/2 + 1 = 3.5 rounds down to 3.
        The engine, like PyTorch's default (ceil_mode=False), drops the incomplete last window
        and returns 3x3; the ceil version keeps a partial window at the border. For the even sizes
        used in practice both agree.""")

    heading("No parameters")
    pools = [nn.MaxPool2d(2), nn.AvgPool2d(3, stride=2)]
    for p in pools:
        check(f"{p!r}: learned numbers", int(sum(q.data.size for q in p.parameters())), 0, note="slides: 0")
    check("AlexNet POOL1 output from 55x55x96", tuple(pools[0].__class__(3, 2)(tg.zeros(1, 96, 55, 55)).shape[1:]),
          (96, 27, 27), note="case study: 27x27x96, parameters 0")

    heading("A little invariance to shifts")
    say("""Move a bright dot by one pixel inside the same 2x2 window: the max-pooled map does not
        change at all. Moving it across a window border does change it, so the invariance is
        only to small shifts, and stacking conv + pool layers widens it.""")
    a = np.zeros((1, 1, 8, 8), np.float32)
    b = np.zeros((1, 1, 8, 8), np.float32)
    c = np.zeros((1, 1, 8, 8), np.float32)
    a[0, 0, 2, 2], b[0, 0, 3, 3], c[0, 0, 4, 4] = 1, 1, 1
    pa, pb, pc = (F.max_pool2d(tg.Tensor(t), 2).data for t in (a, b, c))
    check("dot moved within its window: same pooled map", bool(np.array_equal(pa, pb)), True)
    check("dot moved into the next window: pooled map changes", bool(np.array_equal(pb, pc)), False)

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 5, figsize=(13, 2.8))
        for ax, (name, img) in zip(axes, [("input", SLICE), ("max pool", mp.data[0, 0]), ("avg pool", ap.data[0, 0]),
                                          ("max pool grad", x.grad[0, 0]), ("avg pool grad", xa.grad[0, 0])]):
            ax.imshow(img, cmap="viridis")
            for (i, j), v in np.ndenumerate(img):
                ax.text(j, i, f"{v:.3g}", ha="center", va="center", color="w", fontsize=9)
            ax.set_title(name)
            ax.set_xticks([]), ax.set_yticks([])
        save_figure(opts, fig, "18_pooling")


if __name__ == "__main__":
    run(main)
