"""Later architectures: Wide ResNet, DenseNet and depthwise-separable convolutions.

Three ideas that came after ResNet, each measured on the zoo's real models with
tg.models.summary and forward hooks. Wide ResNets spend their parameters on width
instead of depth; DenseNets concatenate every earlier feature map instead of adding
one shortcut, so each layer only has to add a few new maps; MobileNet splits a 3x3
convolution into a per-channel 3x3 filter and a 1x1 channel mixer, which costs
roughly 1/N + 1/9 of the original.
"""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn
from tinygrad_cv.models import DenseLayer, densenet121, mobilenet_v1, resnet50, skip_init, summary, wide_resnet
from tinygrad_cv.models.mobilenet import BLOCKS


def n_params(model: nn.Module) -> int:
    return sum(p.size for p in model.parameters())


def densenet_params_by_hand(k: int = 32, blocks: tuple[int, ...] = (6, 12, 24, 16), c0: int = 64,
                            bn_size: int = 4, classes: int = 1000) -> int:
    """DenseNet-BC counted layer by layer: stem conv + BN, bottleneck layers, transitions, norm5, classifier."""
    total, c = 3 * 7 * 7 * c0 + 2 * c0, c0
    for b, n in enumerate(blocks):
        for i in range(n):
            cin = c + i * k
            total += 2 * cin + cin * bn_size * k + 2 * bn_size * k + 9 * bn_size * k * k
        c += n * k
        if b != len(blocks) - 1:
            total += 2 * c + c * (c // 2)
            c //= 2
    return total + 2 * c + c * classes + classes


def standard_mobilenet() -> nn.Sequential:
    """MobileNet's body with every depthwise-separable block replaced by one full 3x3 conv (+ BN, ReLU):
    the paper's "Conv MobileNet" of Table 4."""
    layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
    c = 32
    for out, stride in BLOCKS:
        layers += [nn.Conv2d(c, out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1000))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    # -- 1. width against depth ------------------------------------------------------------------------
    heading("Wide ResNet: the same parameters in 16 layers or in hundreds")
    wide, thin = ((16, 4), (172, 1)) if opts.quick else ((16, 8), (682, 1))
    say(f"""Zagoruyko and Komodakis argue that the residual connection, not extreme depth, is what makes
        ResNets work, and that widening each block (k times the filters: 16k, 32k, 64k in the three
        groups) is a better way to spend parameters. We build WRN-{wide[0]}-{wide[1]} and a thin
        pre-activation ResNet of the same family, WRN-{thin[0]}-1, chosen so that the two have about
        the same number of parameters, and let the summary count both on a 32x32 CIFAR image. "Layers
        in sequence" counts the 3x3 convs and the classifier, the layers an input passes through one
        after another (the paper's depth d = 6N + 4 also counts shortcut convs).""")
    with skip_init():
        nets = {f"WRN-{d}-{k}": wide_resnet(d, k) for d, k in (wide, thin)}
    sums = {name: summary(m, (3, 32, 32)) for name, m in nets.items()}
    rows = []
    for (name, s), (d, k) in zip(sums.items(), (wide, thin)):
        convs = [r for r in s.rows if r["type"] == "Conv2d" and not r["name"].endswith("shortcut")]
        rows.append([name, len(convs) + 1, s.total_params, s.total_macs / 1e6, s.total_params / (len(convs) + 1)])
    table(["model", "layers in sequence", "parameters", "MMACs", "parameters per layer"], rows, ".4g")
    layer_rows = rows
    w, t = sums[f"WRN-{wide[0]}-{wide[1]}"], sums[f"WRN-{thin[0]}-1"]
    check("parameters of the thin net / the wide net", t.total_params / w.total_params, 1.0, rel=0.02)
    check("multiply-adds of the thin net / the wide net", t.total_macs / w.total_macs, 1.0, rel=0.05,
          note="a 3x3 conv at H x W costs H*W MACs per weight, thin or wide")
    check("layers the thin net runs one after another, per layer of the wide net", rows[1][1] / rows[0][1],
          at_least=10)
    kw = wide[1]
    with skip_init():
        p_wrn28 = n_params(wide_resnet(28, 10))
    block = next(r for r in w.rows if r["name"] == "block1.1.conv2")
    check("a wide 3x3 conv in group 1: parameters = 3*3*16k*16k", block["params"], 9 * (16 * kw) ** 2)
    check("... and its multiply-adds = 32*32 per parameter", block["macs"], 32 * 32 * block["params"])
    say(f"""Same parameters, same arithmetic; what differs is its shape. The thin net is a chain of
        {rows[1][1]} small convolutions that must run one after another, each too small to keep a
        GPU busy; the wide one does the same multiply-adds as {rows[0][1]} big matrix products that
        parallelise well. That is the course's point: a wide 16-layer network matches a
        1000-layer thin one (the paper's ResNet-1001, 10.2M parameters, against WRN-16-8, 11.0M)
        and trains several times faster. Widening also multiplies the parameters by k^2: the zoo's
        wrn28_10 has {p_wrn28:,} (the paper's 36.5M).""")

    # -- 2. DenseNet: concatenation and feature reuse ---------------------------------------------------
    heading("DenseNet: every layer sees all the maps before it")
    say("""In a dense block, layer l receives the concatenation of the block's input and the outputs of
        all l earlier layers, and contributes k new maps (the growth rate, 32 in DenseNet-121). We put a
        forward hook on every dense layer of DenseNet-121, run one 64x64 image, and record how many
        channels each layer reads and writes.""")
    with skip_init():
        dnet = densenet121()
    seen: list[tuple[str, int, int]] = []
    handles = [m.register_forward_hook(lambda mod, inputs, out, name=name: seen.append(
        (name, inputs[0].shape[1], out.shape[1]))) for name, m in dnet.named_modules() if isinstance(m, DenseLayer)]
    dnet.eval()
    with tg.no_grad():
        dnet(tg.zeros(1, 3, 64, 64))
    for h in handles:
        h.remove()
    k, expected, c0 = dnet.growth_rate, [], 64
    for n in (6, 12, 24, 16):
        expected += [c0 + i * k for i in range(n)]
        c0 = (c0 + n * k) // 2
    block1 = [r for r in seen if r[0].startswith("features.denseblock1.")]
    table(["dense layer", "channels in", "channels out"], [[n.split(".", 1)[1], i, o] for n, i, o in block1])
    check("dense layers that ran (6 + 12 + 24 + 16)", len(seen), 58)
    check("channels into every layer = c0 + l*k (all 58 layers)", [i for _, i, _ in seen], expected)
    check("every layer adds exactly k = 32 maps", {o for *_, o in seen}, {32})
    last = [r for r in seen if r[0].startswith("features.denseblock3.")][-1]
    say(f"""Inside a block the channel count climbs by 32 per layer; a transition then halves it
        (compression 0.5) and the spatial size. The last layer of block 3 reads {last[1]} channels,
        computed by every layer before it, and writes only {last[2]}: features are reused, not
        re-learned, which is why each layer can be so narrow.""")
    with skip_init():
        r50 = resnet50()
    p_dense, p_res = n_params(dnet), n_params(r50)
    check("DenseNet-121 parameters (torchvision)", p_dense, 7_978_856)
    check("... = the count by hand, layer by layer", p_dense, densenet_params_by_hand())
    check("ResNet-50 parameters (torchvision)", p_res, 25_557_032)
    rows = [["DenseNet-121", p_dense], ["ResNet-50", p_res]]
    if not opts.quick:                   # one forward pass of each at 224x224 (a few seconds)
        rows[0].append(summary(dnet, (3, 224, 224)).total_macs / 1e9)
        rows[1].append(summary(r50, (3, 224, 224)).total_macs / 1e9)
    table(["model", "parameters"] + ([] if opts.quick else ["GMACs at 224"]), rows, ".3g")
    check("DenseNet-121 / ResNet-50 parameters", p_dense / p_res, at_most=1 / 3 + 0.001)
    say("""DenseNet-121 has under a third of ResNet-50's parameters; the DenseNet paper reports ImageNet
        accuracy comparable to ResNets with far more parameters. The price is memory and bandwidth: the
        growing concatenations are read again and again by every later layer.""")

    # -- 3. depthwise-separable convolution -------------------------------------------------------------
    heading("Depthwise-separable convolution: the cost arithmetic, checked by the summary")
    say("""A standard D_K x D_K conv from M to N channels on a D_F x D_F output costs
        D_K*D_K*M*N*D_F*D_F multiply-adds. MobileNet splits it in two: a depthwise conv (one D_K x D_K
        filter per input channel, groups = M) costing D_K*D_K*M*D_F*D_F, and a pointwise 1x1 conv
        mixing the channels, M*N*D_F*D_F. The ratio of the two costs is
        (D_K^2 M + M N) / (D_K^2 M N) = 1/N + 1/D_K^2. We read the real layers' multiply-adds from
        the summary of MobileNet v1 and of a copy of it with full 3x3 convs instead.""")
    with skip_init():
        mob, std = mobilenet_v1(), standard_mobilenet()
    s_mob, s_std = summary(mob, (3, 224, 224)), summary(std, (3, 224, 224))
    by_name = {r["name"]: r for r in s_mob.rows}
    std_convs = [r for r in s_std.rows if r["type"] == "Conv2d"][1:]
    rows, per_block, m = [], [], 32
    for i, ((n, _), sc) in enumerate(zip(BLOCKS, std_convs), start=1):
        dw, pw = by_name[f"features.{i}.depthwise"], by_name[f"features.{i}.pointwise"]
        df = dw["output_shape"][1]
        formula_sep = 3 * 3 * m * df * df + m * n * df * df
        formula_std = 3 * 3 * m * n * df * df
        ratio = Fraction(dw["macs"] + pw["macs"], sc["macs"])
        rows.append([i, m, n, df, sc["macs"] / 1e6, (dw["macs"] + pw["macs"]) / 1e6, float(ratio)])
        per_block.append((sc["macs"], dw["macs"] + pw["macs"], formula_std, formula_sep, ratio == Fraction(1, n) + Fraction(1, 9)))
        m = n
    table(["block", "M", "N", "D_F", "standard MMACs", "separable MMACs", "ratio = 1/N + 1/9"], rows, ".4g")
    check("summary's standard-conv MACs = D_K^2 M N D_F^2, blocks 1-13", [b[0] for b in per_block],
          [b[2] for b in per_block])
    check("summary's depthwise + pointwise MACs = D_K^2 M D_F^2 + M N D_F^2, blocks 1-13",
          [b[1] for b in per_block], [b[3] for b in per_block])
    check("blocks whose separable / standard ratio is exactly 1/N + 1/D_K^2", sum(b[4] for b in per_block), 13)
    check("1.0 MobileNet-224 multiply-adds (millions)", s_mob.total_macs / 1e6, 569, tol=0.5, note="paper: 569M")
    check("1.0 MobileNet-224 parameters (millions)", s_mob.total_params / 1e6, 4.2, tol=0.05, note="paper: 4.2M")
    check("with full convs: multiply-adds (millions)", s_std.total_macs / 1e6, 4866, rel=0.001,
          note="paper's Conv MobileNet: 4866M")
    check("with full convs: parameters (millions)", s_std.total_params / 1e6, 29.3, tol=0.05, note="paper: 29.3M")
    check("whole network: standard / separable multiply-adds", s_std.total_macs / s_mob.total_macs, at_least=8)
    say(f"""With 3x3 kernels and N between 64 and 1024 the ratio is 1/N + 1/9, so the separable block
        costs 8 to 9 times less; over the whole network {s_std.total_macs / 1e6:,.0f}M multiply-adds become
        {s_mob.total_macs / 1e6:,.0f}M and {s_std.total_params / 1e6:.1f}M parameters become
        {s_mob.total_params / 1e6:.1f}M. The paper pays about one point of ImageNet accuracy for it.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        ax = axes[0]
        names, lay = list(sums), [r[1] for r in layer_rows]
        ax.bar(names, [sums[n].total_params / 1e6 for n in names], color=["tab:blue", "tab:gray"])
        for j, n in enumerate(names):
            ax.text(j, sums[n].total_params / 2e6, f"{lay[j]} layers\n{sums[n].total_macs / 1e9:.2f} GMACs",
                    ha="center", color="white", weight="bold")
        ax.set(ylabel="parameters (millions)", title="wide versus thin: same parameters and MACs")
        ax = axes[1]
        ax.step(range(1, len(seen) + 1), [i for _, i, _ in seen], where="mid", label="channels into the layer")
        ax.plot(range(1, len(seen) + 1), [o for *_, o in seen], "k--", label="channels out (k = 32)")
        ax.set(xlabel="dense layer (blocks of 6, 12, 24, 16)", ylabel="channels",
               title="DenseNet-121: each layer reads all maps before it")
        ax.legend()
        ax = axes[2]
        xs = range(1, len(per_block) + 1)
        ax.bar([x - 0.2 for x in xs], [b[0] / 1e6 for b in per_block], 0.4, label="standard 3x3 conv")
        ax.bar([x + 0.2 for x in xs], [b[1] / 1e6 for b in per_block], 0.4, label="depthwise + pointwise")
        ax.set(yscale="log", xlabel="MobileNet block", ylabel="multiply-adds (millions)", xticks=list(xs),
               title="depthwise-separable: ~1/N + 1/9 of the cost", ylim=(10, 5000))
        ax.legend(loc="upper center", ncol=2, fontsize=8)
        save_figure(opts, fig, "31_later_architectures")


if __name__ == "__main__":
    run(main)
