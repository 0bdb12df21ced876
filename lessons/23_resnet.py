"""Case study: ResNet and the identity shortcut.

Stacking more layers on a plain network eventually makes it worse, even on its
training data: the deeper model is harder to optimise, although it could in
principle copy a shallower one and make its extra layers the identity. ResNet (He
et al., 2015) makes that easy: every block outputs x + F(x), so it only has to
learn the residual F, and the gradient gets a direct path back through the '+'.
We measure that path with backward, then compare ResNet-18/34/50 with
tg.models.summary.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, heading, plots_wanted, pyplot, run, save_figure, say, start, table
from tinygrad_cv import nn
from tinygrad_cv.models import BasicBlock, Bottleneck
from tinygrad_cv.models.deep import deep_cnn
from viz.flow import input_batch, measure


def first_layer_grads(depth: int, width: int, residual: bool, seed: int = 0) -> list[float]:
    """Gradient norm of every layer's weight after one backward pass, first layer first.

    Plain: h <- relu(W h). Residual: h <- h + relu(W h). Same layers, same init (PyTorch's
    default Linear init), same data; the only difference is the '+ h'.
    """
    tg.manual_seed(seed)
    layers = [nn.Linear(width, width) for _ in range(depth)]
    h = tg.Tensor(np.random.default_rng(seed).standard_normal((32, width)).astype(np.float32))
    for layer in layers:
        out = F.relu(layer(h))
        h = h + out if residual else out
    probe = tg.Tensor(np.random.default_rng(seed + 1).standard_normal(h.shape).astype(np.float32))
    (h * probe).sum().backward()       # a linear read-out: the same upstream gradient for both stacks
    return [float(np.linalg.norm(layer.weight.grad)) for layer in layers]


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("The gradient through a deep plain stack and a deep residual stack")
    depth, width = (30, 64) if opts.quick else (50, 128)
    say(f"""Two stacks of {depth} fully-connected ReLU layers, {width} units wide, with PyTorch's default
        initialization, fed the same batch. One is plain, h <- relu(W h); the other adds the input back,
        h <- h + relu(W h). We backpropagate one loss and look at the gradient each layer's weights get.""")
    plain = first_layer_grads(depth, width, residual=False)
    resid = first_layer_grads(depth, width, residual=True)
    show = sorted({0, 1, depth // 4, depth // 2, 3 * depth // 4, depth - 1})
    table(["layer", "plain |dL/dW|", "residual |dL/dW|"], [[i + 1, plain[i], resid[i]] for i in show], ".3g")
    check("plain: the first layer gets far less gradient than the last (ratio)", plain[0] / plain[-1], at_most=1e-3)
    check("residual: first layer's gradient within 100x of the last layer's", resid[0] / resid[-1], at_least=1e-2)
    check("first layer: residual gradient / plain gradient", resid[0] / plain[0], at_least=1e3)
    say("""In the plain stack every layer multiplies the backward signal by its local Jacobian, and with
        this initialization each one shrinks it, so after a few dozen layers almost nothing reaches the
        first layer: it barely learns. In the residual stack each block's Jacobian is I + dF/dh; the
        identity part carries the upstream gradient back unchanged, whatever the weights do.

        (The residual column's numbers are large because, without normalization, each block adds to
        h and the activations grow with depth; real ResNets put BatchNorm in every branch. What
        matters is the comparison down each column: the plain stack loses many orders of magnitude
        between its last and its first layer, the residual stack hardly anything.)""")

    heading("The same comparison on digits, with a fair initialization (tgcv flow cnn --compare)")
    say("""The stacks above start from PyTorch's default Linear init, which is smaller than He's, so part
        of the plain stack's loss is just bad scaling. Here both nets get He init (std sqrt(2/fan_in),
        right for ReLU): a stem conv, 20 3x3 convs of 16 channels in two-conv blocks, average pooling and
        an FC layer, on one batch of 32 shipped digits; the residual net adds each block's input back
        before its last ReLU (`tgcv flow cnn --depth 20 --compare plain,residual`).""")
    xd, yd = input_batch((1, 28, 28), 32)
    flows = {}
    for convs, bn in ((20, False), (56, True)):
        for residual in (False, True):
            tg.manual_seed(0)
            flows[convs, bn, residual] = measure(deep_cnn(convs, 16, residual, bn), xd, yd)[0]
    plain20, resid20 = flows[20, False, False], flows[20, False, True]
    table(["net", "layer-1 rho", "last-layer rho", "layer-1 mean|dL/dout|", "verdicts"],
          [[name, rows[0]["ratio"], rows[-1]["ratio"], rows[0]["out_grad"],
            ", ".join(f"{sum(r['status'] == s for r in rows)} {s}" for s in ("healthy", "exploding", "vanishing")
                      if any(r["status"] == s for r in rows))]
           for name, rows in (("plain, 20 convs", plain20), ("residual, 20 convs", resid20))], ".3g")
    check("He init, plain: no layer vanishes", [r["status"] for r in plain20].count("vanishing"), 0)
    check("first layer: residual |dL/dW| / plain |dL/dW|", resid20[0]["mean_grad"] / plain20[0]["mean_grad"],
          at_least=10.0)
    check("first layer: residual rho / plain rho", resid20[0]["ratio"] / plain20[0]["ratio"], at_least=10.0)
    say("""He init does its job for the plain net: nothing vanishes, every layer is in the healthy band. What
        the shortcut changes is the path: in the plain net the gradient reaching layer 1 has gone through
        every layer's Jacobian, one product; in the residual net each block passes I + dF/dh, so the
        upstream gradient arrives unchanged through the identities and every branch adds its share on
        top. The first layer gets hundreds of times more. Without normalization those shares only add
        up: the activations grow block after block (the loss starts far above log 10) and the late
        layers are flagged exploding. Real ResNets put batch norm inside each branch.""")
    plain56, resid56 = flows[56, True, False], flows[56, True, True]
    check("56 convs with batch norm, plain: layer-1 rho", plain56[0]["ratio"], at_least=10.0,
          note="exploding: the gradient grows towards the input")
    check("56 convs with batch norm, residual: largest rho over all layers", max(r["ratio"] for r in resid56),
          at_most=10.0, note="every layer healthy")
    say("""With batch norm in every block (as in the ResNet paper) the plain net's forward signal is fine,
        yet at 56 convs its backward signal grows layer by layer towards the input until the first
        layers are far outside the healthy band, while the residual net stays healthy end to end: the
        identity path keeps every layer's gradient on the same scale as the loss's. Either way the
        plain deep net is the harder one to optimise, at an initialization that is fair to both.""")
    if opts.out is not None and pyplot() is not None:
        from viz.flowsheet import sheet

        made = sheet([("plain, 20 convs", plain20), ("residual, 20 convs", resid20)],
                     opts.out / "23_flow_plain_vs_residual.png", title="He init, one batch of digits")
        print(f"  figure: {made.path}")

    heading("A block that starts as the identity")
    say("""Set the scale (gamma) of a BasicBlock's last BatchNorm to zero and the residual branch
        outputs nothing: the block computes relu(0 + x) = x for a non-negative input, exactly the
        identity the course asks a deeper network to be able to learn. Its gradient is then exactly the
        upstream gradient: the '+' hands it on unchanged and the zeroed branch adds nothing.""")
    block = BasicBlock(16, 16)
    block.bn2.weight.data[...] = 0.0
    x = tg.Tensor(np.abs(np.random.default_rng(1).standard_normal((2, 16, 8, 8))).astype(np.float32),
                  requires_grad=True)
    y = block(x)
    upstream = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    y.backward(upstream)
    check("block output = input (max |y - x|)", float(np.abs(y.data - x.data).max()), 0.0, tol=1e-6)
    check("dL/dx = upstream gradient (max |diff|)", float(np.abs(x.grad - upstream).max()), 0.0, tol=1e-6)
    check("yet the branch's weights still get gradient, so it can start learning",
          float(np.linalg.norm(block.bn2.weight.grad)), at_least=1e-6)
    say("""A plain conv layer can only be the identity if its filters spell out the identity exactly;
        a residual block gets there by driving its weights to zero, which weight decay and a small
        initialization push it towards anyway. (Initializing that gamma to zero is a known trick for
        training very deep ResNets.)""")

    heading("The ResNet architecture")
    with tg.models.skip_init():
        nets = {"ResNet-18": tg.models.resnet18(), "ResNet-34": tg.models.resnet34(), "ResNet-50": tg.models.resnet50()}
    summaries = {k: tg.models.summary(m, (3, 224, 224)) for k, m in nets.items()}
    s18 = summaries["ResNet-18"]
    last = {}
    for r in s18.rows:
        last[r["name"].split(".")[0]] = r["output_shape"]
    say("""A 7x7 conv at stride 2 and a max pool shrink the 224x224 image to 56x56; then four stages of
        residual blocks, each stage after the first starting with stride 2 and twice the filters; then
        global average pooling and a single FC layer to the 1000 class scores: no big FC layers.""")
    stages = [("conv1", (64, 112, 112)), ("maxpool", (64, 56, 56)), ("layer1", (64, 56, 56)),
              ("layer2", (128, 28, 28)), ("layer3", (256, 14, 14)), ("layer4", (512, 7, 7)),
              ("avgpool", (512, 1, 1)), ("fc", (1000,))]
    table(["stage", "output (C, H, W)"], [[n, "x".join(map(str, last[n]))] for n, _ in stages])
    for n, shape in stages:
        check(f"ResNet-18 {n}", last[n], shape)

    heading("Depth and parameters of ResNet-18, -34 and -50")
    rows = []
    for name, s in summaries.items():
        weight_layers = sum(1 for r in s.rows if r["type"] in ("Conv2d", "Linear") and "downsample" not in r["name"])
        fc = sum(r["params"] for r in s.rows if r["type"] == "Linear")
        rows.append([name, weight_layers, s.total_params, fc, s.total_macs])
    table(["model", "weight layers", "parameters", "of which FC", "multiply-adds"], rows, ".4g")
    expected = {"ResNet-18": (18, 11_689_512), "ResNet-34": (34, 21_797_672), "ResNet-50": (50, 25_557_032)}
    for (name, layers, params, fc, _), (n_exp, p_exp) in zip(rows, expected.values()):
        check(f"{name}: weight layers (convs + FC, shortcuts not counted)", layers, n_exp)
        check(f"{name}: parameters", params, p_exp, note="as torchvision's model")
        check(f"{name}: share of parameters in the single FC layer", fc / params, at_most=0.25)
    say("""ResNet-34 is about twice ResNet-18, but ResNet-50, with 16 more layers than ResNet-34, has only
        a few million more parameters. Its blocks are bottlenecks, the same idea as GoogLeNet's: a 1x1
        conv cuts the depth to a quarter, the 3x3 conv works on that, and another 1x1 conv expands it
        again.""")
    basic, bottle = BasicBlock(256, 256), Bottleneck(256, 64)
    n_basic = sum(p.data.size for n, p in basic.named_parameters() if "conv" in n)
    n_bottle = sum(p.data.size for n, p in bottle.named_parameters() if "conv" in n)
    check("BasicBlock at 256 channels: two 3x3 convs, 2 * 9 * 256^2 weights", n_basic, 2 * 9 * 256 * 256)
    check("Bottleneck 256 -> 64 -> 64 -> 256: 256*64 + 9*64*64 + 64*256 weights", n_bottle,
          256 * 64 + 9 * 64 * 64 + 64 * 256)
    check("the bottleneck needs this fraction of the weights", n_bottle / n_basic, at_most=0.06)

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        ax.semilogy(range(1, depth + 1), plain, "o-", ms=3, label="plain: h = relu(Wh)")
        ax.semilogy(range(1, depth + 1), resid, "s-", ms=3, label="residual: h = h + relu(Wh)")
        ax.set(xlabel="layer (1 = closest to the input)", ylabel="|dL/dW|",
               title=f"gradient reaching each of {depth} layers")
        ax.legend()
        save_figure(opts, fig, "23_resnet_gradient_flow")


if __name__ == "__main__":
    run(main)
