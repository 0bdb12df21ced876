"""Transfer learning: features learned on a big task, reused for a small one.

Big networks are trained on big data sets; most of us then have a small data set
of our own. The course's recipe: take a network trained on the big task, freeze
its feature layers, and train only a new last layer on the small one (fine-tune
more layers only when there is more data). We stage it on the digits: the
"big" task is telling 0-4 apart, the "small" one is telling 5-9 apart from a
handful of examples per class.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import (check, few_per_class, fit_full_batch, heading, plots_wanted, pretrain_on_0_to_4, run,
                             save_figure, say, start, table)
from tinygrad_cv import models, nn, train


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_source, epochs = (2500, 3) if opts.quick else (8000, 5)
    shots = (2, 20) if opts.quick else (2, 5, 20, 100)
    n_test = 1000 if opts.quick else 2000
    images, labels = tg.data.mnist("train")
    test_images, test_labels = tg.data.mnist("test")

    heading("Step 1: learn features on the big task (digits 0-4)")
    source_net, n_seen = pretrain_on_0_to_4(images, labels, n_source, epochs)
    test_src = np.nonzero(test_labels < 5)[0][:n_test]
    src_acc = train.evaluate(source_net, train.prepare(test_images[test_src]), test_labels[test_src])
    say(f"""A LeNet-5 with 5 outputs, trained with the library's recipe on {n_seen} digits 0-4. It has never
        seen a 5, 6, 7, 8 or 9.""")
    check("source task: held-out accuracy on 0-4", src_acc, at_least=0.95)

    heading("Step 2: freeze the network, cut it, put a new head on it")
    source_net.requires_grad_(False)
    frozen = {k: v.copy() for k, v in source_net.state_dict().items()}
    say("""requires_grad_(False) freezes every weight of the trained network: the engine records no graph
        through it, so backward stops at whatever we put on top, and the optimizer is only given the
        new layer's parameters. Where to cut? We try three places: right after the conv layers (400
        numbers per digit), after the first hidden layer (120) and after the second (84). Each body
        gets a fresh Linear head with 5 outputs for the classes 5-9. Since the body is frozen, its
        output for a given digit never changes, so we compute each digit's code once and train the
        head on the codes: the same result as running the body at every step, and much faster.""")
    cuts = {
        "conv (400)": (nn.Sequential(source_net.features, source_net.flatten), 400),
        "fc1 (120)": (nn.Sequential(source_net.features, source_net.flatten, source_net.classifier[:2]), 120),
        "fc2 (84)": (nn.Sequential(source_net.features, source_net.flatten, source_net.classifier[:4]), 84),
    }
    n_conv = sum(p.data.size for p in cuts["conv (400)"][0].parameters())
    check("frozen parameters below the conv cut", n_conv, 156 + 2_416, note="conv1 6*(5*5*1)+6, conv2 16*(5*5*6)+16")
    check("every frozen parameter has requires_grad False",
          all(not p.requires_grad for p in source_net.parameters()), True)

    tgt_test = np.nonzero(test_labels >= 5)[0][:n_test]
    x_test, y_test = train.prepare(test_images[tgt_test]), test_labels[tgt_test] - 5
    codes_test = {}
    for name, (body, _) in cuts.items():           # the frozen body never changes: run it once per image
        body.eval()
        with tg.no_grad():
            codes_test[name] = np.concatenate([body(tg.Tensor(x_test[i:i + 500])).data
                                               for i in range(0, len(x_test), 500)])
    results = []
    for n in shots:
        idx = few_per_class(labels, range(5, 10), n, seed=n)
        x_few, y_few = train.prepare(images[idx]), labels[idx] - 5
        row = [n, 5 * n]
        for name, (body, dim) in cuts.items():
            codes = body(tg.Tensor(x_few))
            if n == shots[0] and name == "conv (400)":
                check("no graph is recorded through the frozen body", codes.requires_grad, False)
            tg.manual_seed(1)
            head = nn.Linear(dim, 5)
            fit_full_batch(head, head.parameters(), codes.data, y_few, steps=150, lr=1e-2)
            if n == shots[0] and name == "conv (400)":
                check("the new head's output does require grad", head(codes).requires_grad, True)
            row.append(train.evaluate(head, codes_test[name], y_test))
        tg.manual_seed(1)
        scratch = models.lenet5(num_classes=5)
        fit_full_batch(scratch, scratch.parameters(), x_few, y_few, steps=150, lr=3e-3)
        row.append(train.evaluate(scratch, x_test, y_test))
        results.append(row)
    unchanged = all(np.array_equal(v, source_net.state_dict()[k]) for k, v in frozen.items())
    check("after training all the heads, every frozen weight is bit-for-bit unchanged", unchanged, True)

    heading("Step 3: transfer versus training from scratch on the same few examples")
    say(f"""Every model sees exactly the same few digits 5-9 for 150 full-batch Adam steps; accuracy is
        measured on {len(tgt_test)} held-out digits 5-9 (chance: 0.2). The scratch model is a full LeNet-5 that has
        to fit all {sum(p.data.size for p in scratch.parameters()):,} parameters from those few digits.""")
    table(["n per class", "digits"] + [f"transfer at {c}" for c in cuts] + ["from scratch"], results, ".3f")
    for row in results:
        n, conv, fc2, scr = row[0], row[2], row[4], row[5]
        if n <= 20:
            check(f"{n} per class: transfer from the conv features beats scratch", conv, at_least=scr)
        else:
            check(f"{n} per class: scratch has caught up (|transfer - scratch|)", abs(conv - scr), at_most=0.03)
        check(f"{n} per class: conv features transfer better than the last hidden layer", conv, at_least=fc2)
    gains = [row[2] - row[5] for row in results]
    check(f"{shots[0]} per class: gain of transfer over scratch", gains[0], at_least=0.05)
    check("the gain is largest when data are scarcest", gains[0], at_least=gains[-1])
    say("""Strokes, loops and corners learned while telling 0-4 apart are just as useful for 5-9, so a
        linear classifier on the frozen conv features needs only a few examples, while the scratch
        network must learn those features too, from almost nothing. The deeper we cut, the worse the
        transfer: the hidden fully-connected layers have specialised in separating 0-4 and have
        thrown away what distinguishes a 7 from a 9. Of the course's table this run shows the
        little-data column: with a similar task, a linear classifier on the top features; and the
        cut matters, earlier stages transferring better here. Its other advice, with more data
        fine-tune more layers, is not run here (every body above stays frozen); what the last rows
        do show is why it exists: as the small data set grows, the scratch model catches up and
        the gain of a frozen body shrinks.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        ns = [r[0] for r in results]
        for j, name in enumerate(cuts):
            ax.plot(ns, [r[2 + j] for r in results], "o-", label=f"transfer, cut at {name}")
        ax.plot(ns, [r[5] for r in results], "ks--", label="from scratch")
        ax.set(xscale="log", xlabel="training examples per class (digits 5-9)", ylabel="held-out accuracy",
               title="transfer learning on the digits", ylim=(0, 1))
        ax.legend()
        save_figure(opts, fig, "25_transfer_vs_scratch")


if __name__ == "__main__":
    run(main)
