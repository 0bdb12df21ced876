"""Stepping through a trained LeNet: where the gradient is largest and which filters a digit lights up.

Lesson 19 trained LeNet-5 and looked at it from outside: its accuracy, its filters, its
mistakes. Here we walk through it one module at a time with the module stepper,
``tg.Stepper(loss, by="module", model=net)`` (the same steps ``tgcv step lenet5`` shows,
full-screen on a terminal). Going forward, each module reports its output shape and
statistics, and each ReLU the share of its outputs that are exactly 0. At the loss we see
the softmax and the target. Going backward, each module reports the gradient that arrives
at its output, its local rule, the gradient it passes down, and its parameters' gradients
with the update-to-weight ratio lr*|dW|/|W| (the course's rule of thumb: about 1e-3). We
then check that what the stepper reports agrees with the engine's own ``loss.backward()``
and with the course's rules, find the layer whose weights would move most, see where on
the input image the gradient sits, and compare which first-layer filters a 7 and a 1 light up.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import (accuracy, check, digits, heading, plots_wanted, run, save_figure, say, start, table,
                             train_steps)
from tinygrad_cv import data, models, optim
from tinygrad_cv.nn.functional.loss import cross_entropy
from tinygrad_cv.step import ModuleBackward, ModuleForward, SeedStep, Stepper
from viz.format import LR, describe, describe_module, update_ratio


def as_images(rows: np.ndarray) -> np.ndarray:
    """Digit rows in [0, 1] (N, 784) as the network's input: (N, 1, 28, 28), normalized as tgcv step does."""
    return data.normalize(rows.reshape(-1, 1, 28, 28))


def step_digit(net, image: np.ndarray, label: int):
    """One digit through the net and the cross-entropy, recorded and ready to step: (x, loss, stepper)."""
    x = tg.Tensor(image[None], requires_grad=True)
    x.label = "x"
    loss = cross_entropy(net(x), np.array([label]))
    loss.label = "loss"
    return x, loss, Stepper(loss, by="module", model=net)


def conv1_means(stepper) -> np.ndarray:
    """Each first-layer filter's mean activation after its ReLU, read from the stepper's features.1 step."""
    relu = next(e for e in stepper.events if isinstance(e, ModuleForward) and e.scope == "features.1")
    return np.asarray(relu.result, np.float64)[0].mean(axis=(1, 2))


