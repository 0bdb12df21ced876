"""Convolution arithmetic: output sizes, parameter counts and receptive fields.

A convolutional layer is described by four numbers: how many filters (K), how big
they are (F), how far they jump (the stride S) and how much zero border is added
(the padding P). From them follow the size of the output volume, the number of
learned weights, and how much of the image one output pixel can see. We work the
course's examples by hand, then let the engine run the convolutions and compare.
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
from tinygrad_cv.backends.shapes import conv_output_size


def count_params(module: nn.Module) -> int:
    """Learned numbers in a module: the sizes of all its parameters added up."""
    return int(sum(p.data.size for p in module.parameters()))


def out_shape(n: int, c_in: int, k: int, f: int, stride: int = 1, padding: int = 0) -> tuple[int, ...]:
    """Run one real convolution of an n x n x c_in input with k random f x f filters; return (H, W, K)."""
    x = tg.randn(1, c_in, n, n)
    w = tg.randn(k, c_in, f, f)
    y = F.conv2d(x, w, stride=stride, padding=padding)
    return (y.shape[2], y.shape[3], y.shape[1])


def receptive_field(n_layers: int, size: int = 15, kernel: int = 3) -> np.ndarray:
    """|d out[center] / d input| through a stack of n_layers convs (stride 1, no padding).

    All filter weights are positive, so no contributions can cancel and every input
    pixel that can influence the chosen output pixel gets a nonzero gradient.
    """
    x = tg.Tensor(np.random.rand(1, 1, size, size).astype(np.float32), requires_grad=True)
    h = x
    for _ in range(n_layers):
        w = tg.Tensor(np.random.rand(1, 1, kernel, kernel).astype(np.float32) + 0.1)
        h = F.conv2d(h, w)
    c = h.shape[2] // 2
    h[0, 0, c, c].backward()            # one output pixel, gradient 1
    return np.abs(x.grad[0, 0])


def extent(mask: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the True entries."""
    rows, cols = np.nonzero(mask)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("Sliding a 3x3 filter over a 7x7 input")
    say("""Along one axis the filter's left edge can sit at positions 0, S, 2S, ... as long as the
        filter still ends inside the input. Counting those positions gives the course's formula
        (N - F)/S + 1. With stride 1 there are 5 positions, with stride 2 there are 3. With stride
        3 the formula gives 2.33: the last jump would leave the filter hanging over the edge, and
        the course says such a setting simply does not fit.""")
    rows = []
    for s in (1, 2):
        h, w, _ = out_shape(7, 1, 1, 3, stride=s)
        rows.append([s, f"(7 - 3)/{s} + 1", (7 - 3) / s + 1, f"{h}x{w}"])
    try:
        h3, w3, _ = out_shape(7, 1, 1, 3, stride=3)
        conv_says = f"{h3}x{w3} (floored)"
    except ValueError as e:                     # an engine that applies the course's rule refuses
        h3 = w3 = None
        conv_says, conv_error = "ValueError", str(e)
    rows.append([3, "(7 - 3)/3 + 1", (7 - 3) / 3 + 1, conv_says])
    table(["stride", "formula", "value", "F.conv2d output"], rows, ".3g")
    check("7x7 input, 3x3 filter, stride 1", out_shape(7, 1, 1, 3, stride=1)[:2], (5, 5), note="slides: 5")
    check("7x7 input, 3x3 filter, stride 2", out_shape(7, 1, 1, 3, stride=2)[:2], (3, 3), note="slides: 3")
    try:
        conv_output_size(7, 3, 3, 0, strict=True)
        message = ""
    except ValueError as e:
        message = str(e)
    say("The engine's size calculator, asked to apply the course's rule strictly, refuses:")
    print(f"    ValueError: {message}")
    check("stride 3 is rejected with the formula in the message", "does not fit" in message and "2.33" in message,
          True, note="slides: 2.33")
    if h3 is not None:
        say(f"""F.conv2d itself follows PyTorch and rounds the division down, so it quietly returns a
            {h3}x{w3} map and the last column and row of the input are never visited. That is why the
            course asks you to choose S, F and P so that the division comes out exact.""")
        check("F.conv2d at stride 3 floors like PyTorch", (h3, w3), (2, 2))
    else:
        say("F.conv2d applies the same rule and refuses to run:")
        print(f"    ValueError: {conv_error}")
        check("F.conv2d rejects stride 3 on 7x7", "does not fit" in conv_error, True)

    heading("Zero padding keeps the size")
    say("""Adding a border of P zeros on every side turns the formula into (N - F + 2P)/S + 1. With
        stride 1 and P = (F - 1)/2 the output is exactly as large as the input: pad 1 for a 3x3
        filter, 2 for 5x5, 3 for 7x7. (The report's summary prints the formula as (W1 F + 2P)/S + 1
        and the weight count as (F x D1) K: a minus sign and one factor F were lost in typesetting.
        The slides have it right: (W1 - F + 2P)/S + 1 and F*F*D1*K weights plus K biases.)""")
    rows = []
    for f_ in (3, 5, 7):
        p = (f_ - 1) // 2
        shape = out_shape(7, 1, 1, f_, stride=1, padding=p)
        rows.append([f"{f_}x{f_}", p, f"{shape[0]}x{shape[1]}"])
        check(f"7x7 input, {f_}x{f_} filter, pad {p}", shape[:2], (7, 7), note="size preserved")
    table(["filter", "pad", "output"], rows)
    sizes = [32]
    for _ in range(3):
        sizes.append(out_shape(sizes[-1], 1, 1, 5)[0])
    say(f"""Without padding every 5x5 layer eats a 2-pixel frame: a 32x32 input shrinks
        {' -> '.join(map(str, sizes))}. A deep network would run out of image after a handful of layers.""")
    check("32 -> 28 -> 24 without padding", sizes[:3], [32, 28, 24], note="slides")

    heading("The slides' example: 32x32x3 input, 10 filters of 5x5, stride 1, pad 2")
    layer = nn.Conv2d(3, 10, 5, stride=1, padding=2)
    x = tg.randn(1, 3, 32, 32)
    y = layer(x)
    shape = (y.shape[2], y.shape[3], y.shape[1])
    say(f"""Spatially (32 + 2*2 - 5)/1 + 1 = 32, and there is one output slice per filter, so the
        volume is {shape[0]}x{shape[1]}x{shape[2]}. Each filter spans the full input depth, 5*5*3 = 75 weights, plus
        one bias: 76 numbers per filter and 760 for the layer.""")
    check("output volume", shape, (32, 32, 10), note="slides: 32x32x10")
    check("weight shape (K, C, F, F)", tuple(layer.weight.shape), (10, 3, 5, 5))
    check("parameters of the layer", count_params(layer), 760, note="slides: 76 * 10 = 760")
    check("general rule F*F*C*K + K", count_params(layer), 5 * 5 * 3 * 10 + 10)
    say("""Is every output number really one dot product of a filter with a 5x5x3 input patch, plus
        the bias? Take output channel 4 at row 10, column 7 and do it with NumPy:""")
    xp = np.pad(x.data[0], ((0, 0), (2, 2), (2, 2)))
    by_hand = float((xp[:, 10:15, 7:12] * layer.weight.data[4]).sum() + layer.bias.data[4])
    check("F.conv2d output [4, 10, 7] = patch . filter + bias", float(y.data[0, 4, 10, 7]), by_hand, tol=1e-4)

    heading("Parameter sharing in AlexNet's first layer")
    say("""AlexNet's CONV1 applies 96 filters of 11x11x3 at stride 4 to a 227x227x3 image:
        (227 - 11)/4 + 1 = 55, so the output holds 55*55*96 = 290,400 neurons. If every neuron had
        its own 11*11*3 = 363 weights and a bias, the layer alone would need 290,400 * 364 numbers.
        Because all neurons of one depth slice share one filter, it needs only 96 filters.""")
    conv1 = nn.Conv2d(3, 96, 11, stride=4)
    n_out = conv_output_size(227, 11, 4, 0, strict=True)
    shared = count_params(conv1)
    with tg.no_grad():
        volume = conv1(tg.zeros(1, 3, 227, 227))                   # the real output volume
    neurons = int(volume.data.size)
    fan_in = int(conv1.weight.data[0].size)                         # one filter: 11*11*3
    table(["quantity", "value"], [["output size", f"{n_out}x{n_out}x96"], ["neurons", neurons],
                                  ["without sharing", neurons * (fan_in + 1)],
                                  ["with sharing: weights", conv1.weight.data.size],
                                  ["with sharing: weights + biases", shared]])
    check("CONV1 output size", n_out, 55, note="report: (227 - 11)/4 + 1 = 55")
    check("output volume of a forward pass", tuple(volume.shape[1:]), (96, 55, 55))
    check("neurons in CONV1 (elements of that volume)", neurons, 290_400, note="report")
    check("parameters without sharing: neurons * (one filter's weights + 1)", neurons * (fan_in + 1), 105_705_600,
          note="report")
    check("shared weights", conv1.weight.data.size, 34_848, note="report")
    check("shared weights + biases", shared, 34_944, note="report; the slides round it to 35K")

    heading("Receptive field of stacked 3x3 convolutions")
    say("""One output pixel of a 3x3 conv looks at a 3x3 patch. Put a second 3x3 conv on top: each of
        its inputs already saw 3x3, and neighbouring ones overlap, so together they cover 5x5.
        A third layer reaches 7x7, the same as a single 7x7 filter. To see it, we backpropagate
        from the centre pixel of the last layer and count the input pixels whose gradient is not
        zero: exactly those can change that output.""")
    fields = {n: receptive_field(n) for n in (1, 2, 3)}
    rows = []
    for n, g in fields.items():
        hh, ww = extent(g > 0)
        rows.append([n, f"{hh}x{ww}", int((g > 0).sum()), f"{2 * n + 1}x{2 * n + 1}"])
        check(f"{n} stacked 3x3 conv(s): input pixels with nonzero gradient", int((g > 0).sum()), (2 * n + 1) ** 2,
              note=f"a {2 * n + 1}x{2 * n + 1} square")
        check(f"{n} stacked 3x3 conv(s): bounding box", (hh, ww), (2 * n + 1, 2 * n + 1))
    table(["layers", "field", "nonzero grads", "theory 2n+1"], rows)
    g7 = receptive_field(1, kernel=7)
    check("one 7x7 conv sees the same 7x7 square", extent(g7 > 0), (7, 7))
    say("""The gradient is not flat over the field: the centre pixel is reached along many more paths
        than the corner pixels, so it counts more (the 'effective' receptive field is peaked).""")
    check("centre pixel outweighs a corner pixel (3 layers)", bool(fields[3][7, 7] > fields[3][4, 4]), True)

    heading("Why VGG prefers three 3x3 layers to one 7x7 layer")
    C = 64
    three = nn.Sequential(*[nn.Conv2d(C, C, 3, padding=1, bias=False) for _ in range(3)])
    one = nn.Conv2d(C, C, 7, padding=3, bias=False)
    p3, p1 = count_params(three), count_params(one)
    say(f"""With C = {C} channels in and out, and leaving biases aside, three 3x3 layers hold
        3 * (3*3*C*C) = 27 C^2 = {p3:,} weights, one 7x7 layer 49 C^2 = {p1:,}. Same field of view,
        about 45% fewer weights, and two extra non-linearities in between when ReLUs are added.""")
    check("three 3x3 convs: 27 C^2", p3, 27 * C * C, note="case study: 3 * (3^2 C^2)")
    check("one 7x7 conv: 49 C^2", p1, 49 * C * C, note="case study: 7^2 C^2")
    xs = tg.randn(1, C, 9, 9)
    check("both keep a 9x9 map with padding", f"{tuple(three(xs).shape)} and {tuple(one(xs).shape)}",
          f"{(1, C, 9, 9)} and {(1, C, 9, 9)}")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 4, figsize=(11, 3))
        for ax, (name, g) in zip(axes, [("1 x 3x3", fields[1]), ("2 x 3x3", fields[2]), ("3 x 3x3", fields[3]),
                                        ("1 x 7x7", g7)]):
            ax.imshow(g, cmap="magma")
            ax.set_title(f"{name}: {extent(g > 0)[0]}x{extent(g > 0)[1]}")
            ax.set_xticks([]), ax.set_yticks([])
        fig.suptitle("|d output centre / d input|: the receptive field")
        save_figure(opts, fig, "17_receptive_field")


if __name__ == "__main__":
    run(main)
