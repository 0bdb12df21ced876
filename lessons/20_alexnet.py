"""Case study: AlexNet, layer by layer against the course's listing.

AlexNet (Krizhevsky, Sutskever and Hinton, 2012) won ImageNet by a wide margin and
started the deep-learning era of computer vision: five conv layers and three
fully-connected layers, ReLU, dropout and heavy data augmentation. We redo the
course's questions about its first layers by hand, then let tg.models.summary
walk the library's AlexNet and compare every line with the course's listing.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn, optim
from tinygrad_cv.backends.shapes import conv_output_size

# The course's "full (simplified) AlexNet architecture": (name, output H=W or None for FC, depth, what it is)
LISTING = [
    ("CONV1", 55, 96, "96 11x11 filters at stride 4, pad 0"),
    ("MAX POOL1", 27, 96, "3x3 filters at stride 2"),
    ("NORM1", 27, 96, "normalization layer"),
    ("CONV2", 27, 256, "256 5x5 filters at stride 1, pad 2"),
    ("MAX POOL2", 13, 256, "3x3 filters at stride 2"),
    ("NORM2", 13, 256, "normalization layer"),
    ("CONV3", 13, 384, "384 3x3 filters at stride 1, pad 1"),
    ("CONV4", 13, 384, "384 3x3 filters at stride 1, pad 1"),
    ("CONV5", 13, 256, "256 3x3 filters at stride 1, pad 1"),
    ("MAX POOL3", 6, 256, "3x3 filters at stride 2"),
    ("FC6", None, 4096, "4096 neurons"),
    ("FC7", None, 4096, "4096 neurons"),
    ("FC8", None, 1000, "1000 neurons (class scores)"),
]
# where each listed layer lives in the library's (torchvision-style) AlexNet; NORM layers are left out
LAYER_OF = {"CONV1": "features.0", "MAX POOL1": "features.2", "CONV2": "features.3", "MAX POOL2": "features.5",
            "CONV3": "features.6", "CONV4": "features.8", "CONV5": "features.10", "MAX POOL3": "features.12",
            "FC6": "classifier.1", "FC7": "classifier.4", "FC8": "classifier.6"}


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("The course's questions about the first two layers")
    say("""Input: 227x227x3 images. CONV1 applies 96 filters of 11x11 at stride 4. Output size: (227 - 11)/4
        + 1 = 55, so the volume is 55x55x96. Parameters: each filter spans 11x11x3 = 363 inputs, times 96
        filters = 34,848 weights (the slides' "35K"), plus 96 biases. POOL1 (3x3, stride 2) gives
        (55 - 3)/2 + 1 = 27, so 27x27x96, and has no parameters at all.""")
    check("CONV1 output size (227 - 11)/4 + 1", conv_output_size(227, 11, 4, strict=True), 55, note="slides: 55")
    check("CONV1 weights of nn.Conv2d(3, 96, 11, stride=4)", nn.Conv2d(3, 96, 11, stride=4).weight.data.size, 34_848,
          note="(11*11*3)*96; slides: 35K")
    check("POOL1 output size (55 - 3)/2 + 1", conv_output_size(55, 3, 2, strict=True), 27, note="slides: 27")

    heading("tg.models.summary against the full listing")
    with tg.models.skip_init():            # shapes and counts only: no need to draw 62M random weights
        model = tg.models.alexnet()
    s = tg.models.summary(model, (3, 227, 227))
    rows = {r["name"]: r for r in s.rows}
    say("""The summary runs one forward pass of one all-zero image with hooks on the layers and reports,
        per layer, the output shape, the parameters, the multiply-adds and the activation values. Side by side with the
        course's listing (the NORM layers, local response normalization, are not used any more and
        are left out of the library's model; they would change neither shape nor parameter count):""")
    out = []
    for name, hw, depth, what in LISTING:
        course = f"{hw}x{hw}x{depth}" if hw else f"{depth}"
        if name not in LAYER_OF:
            out.append([name, what, course, "(left out)", "", ""])
            continue
        r = rows[LAYER_OF[name]]
        c_h_w = r["output_shape"]
        mine = f"{c_h_w[1]}x{c_h_w[2]}x{c_h_w[0]}" if len(c_h_w) == 3 else f"{c_h_w[0]}"
        out.append([name, what, course, mine, LAYER_OF[name], f"{r['params']:,}"])
        check(f"{name} output", mine, course, note="course listing")
    table(["course", "layer", "course shape", "summary shape", "library name", "params"], out)
    check("CONV1 parameters, weights + biases", rows["features.0"]["params"], 34_848 + 96, note="35K")
    check("MAX POOL1 parameters", rows["features.2"]["params"], 0, note="slides: 0!")
    pools = [r for r in s.rows if r["type"] == "MaxPool2d"]
    check("parameters of all three pools", sum(r["params"] for r in pools), 0)
    hand = {"CONV2": 5 * 5 * 96 * 256 + 256, "CONV3": 3 * 3 * 256 * 384 + 384, "CONV4": 3 * 3 * 384 * 384 + 384,
            "CONV5": 3 * 3 * 384 * 256 + 256, "FC6": 6 * 6 * 256 * 4096 + 4096, "FC7": 4096 * 4096 + 4096,
            "FC8": 4096 * 1000 + 1000}
    for name, n in hand.items():
        check(f"{name} parameters = F*F*C*K + K (or in*out + out)", rows[LAYER_OF[name]]["params"], n)

    heading("Where the parameters are, and where the work is")
    conv_rows = [r for r in s.rows if r["type"] == "Conv2d"]
    fc_rows = [r for r in s.rows if r["type"] == "Linear"]
    p_conv, p_fc = sum(r["params"] for r in conv_rows), sum(r["params"] for r in fc_rows)
    m_conv, m_fc = sum(r["macs"] for r in conv_rows), sum(r["macs"] for r in fc_rows)
    table(["", "conv layers", "FC layers", "total"],
          [["parameters", p_conv, p_fc, s.total_params], ["multiply-adds", m_conv, m_fc, s.total_macs],
           ["share of params", p_conv / s.total_params, p_fc / s.total_params, 1.0],
           ["share of multiply-adds", m_conv / s.total_macs, m_fc / s.total_macs, 1.0]], ".3g")
    check("all parameters are in conv and FC layers", p_conv + p_fc, s.total_params)
    check("share of the parameters in the three FC layers", p_fc / s.total_params, at_least=0.9)
    check("share of the multiply-adds in the five conv layers", m_conv / s.total_macs, at_least=0.9)
    say(f"""The network holds {s.total_params / 1e6:.1f}M parameters, more than nine tenths of them in FC6-FC8, yet
        more than nine tenths of the {s.total_macs / 1e9:.2f}G multiply-adds of a forward pass happen in the five conv
        layers, where every weight is reused at thousands of positions. That imbalance is what later
        designs attack: GoogLeNet drops the big FC layers altogether and ends with only about 5M
        parameters, "12x less than AlexNet".""")
    check("AlexNet parameters / GoogLeNet's 5M", s.total_params / 5e6, 12.0, rel=0.1, note="case study: 12x")
    by_hand = (227 * 227 * 3 + 55 * 55 * 96 + 27 * 27 * 96 + 27 * 27 * 256 + 13 * 13 * 256 + 2 * 13 * 13 * 384
               + 13 * 13 * 256 + 6 * 6 * 256 + 4096 + 4096 + 1000)
    check("activation values of one image's forward pass (input + every layer's output)", s.total_memory, by_hand,
          note="ReLUs work in place and are not counted twice")
    say(f"""One image's activations take {s.total_memory:,} values, {s.total_memory_bytes / 1e6:.1f} MB in float32,
        a small thing
        next to the {4 * s.total_params / 1e6:.0f} MB of weights.""")

    heading("The training recipe, in the library's terms")
    say("""The course's retrospective: first use of ReLU; dropout 0.5; heavy data augmentation; batch
        size 128; SGD with momentum 0.9; learning rate 0.01, divided by 10 by hand when the validation
        accuracy stops improving; L2 weight decay 5e-4; an ensemble of 7 CNNs took the top-5 error from
        18.2% to 15.4%. In this library that is:""")
    print("    opt = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)")
    opt = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, weight_decay=5e-4)
    w = tg.Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    probe = optim.SGD([w], lr=1e-2, momentum=0.9, weight_decay=5e-4)
    for _ in range(2):
        w.grad = np.zeros(3)              # no data gradient: only the decay acts
        probe.step()
    say("""With no gradient from the data, two steps of that optimizer on a weight of 1 show each part at
        work: weight decay gives the gradient 5e-4 w, momentum carries it into the second step
        (v = 0.9 v + g), and lr scales both: w = 1 - lr g1 - lr (0.9 g1 + g2).""")
    g1 = 5e-4
    w1 = 1 - 1e-2 * g1
    check("how much a weight of 1 lost in two pure-decay steps", 1 - float(w.numpy()[0]),
          1 - (w1 - 1e-2 * (0.9 * g1 + 5e-4 * w1)), rel=1e-6,
          note="lr 1e-2, momentum 0.9, weight decay 5e-4")
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    check("ReLU after each of the 5 conv and the 2 hidden FC layers", len(relus), 7)
    check("dropout p = 0.5 before FC6 and FC7", [getattr(d, "p", None) for d in drops], [0.5, 0.5])

    if not opts.quick:
        heading("A real forward pass")
        tg.manual_seed(0)
        real = tg.models.alexnet()
        real.eval()
        say("""In full mode we also run the real network (random weights) on one image and compare every
            feature layer's actual output shape with the summary's shape pass.""")
        with tg.no_grad():
            h = tg.randn(1, 3, 227, 227)
            agree = True
            for i, layer in enumerate(real.features):
                h = layer(h)
                agree &= tuple(h.shape[1:]) == rows[f"features.{i}"]["output_shape"]
            scores = real(tg.randn(1, 3, 227, 227))
        check("real feature maps have the summary's shapes, layer by layer", agree, True)
        check("a 227x227x3 image gives 1000 class scores", tuple(scores.shape), (1, 1000))

    plt = plots_wanted(opts)
    if plt is not None:
        names = [n for n, _, _, _ in LISTING if n in LAYER_OF]
        params = [rows[LAYER_OF[n]]["params"] for n in names]
        macs = [rows[LAYER_OF[n]]["macs"] for n in names]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
        axes[0].bar(names, np.array(params) / 1e6)
        axes[0].set(ylabel="parameters (M)", title="AlexNet: parameters per layer")
        axes[1].bar(names, np.array(macs) / 1e6, color="C1")
        axes[1].set(ylabel="multiply-adds (M)", title="AlexNet: work per layer")
        for ax in axes:
            ax.tick_params(axis="x", rotation=60, labelsize=8)
        save_figure(opts, fig, "20_alexnet_params_vs_work")


if __name__ == "__main__":
    run(main)
