"""Normalization variants: batch, layer, instance and group norm, and which axes each averages over.

All four do the same thing: subtract a mean, divide by a standard deviation, then let the
network rescale with learned gamma and beta. They differ only in which values share a
mean and a deviation. Batch norm pools each channel over the whole batch; layer,
instance and group norm stay inside one example, so an example's output never depends
on which other examples share its batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, digits, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn

N, C, H, W, G = 8, 6, 4, 4, 2


def norms(x: tg.Tensor) -> dict[str, np.ndarray]:
    """The four normalizations of (N, C, H, W) input x, no gamma or beta, in training mode."""
    return {"batch": F.batch_norm(x, None, None, training=True).numpy(),
            "layer": F.layer_norm(x, x.shape[1:]).numpy(),
            "instance": F.instance_norm(x).numpy(),
            "group": F.group_norm(x, G).numpy()}


def grouped(y: np.ndarray, kind: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """y viewed so that the values sharing one mean and std lie along the returned axes."""
    n, c = y.shape[:2]
    if kind == "group":
        return y.reshape(n, G, c // G, *y.shape[2:]), (2, 3, 4)
    return y, {"batch": (0, 2, 3), "layer": (1, 2, 3), "instance": (2, 3)}[kind]


AVERAGED = {"batch": "N, H, W (per channel)", "layer": "C, H, W (per example)",
            "instance": "H, W (per example and channel)", "group": f"C/{G}, H, W (per example and group)"}


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    rng = np.random.default_rng(0)

    heading("One recipe, four choices of axes")
    say(f"""A batch of N = {N} 'images' with C = {C} channels of {H}x{W}: every channel has its own offset
        and every example its own contrast, so the raw numbers are far from mean 0, std 1. Each
        normalization below computes mu and sigma^2 (biased) over its own group of values and
        outputs (x - mu) / sqrt(sigma^2 + eps). Group norm uses G = {G} groups of {C // G} channels.""")
    offsets = rng.normal(0, 5, size=(1, C, 1, 1))
    contrast = rng.uniform(0.5, 4, size=(N, 1, 1, 1))
    x = tg.Tensor(offsets + contrast * rng.normal(size=(N, C, H, W)))
    outs = norms(x)
    rows = []
    for kind, y in outs.items():
        view, axes = grouped(y, kind)
        mean, std = view.mean(axis=axes), view.std(axis=axes)
        rows.append([kind, AVERAGED[kind], mean.size, view.size // mean.size,
                     float(np.abs(mean).max()), float(np.abs(std - 1).max())])
    table(["norm", "averages over", "groups", "values each", "max |mean|", "max |std - 1|"], rows, ".2g")
    for kind, y in outs.items():
        view, axes = grouped(y, kind)
        check(f"{kind} norm: every group's mean over {AVERAGED[kind].split(' (')[0]}", view.mean(axis=axes), 0.0,
              tol=1e-6)
        check(f"{kind} norm: every group's std", view.std(axis=axes), 1.0, tol=1e-3, note="sqrt(var / (var + eps))")
    say("""Exactly those axes, not others: after layer norm each example is normalized as a whole,
        but its channels keep their different offsets, so a single channel of one example is not
        centred. After batch norm each channel is centred over the batch, but a single example is not.""")
    per_channel = outs["layer"].mean(axis=(2, 3))
    check("layer norm: largest mean of one (example, channel)", float(np.abs(per_channel).max()), at_least=0.5)
    per_example = outs["batch"].mean(axis=(1, 2, 3))
    check("batch norm: largest mean of one example over (C, H, W)", float(np.abs(per_example).max()), at_least=0.05)

    heading("Group norm sits between layer norm and instance norm")
    say(f"""With one group (G = 1) group norm pools all channels of an example: that is layer norm over
        (C, H, W). With one channel per group (G = C = {C}) each channel is its own group: that is
        instance norm. Groups in between share statistics among a few related channels.""")
    check("group_norm(x, 1) == layer_norm(x, (C, H, W))",
          float(np.abs(F.group_norm(x, 1).numpy() - outs["layer"]).max()), 0.0, tol=1e-12)
    check(f"group_norm(x, {C}) == instance_norm(x)",
          float(np.abs(F.group_norm(x, C).numpy() - outs["instance"]).max()), 0.0, tol=1e-12)

    heading("The same example in two different batches")
    x0 = x.numpy()[:1]
    batch_a = tg.Tensor(np.concatenate([x0, offsets + rng.normal(size=(N - 1, C, H, W))]))
    batch_b = tg.Tensor(np.concatenate([x0, 3 * (offsets + 5 * rng.normal(size=(N - 1, C, H, W)))]))
    alone = tg.Tensor(x0)
    out_a, out_b = norms(batch_a), norms(batch_b)
    say("""Example 0 goes through each normalization twice, once with quiet batchmates and once with
        loud ones, and (for the per-example norms) once alone, in a batch of 1. Batch norm's output
        for it changes with the company; the other three never look outside the example.""")
    diffs = {k: float(np.abs(out_a[k][0] - out_b[k][0]).max()) for k in out_a}
    table(["norm", "largest change of example 0's output"], [[k, v] for k, v in diffs.items()], ".3g")
    check("batch norm: example 0's output depends on its batch", diffs["batch"], at_least=0.1)
    for kind in ("layer", "instance", "group"):
        check(f"{kind} norm: example 0's output, batch A vs batch B", diffs[kind], 0.0, tol=1e-12)
        solo = {"layer": lambda t: F.layer_norm(t, t.shape[1:]), "instance": F.instance_norm,
                "group": lambda t: F.group_norm(t, G)}[kind](alone).numpy()
        check(f"{kind} norm: example 0 in a batch of 1 gives the same output",
              float(np.abs(solo[0] - out_a[kind][0]).max()), 0.0, tol=1e-12)

    heading("Small batches: how noisy are batch norm's statistics?")
    pool_n, trials = (130, 40) if opts.quick else (600, 120)
    xs, _ = digits("train", pool_n)
    tg.manual_seed(0)
    conv = nn.Conv2d(1, 8, 3)
    with tg.no_grad():
        feats = F.relu(conv(tg.Tensor(xs.reshape(-1, 1, 28, 28)))).numpy()
    say(f"""Real features this time: 8 channels of a random 3x3 conv over {pool_n} digits. We keep digit 0 and
        draw its batchmates at random {trials} times for each batch size, and measure how much digit 0's
        normalized output moves (the standard deviation over the draws, averaged over its values).
        Group norm's statistics come from the digit alone, so they do not move at all.""")
    sizes = [2, 4, 8, 16, 32, 64]
    spread = {}
    for b in sizes:
        outs_b, outs_g = [], []
        for _ in range(trials):
            mates = rng.choice(np.arange(1, pool_n), size=b - 1, replace=False)
            batch = tg.Tensor(feats[np.r_[0, mates]])
            outs_b.append(F.batch_norm(batch, None, None, training=True).numpy()[0])
            outs_g.append(F.group_norm(batch, G).numpy()[0])
        spread[b] = tuple(float(np.std(np.array(o, np.float64), axis=0).mean()) for o in (outs_b, outs_g))
    table(["batch size", "batch norm: spread of digit 0's output", "group norm"],
          [[b, *spread[b]] for b in sizes], ".3g")
    check("batch norm's noise at batch 2 over its noise at batch 64", spread[2][0] / spread[64][0], at_least=2.0,
          note="statistics of 2 digits are a poor estimate of the data's")
    check("group norm's noise at batch 2", spread[2][1], 0.0, tol=1e-12)

    heading("The layers, with PyTorch's names")
    layers = {"BatchNorm2d(6)": nn.BatchNorm2d(C), f"LayerNorm(({C}, {H}, {W}))": nn.LayerNorm((C, H, W)),
              "InstanceNorm2d(6)": nn.InstanceNorm2d(C), f"GroupNorm({G}, {C})": nn.GroupNorm(G, C)}
    table(["layer", "state_dict", "parameters"],
          [[name, ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in m.state_dict().items()) or "(empty)",
            sum(p.size for p in m.parameters())] for name, m in layers.items()])
    say("""gamma and beta are per channel for batch, instance and group norm, and per element of
        normalized_shape for layer norm. InstanceNorm2d has none by default (affine=False), as in
        PyTorch; only batch norm keeps running statistics, because only its statistics come from the
        batch and must be replaced by fixed ones at test time.""")
    check("GroupNorm parameters (gamma and beta per channel)",
          sum(p.size for p in layers[f"GroupNorm({G}, {C})"].parameters()), 2 * C)
    check("LayerNorm parameters (gamma and beta per element)",
          sum(p.size for p in layers[f"LayerNorm(({C}, {H}, {W}))"].parameters()), 2 * C * H * W)
    gn = layers[f"GroupNorm({G}, {C})"]
    gn.train()
    y_train = gn(x).numpy()
    gn.eval()
    check("GroupNorm: train mode and eval mode agree", float(np.abs(gn(x).numpy() - y_train).max()), 0.0, tol=1e-12)

    heading("Where each one is used")
    table(["norm", "statistics from", "depends on the batch", "typical home"], [
        ["batch", "one channel, whole batch", "yes (train mode)", "CNNs trained with decent batches"],
        ["layer", "one whole example", "no", "sequence models: RNNs, transformers"],
        ["instance", "one channel of one example", "no", "style transfer, image generation"],
        ["group", "a few channels of one example", "no", "detection, segmentation: small batches"]])
    say("""Batch norm is the classic choice for image classifiers: with batches of 32 or more its
        statistics are good estimates, the batch-to-batch noise even regularizes a little, and at test
        time it becomes a fixed affine map. Its weak point is the one measured above: with 2 or 4 images
        per batch (large images, video, detection) the statistics are noise, and train and test
        behave differently.

        Layer norm normalizes each example on its own, so it works the same for any batch size, in
        training and at test time; in a sequence model each time step or token is normalized over
        its features, which batch statistics would handle badly when sequences vary in length.

        Instance norm removes each image's own per-channel mean and contrast. For style transfer
        that is the point: the contrast of the content image should not survive into the output.
        For classification it throws away information that may matter.

        Group norm is the compromise: per example like layer norm, so no batch dependence, but with
        channels split into groups so that unrelated channels do not have to share one scale. With
        G = 1 it is layer norm, with G = C it is instance norm; G = 32 is the usual choice.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 4, figsize=(11, 3.2))
        n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
        ids = {"batch": c_idx, "layer": n_idx, "instance": n_idx * C + c_idx, "group": n_idx * G + c_idx // (C // G)}
        for ax, (kind, gid) in zip(axes, ids.items()):
            colour = (gid * 7919) % 20          # neighbouring groups get different colours
            ax.imshow(colour, cmap="tab20", vmin=0, vmax=19, aspect="auto")
            ax.set_xticks(range(C))
            ax.set_yticks(range(N))
            ax.set(title=f"{kind} norm", xlabel="channel C (each cell: all H x W)", ylabel="example N")
        fig.suptitle("one colour = values that share one mean and std")
        fig.tight_layout()
        save_figure(opts, fig, "27_normalization_axes")

        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ax.plot(sizes, [spread[b][0] for b in sizes], "o-", label="batch norm")
        ax.plot(sizes, [spread[b][1] for b in sizes], "s-", label="group norm")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="batch size", ylabel="spread of one digit's output", title="noise from the batchmates")
        ax.legend()
        save_figure(opts, fig, "27_batch_size_noise")


if __name__ == "__main__":
    run(main)