def bar_images() -> np.ndarray:
    """A horizontal and a vertical bar, 20 x 2 pixels, in the middle of a 28 x 28 frame (normalized)."""
    img = np.zeros((2, 28 * 28), np.float32).reshape(2, 28, 28)
    img[0, 13:15, 4:24] = 1.0
    img[1, 4:24, 13:15] = 1.0
    return as_images(img.reshape(2, -1))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, steps = (3000, 150) if opts.quick else (12000, 600)

    heading("A briefly trained LeNet-5")
    train_x, train_y = digits("train", n_train)
    test_x, test_y = digits("test", 1000)
    net = models.lenet5()
    loader = data.DataLoader((as_images(train_x), train_y), batch_size=32, shuffle=True, seed=0)
    last = train_steps(net, optim.Adam(net.parameters(), lr=4e-3), loader, steps)
    with tg.no_grad():
        acc = accuracy(net(tg.Tensor(as_images(test_x))), test_y)
    say(f"""{steps} Adam steps (lr 4e-3, batches of 32) on {n_train:,} shipped training digits; the last
        batch's loss was {last.item():.3f}. Accuracy on the first 1,000 held-out digits:""")
    check("held-out accuracy", acc, at_least=0.9, note="a short run; lesson 19 trains longer")

    heading("Forward, module by module, for one held-out 7")
    i7 = int(np.nonzero(test_y == 7)[0][0])
    images = as_images(test_x)
    x, loss, stepper = step_digit(net, images[i7], 7)
    forward = [e for e in stepper.events if isinstance(e, ModuleForward)]
    say(f"""The stepper groups the {len(stepper.ops_events)} primitive steps of the pass into
        {len(stepper.events)} module steps: {len(forward)} forward (the last one is the loss), the seed
        dL/dL = 1, and {len(forward)} backward. The forward steps, as the stepper writes them:""")
    for e in forward[:3]:
        print(describe_module(e))
    rows = []
    for e in forward:
        a = np.asarray(e.result, np.float64)
        dead = e.dead_fraction
        rows.append([e.scope, type(e.module).__name__ if e.module is not None else "cross_entropy",
                     str(tuple(a.shape)), float(a.mean()), float(a.std()), "" if dead is None else f"{dead:.1%}"])
    table(["module", "kind", "output", "mean", "std", "dead ReLUs"], rows)
    with tg.no_grad():
        conv_out = np.asarray(net.features[0](tg.Tensor(images[i7][None])).data)
    relu1 = next(e for e in forward if e.scope == "features.1")
    say("""A ReLU's output is exactly 0 wherever its input was not positive, so the dead fraction the stepper
        reports must be the share of first-layer conv outputs that are <= 0, counted here from a separate
        run of the conv layer alone:""")
    check("dead ReLUs after conv1 (stepper)", relu1.dead_fraction, float(np.mean(conv_out <= 0)), tol=1e-12,
          note="zeros counted directly")

    heading("The loss step: softmax and target")
    loss_step = forward[-1]
    print(describe_module(loss_step))
    logits = np.asarray(loss_step.ops[-1].inputs[0], np.float64)[0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    loss_back = next(e for e in stepper.events if isinstance(e, ModuleBackward) and e.scope == "loss")
    dlogits = np.asarray(loss_back.downstream[0][1], np.float64)[0]
    say("""The cross-entropy's backward rule is dL/dlogits = softmax(logits) - onehot(target). So adding the
        one-hot target back to the gradient the stepper recorded must give a probability vector that sums
        to 1, and minus the log of its target entry must be the loss itself:""")
    softmax_back = dlogits + np.eye(10)[7]
    check("sum of (dL/dlogits + onehot)", float(softmax_back.sum()), 1.0, tol=1e-6, note="a softmax sums to 1")
    check("-log p[target] from the gradient", float(-np.log(softmax_back[7])), float(np.asarray(loss_step.result)),
          rel=1e-4, note="equals the loss step's value")
    check("that softmax vs. softmax(logits)", float(np.abs(softmax_back - p).max()), 0.0, tol=1e-6)

    heading("Backward, module by module")
    backward = [e for e in stepper.events if isinstance(e, ModuleBackward)]
    seed = next(e for e in stepper.events if isinstance(e, SeedStep))
    print(describe(seed))
    for e in (backward[1], backward[-1]):
        print(describe_module(e))
    brows = []
    for e in backward:
        ratio = max((update_ratio(g, p_.data, LR) for _, p_, g in e.param_grads), default=None)
        brows.append([e.scope, float(np.linalg.norm(np.asarray(e.upstream, np.float64))),
                      float(np.linalg.norm(np.asarray(e.downstream[0][1], np.float64))) if e.downstream else "",
                      "" if ratio is None else ratio])
    table(["module", "|dL/d output|", "|dL/d input|", f"largest lr*|dW|/|W| (lr {LR:g})"], brows, fmt=".3g")

    for p_ in net.parameters():
        p_.grad = None
    x.grad = None
    loss.backward()                                    # the engine's own backward, to compare with
    named = dict(net.named_parameters())
    worst = 0.0
    for e in backward:
        for name, _, g in e.param_grads:
            worst = max(worst, float(np.abs(np.asarray(g, np.float64) - np.asarray(named[name].grad)).max()))
    say("""The stepper replays the engine's own chain rule edge by edge; its parameter gradients at the end of
        the pass must be the ones loss.backward() leaves in .grad:""")
    check("largest |stepper dW - loss.backward() dW| over all 10 parameters", worst, 0.0, tol=1e-6)
    x_grad = stepper.state(len(stepper.events)).grads[id(x)]
    check("|stepper dL/dx - loss.backward() dL/dx|", float(np.abs(x_grad - x.grad).max()), 0.0, tol=1e-6)

    say("""Max pooling routes each window's gradient to its maximum and flattening only reshapes it, so
        neither may change the gradient's norm; a ReLU zeroes it where its output was 0:""")
    for e in backward:
        if e.scope in ("features.2", "features.5", "flatten"):
            up, down = (float(np.linalg.norm(np.asarray(g, np.float64))) for g in (e.upstream, e.downstream[0][1]))
            check(f"{e.scope}: |downstream| / |upstream|", down / up, 1.0, tol=1e-5, note="norm kept")
    relu_back = next(e for e in backward if e.scope == "features.1")
    zero_out = np.asarray(relu1.result) == 0
    check("conv1 ReLU: gradient passed where the output was 0",
          float(np.abs(np.asarray(relu_back.downstream[0][1])[zero_out]).max()), 0.0, tol=0.0)

    ratios = {}
    for e in backward:
        for name, p_, _ in e.param_grads:
            if name.endswith("weight"):
                ratios[e.scope] = update_ratio(named[name].grad, p_.data, LR)   # from loss.backward()'s dW
    top = max(ratios, key=ratios.get)
    stepper_ratios = {e.scope: update_ratio(g, p_.data, LR) for e in backward
                      for name, p_, g in e.param_grads if name.endswith("weight")}
    stepper_top = max(stepper_ratios, key=stepper_ratios.get)
    say(f"""Which weights would one SGD step at lr {LR:g} move most, relative to their size? The output layer
        sits next to the loss: its weight gradient is (softmax - onehot) times its input, with no layer in
        between to shrink it on the way down. The ratios, computed from loss.backward()'s .grad:""")
    table(["layer", "lr*|dW|/|W|"], [[k, v] for k, v in ratios.items()], fmt=".3g")
    check("layer with the largest update/weight ratio (from loss.backward())", top, "classifier.4",
          note="the output layer")
    check("... and the stepper finds the same layer", stepper_top, top)
    check("every weight's ratio within 100x of the course's 1e-3", [min(ratios.values()), max(ratios.values())],
          at_least=1e-5, at_most=1e-1)

    heading("Where on the image the gradient is")
    g = np.abs(np.asarray(x_grad, np.float64)[0, 0])
    ink = test_x[i7].reshape(28, 28) > 0.2
    near = ink.copy()
    for _ in range(2):                                  # grow the strokes by 2 pixels (4-neighbours)
        grown = near.copy()
        grown[1:] |= near[:-1]
        grown[:-1] |= near[1:]
        grown[:, 1:] |= near[:, :-1]
        grown[:, :-1] |= near[:, 1:]
        near = grown
    ratio_near = float(g[near].mean() / g[~near].mean())
    say(f"""dL/dx says how each input pixel would change the loss. The strokes and the 2 pixels around them
        cover {near.mean():.0%} of the image but hold {g[near].sum() / g.sum():.0%} of the gradient's
        absolute mass: the network looks at the digit, not at the background.""")
    check("mean |dL/dx| near the strokes / far from them", ratio_near, at_least=2.0)

    heading("Which first-layer filters a 7 lights up, compared with a 1")
    i1 = int(np.nonzero(test_y == 1)[0][0])
    _, _, stepper1 = step_digit(net, images[i1], 1)
    m7, m1 = conv1_means(stepper), conv1_means(stepper1)
    with tg.no_grad():
        bars = np.maximum(np.asarray(net.features[0](tg.Tensor(bar_images())).data, np.float64), 0).mean(axis=(2, 3))
    favour = m7 / np.maximum(m1, 1e-12)
    table(["filter", "mean on the 7", "mean on the 1", "7 / 1", "horizontal bar", "vertical bar"],
          [[k, m7[k], m1[k], favour[k], bars[0, k], bars[1, k]] for k in range(6)], fmt=".3g")
    f7 = int(np.argmax(favour))
    say(f"""Filter {f7} is the one the 7 lights up most relative to the 1. A 7 has a horizontal top bar that a 1
        lacks, so that filter should prefer horizontal strokes: on a plain horizontal bar it gives
        {bars[0, f7]:.3f}, on a vertical one {bars[1, f7]:.3f}. The filter the horizontal bar favours most
        is filter {int(np.argmax(bars[0] / np.maximum(bars[1], 1e-12)))}.""")
    check(f"filter {f7}: horizontal bar / vertical bar", float(bars[0, f7] / max(bars[1, f7], 1e-12)), at_least=1.0,
          note="the 7's favourite filter prefers horizontal strokes")
    import viz

    fm = viz.feature_maps(net, images[i7], layers=["features.0"])
    check("stepper's conv1 ReLU maps vs. viz.feature_maps (hooks)",
          float(np.abs(np.maximum(fm.maps["features.0"], 0) - np.asarray(relu1.result)[0]).max()), 0.0, tol=1e-6)

    plt = plots_wanted(opts)
    if plt is not None:
        relu1_1 = next(e for e in stepper1.events if isinstance(e, ModuleForward) and e.scope == "features.1")
        fig, axes = plt.subplots(2, 7, figsize=(13, 4.6), layout="constrained")
        for r, (img, maps, name, means) in enumerate(((test_x[i7], relu1.result, "7", m7),
                                                       (test_x[i1], relu1_1.result, "1", m1))):
            axes[r, 0].imshow(img.reshape(28, 28), cmap="gray")
            axes[r, 0].set_title(f"the {name}", fontsize=9)
            a = np.asarray(maps)[0]
            for k in range(6):
                axes[r, k + 1].imshow(a[k], cmap="viridis", vmin=0, vmax=float(a.max()))
                mark = " (7's favourite)" if k == f7 else ""
                axes[r, k + 1].set_title(f"filter {k}: {means[k]:.2f}{mark}", fontsize=8)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("conv1 after ReLU: each filter's map and mean activation, for a 7 and a 1 "
                     "(same colour scale per row)")
        save_figure(opts, fig, "36_conv1_maps")

        fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
        axes[0].imshow(test_x[i7].reshape(28, 28), cmap="gray")
        axes[0].set_title("held-out 7")
        s = np.asarray(x_grad)[0, 0]
        lim = float(np.abs(s).max())
        im = axes[1].imshow(s, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[1].contour(ink, levels=[0.5], colors="k", linewidths=0.6)
        axes[1].set_title("dL/dx (red: raising the pixel raises the loss)", fontsize=9)
        fig.colorbar(im, ax=axes[1], fraction=0.046)
        for ax in axes[:2]:
            ax.set_xticks([])
            ax.set_yticks([])
        names = list(ratios)
        axes[2].bar(range(len(names)), [ratios[n] for n in names], color="tab:orange")
        axes[2].axhline(1e-3, color="k", linestyle="--", linewidth=1, label="course's ~1e-3")
        axes[2].set_yscale("log")
        axes[2].set_xticks(range(len(names)), names, rotation=30, fontsize=8)
        axes[2].set_title(f"weights' lr*|dW|/|W| at lr {LR:g}", fontsize=9)
        axes[2].legend(fontsize=8)
        fig.tight_layout()
        save_figure(opts, fig, "36_gradients")


if __name__ == "__main__":
    run(main)
