"""Case study: VGG16, its memory and parameters line by line.

VGG (Simonyan and Zisserman, 2014) asked what happens if a network uses nothing but
3x3 convolutions at stride 1 with padding 1 and 2x2 max pools at stride 2, and
simply goes deeper: 16 or 19 weight layers instead of AlexNet's 8. The course
tallies VGG16's activation memory and parameters layer by layer; we check every
line of that table against tg.models.summary and add the totals up ourselves.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table

# The course's VGG16 table: (line, H, W, C, memory as printed, weights as printed: "not counting biases")
COURSE = [
    ("CONV3-64", 224, 224, 64, "3.2M", "1,728"),
    ("CONV3-64", 224, 224, 64, "3.2M", "36,864"),
    ("POOL2", 112, 112, 64, "800K", "0"),
    ("CONV3-128", 112, 112, 128, "1.6M", "73,728"),
    ("CONV3-128", 112, 112, 128, "1.6M", "147,456"),
    ("POOL2", 56, 56, 128, "400K", "0"),
    ("CONV3-256", 56, 56, 256, "800K", "294,912"),
    ("CONV3-256", 56, 56, 256, "800K", "589,824"),
    ("CONV3-256", 56, 56, 256, "800K", "589,824"),
    ("POOL2", 28, 28, 256, "200K", "0"),
    ("CONV3-512", 28, 28, 512, "400K", "1,179,648"),
    ("CONV3-512", 28, 28, 512, "400K", "2,359,296"),
    ("CONV3-512", 28, 28, 512, "400K", "2,359,296"),
    ("POOL2", 14, 14, 512, "100K", "0"),
    ("CONV3-512", 14, 14, 512, "100K", "2,359,296"),
    ("CONV3-512", 14, 14, 512, "100K", "2,359,296"),
    ("CONV3-512", 14, 14, 512, "100K", "2,359,296"),
    ("POOL2", 7, 7, 512, "25K", "0"),
    ("FC", 1, 1, 4096, "4096", "102,760,448"),
    ("FC", 1, 1, 4096, "4096", "16,777,216"),
    ("FC", 1, 1, 1000, "1000", "4,096,000"),
]
INPUT_MEMORY_PRINTED = "150K"          # INPUT: [224x224x3]
PRINTED_TOTAL_MEMORY = 24e6            # "TOTAL memory: 24M * 4 bytes ~= 96MB / image"
PRINTED_TOTAL_PARAMS = 138e6           # "TOTAL params: 138M parameters"


def printed(text: str) -> float:
    """'3.2M' -> 3.2e6, '800K' -> 8e5, '1,728' -> 1728."""
    text = text.replace(",", "")
    scale = {"K": 1e3, "M": 1e6}.get(text[-1], 1.0)
    return float(text.rstrip("KM")) * scale


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    with tg.models.skip_init():            # shapes and counts only: no need to draw 138M random weights
        vgg16, vgg19 = tg.models.vgg16(), tg.models.vgg19()
    s = tg.models.summary(vgg16, (3, 224, 224))
    layers = [r for r in s.rows if r["type"] in ("Conv2d", "MaxPool2d", "Linear")]

    heading("The course's table, line by line")
    say("""For every layer the course gives the output volume, its size in activation values ("memory",
        224*224*64 = 3.2M for the first conv) and its weights, biases left out ((3*3*3)*64 = 1,728 for the
        first conv). The summary gives exact values; its parameter column includes the biases, so we
        subtract one bias per output channel (or neuron) before comparing.""")
    check("the table and the model have the same layers", len(layers), len(COURSE))
    rows, mem_ok, w_ok = [], True, True
    for (name, h, w, c, mem_txt, w_txt), r in zip(COURSE, layers):
        shape = r["output_shape"]
        out_c = shape[0]
        weights = r["params"] - (out_c if r["params"] else 0)
        exact_mem = h * w * c
        mem_ok &= r["memory"] == exact_mem and shape[-1] == (w if len(shape) == 3 else c)
        w_ok &= weights == printed(w_txt)
        rows.append([name, f"{h}x{w}x{c}", mem_txt, r["memory"], w_txt, weights, r["name"]])
    table(["course", "volume", "memory (course)", "memory (summary)", "weights (course)", "weights (summary)",
           "layer"], rows)
    check("every line's memory = H*W*C of the summary's output", mem_ok, True)
    check("every line's weight count matches exactly", w_ok, True)
    rounding = max(abs(printed(m) - h * w * c) / (h * w * c) for _, h, w, c, m, _ in COURSE)
    check("the printed memory figures are roundings of H*W*C (worst relative error)", rounding, at_most=0.05)
    check("INPUT memory 224*224*3", s.input_memory, 150_528, note=f"course: {INPUT_MEMORY_PRINTED}")

    heading("The totals")
    weights_sum = sum(printed(w_txt) for *_, w_txt in COURSE)
    say(f"""Parameters. The course's weights add up to {weights_sum:,.0f}; the {sum(r['output_shape'][0]
        for r in layers if r['params']):,} biases bring the model to {s.total_params:,}. Both round to the
        course's 138M.""")
    check("sum of the course's weight lines", weights_sum, PRINTED_TOTAL_PARAMS, rel=0.005, note="course: 138M")
    check("summary total parameters, biases included", s.total_params, 138_357_544)
    line_sum = s.input_memory + sum(h * w * c for _, h, w, c, _, _ in COURSE)
    printed_sum = printed(INPUT_MEMORY_PRINTED) + sum(printed(m) for *_, m, _ in COURSE)
    everything = s.input_memory + sum(r["memory"] for r in s.rows)
    say(f"""Memory. Here the course disagrees with itself. Adding up its own lines (the input and every
        layer's output) gives {line_sum:,} values exactly, or {printed_sum / 1e6:.1f}M with the printed roundings: about
        {line_sum / 1e6:.1f}M values, {4 * line_sum / 1e6:.0f} MB in float32. The table's last line prints
        "24M * 4 bytes ~= 96MB".
        The summary counts the way the table's lines do and agrees with the line sum, not with the
        printed 24M. Nor does a more generous count explain 24M: if every ReLU also stored a copy of its
        output, the total would be {everything / 1e6:.1f}M. Take the total from the lines (about 15M values,
        ~61 MB per image for the forward pass, roughly twice that when the backward pass keeps its
        gradients) and treat "24M" as a slip in the table.""")
    check("summary total memory = sum of the course's own lines", s.total_memory, line_sum)
    check("sum of the printed (rounded) memory figures, in millions", printed_sum / 1e6, line_sum / 1e6, rel=0.01)
    check("the printed total disagrees with its lines by (ratio)", PRINTED_TOTAL_MEMORY / line_sum, 1.575, tol=0.01,
          note="24M / 15.24M")
    check("bytes per image, forward only, MB", s.total_memory_bytes / 1e6, 60.95, tol=0.01)

    heading("Most memory early, most parameters late")
    convs = [r for r in s.rows if r["type"] == "Conv2d"]
    fcs = [r for r in s.rows if r["type"] == "Linear"]
    early = convs[0]["memory"] + convs[1]["memory"]
    p_fc = sum(r["params"] for r in fcs)
    table(["", "value", "share of total"],
          [["memory of the first two convs", early, early / s.total_memory],
           ["parameters of the three FC layers", p_fc, p_fc / s.total_params],
           ["parameters of the first FC layer alone", fcs[0]["params"], fcs[0]["params"] / s.total_params]], ".3g")
    check("the first two conv layers hold over 40% of the activations", early / s.total_memory, at_least=0.4)
    check("the FC layers hold over 85% of the parameters", p_fc / s.total_params, at_least=0.85)
    say("""Early layers work at full resolution, so their outputs are big, but each has few filters; the
        first FC layer connects all 7*7*512 = 25,088 values of the last pool to 4096 neurons, 102.8M
        weights on its own. (Later networks replace it with global average pooling.)""")

    heading("Why 3x3? Three small layers versus one big one")
    c = 512
    per_3x3 = 3 * 3 * c * c
    check("one CONV3-512 layer's weights (from the table)", printed(COURSE[-5][5]), per_3x3)
    with tg.models.skip_init():                 # counts only: no need to draw 20M random weights
        three = tg.nn.Sequential(*[tg.nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
        one = tg.nn.Conv2d(c, c, 7, padding=3, bias=False)
    n_three, n_one = (sum(p.data.size for p in m.parameters()) for m in (three, one))
    check("three 3x3 layers vs one 7x7 layer, C = 512: weight ratio", n_three / n_one, 27 / 49, tol=1e-12,
          note="3 (3^2 C^2) / (7^2 C^2)")
    say(f"""Three stacked 3x3 layers see a 7x7 patch (lesson 17 measures it by backpropagation) with
        3*3^2*C^2 = {3 * per_3x3:,} weights at C = 512, against {7 * 7 * c * c:,} for one 7x7 layer, and with
        three ReLUs instead of one.""")

    heading("VGG19: a little deeper")
    s19 = tg.models.summary(vgg19, (3, 224, 224))
    n_conv16, n_conv19 = len(convs), sum(r["type"] == "Conv2d" for r in s19.rows)
    table(["model", "weight layers", "parameters", "multiply-adds", "activation values"],
          [["VGG16", n_conv16 + len(fcs), s.total_params, s.total_macs, s.total_memory],
           ["VGG19", n_conv19 + 3, s19.total_params, s19.total_macs, s19.total_memory]], ".4g")
    check("VGG16 has 16 weight layers", n_conv16 + len(fcs), 16)
    check("VGG19 has 19 weight layers", n_conv19 + 3, 19)
    check("VGG19's extra parameters: one more CONV3-256 and two more CONV3-512", s19.total_params - s.total_params,
          256 * 256 * 9 + 256 + 2 * (512 * 512 * 9 + 512))
    check("VGG19 needs more memory", s19.total_memory, at_least=s.total_memory + 1)
    say("""The course's verdict: VGG19 is only slightly better than VGG16 and costs more memory and
        compute; VGG16 is the one people use, and its FC7 features carry over well to other tasks.""")

    plt = plots_wanted(opts)
    if plt is not None:
        names = [f"{i}:{n}" for i, (n, *_) in enumerate(COURSE)]
        fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
        axes[0].bar(names, [r["memory"] / 1e6 for r in layers], color="C0")
        axes[0].set(ylabel="activations (M values)", title="VGG16: memory per layer (top), weights per layer (bottom)")
        axes[1].bar(names, [r["params"] / 1e6 for r in layers], color="C3")
        axes[1].set(ylabel="parameters (M)")
        axes[1].tick_params(axis="x", rotation=75, labelsize=7)
        save_figure(opts, fig, "21_vgg16_memory_params")


if __name__ == "__main__":
    run(main)
