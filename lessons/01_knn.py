"""Image classification with k-nearest neighbours on the digits.

A classifier that "learns" nothing at all: it memorises every training digit
and labels a new one by the votes of the k most similar digits it remembers.
We measure similarity with the L1 and L2 distances, pick k on a validation
split (never on the test set), and only then look at the test set once.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table

KS = (1, 3, 5, 7, 10, 20)


def distances(test: np.ndarray, train: np.ndarray, kind: str, chunk: int = 16) -> np.ndarray:
    """All test-to-train distances, shape (n_test, n_train); kind is "L1" or "L2"."""
    if kind == "L2":  # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b, one matrix product for all pairs
        sq = (test ** 2).sum(1)[:, None] + (train ** 2).sum(1)[None, :] - 2.0 * test @ train.T
        return np.sqrt(np.maximum(sq, 0.0))
    out = np.empty((len(test), len(train)), dtype=np.float32)
    for i in range(0, len(test), chunk):  # sum of |pixel differences|, a few test digits at a time
        out[i:i + chunk] = np.abs(test[i:i + chunk, None, :] - train[None, :, :]).sum(-1)
    return out


def knn_predict(dist: np.ndarray, train_labels: np.ndarray, k: int) -> np.ndarray:
    """Majority vote of the k nearest training labels; ties go to the nearest of the tied classes."""
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    votes = train_labels[nearest]                                   # (n_test, k)
    counts = np.zeros((len(dist), 10))
    for j in range(k):                                              # earlier (nearer) votes weigh a hair more
        np.add.at(counts, (np.arange(len(dist)), votes[:, j]), 1.0 + 1e-6 * (k - j))
    return counts.argmax(1)


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_val, n_test = (2000, 400, 400) if opts.quick else (7000, 1000, 2000)
    digits = opts.data is None           # --data DIR: CIFAR-10, much harder: lower floors, same checks
    load = tg.data.mnist if digits else (lambda split: tg.data.cifar10(split, opts.data))
    images, labels = load("train")
    test_images, test_labels = load("test")
    n_val = min(n_val, len(images) // 5)
    n_train, n_test = min(n_train, len(images) - n_val), min(n_test, len(test_images))

    heading("Comparing two images, pixel by pixel")
    say("""The report's worked example compares a 4x4 test patch with a 4x4 training patch:
        subtract them pixel by pixel, take absolute values, add everything up.""")
    test_patch = np.array([[56, 32, 10, 18], [90, 23, 128, 133], [24, 26, 178, 200], [2, 0, 255, 220]])
    train_patch = np.array([[10, 20, 24, 17], [8, 10, 89, 100], [12, 16, 178, 170], [4, 32, 233, 112]])
    diff = np.abs(test_patch - train_patch)
    for row in diff:
        print("   ", " ".join(f"{v:4d}" for v in row))
    check("L1 distance of the two patches", int(diff.sum()), 456, note="the report's figure")
    check("L2 distance of the two patches", float(np.sqrt((diff ** 2).sum())), 162.11, tol=0.01,
          note="sqrt of the summed squares")

    heading("The digits as points in 784 dimensions" if digits else "CIFAR-10 images as points in 3072 dimensions")
    x = images.reshape(len(images), -1).astype(np.float32)
    x_train, y_train = x[:n_train], labels[:n_train]
    x_val, y_val = x[n_train:n_train + n_val], labels[n_train:n_train + n_val]
    x_test = test_images[:n_test].reshape(n_test, -1).astype(np.float32)
    y_test = test_labels[:n_test]
    say(f"""Each 28x28 digit is stretched into a row of 784 pixel values. We keep {n_train}
        digits to remember, hold out {n_val} more as a validation split for choosing k and the
        distance, and keep {n_test} test digits untouched until the very end.""")

    heading("Choosing k and the distance on the validation split")
    dists = {kind: distances(x_val, x_train, kind) for kind in ("L1", "L2")}
    acc = {(kind, k): float((knn_predict(d, y_train, k) == y_val).mean()) for kind, d in dists.items() for k in KS}
    table(["k"] + [f"{kind} val acc" for kind in dists], [[k] + [acc[kind, k] for kind in dists] for k in KS], ".3f")
    best_kind, best_k = max(acc, key=lambda key: (acc[key], -key[1]))
    say(f"""The best validation accuracy comes from k = {best_k} with the {best_kind} distance. Larger k
        smooths over odd training digits; too large a k lets far-away digits outvote the close
        ones. The two distances disagree on what "similar" means: L1 counts every unit of
        difference alike, while L2 squares them, so it tolerates many small disagreements but
        punishes a few large ones.""")
    check("best validation accuracy", acc[best_kind, best_k], at_least=0.85 if digits else 0.2, note="chance is 0.10")

    heading("One look at the test set")
    d_self = distances(x_train[:200], x_train, best_kind)
    check("k=1 accuracy on remembered digits", float((knn_predict(d_self, y_train, 1) == y_train[:200]).mean()),
          1.0, note="each digit is its own nearest neighbour")
    pred = knn_predict(distances(x_test, x_train, best_kind), y_train, best_k)
    test_acc = float((pred == y_test).mean())
    check(f"test accuracy ({best_kind}, k={best_k})", test_acc, at_least=0.80 if digits else 0.2, note="chance is 0.10")
    check("better than chance by", test_acc / 0.1, at_least=8.0 if digits else 2.0, note="times")
    say("""The catch: to label one test digit we compared it with every remembered digit. Training
        is free and prediction is slow, the opposite of what we want from a deployed model. The
        next lesson's linear classifier keeps only ten templates.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for kind in dists:
            ax.plot(KS, [acc[kind, k] for k in KS], "o-", label=kind)
        ax.set(xlabel="k", ylabel="validation accuracy", title="k-NN on digits")
        ax.legend()
        save_figure(opts, fig, "01_knn_choose_k")


if __name__ == "__main__":
    run(main)
