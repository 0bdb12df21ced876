"""Multiclass SVM loss versus softmax cross-entropy.

A loss turns a vector of class scores and the correct label into one number
that says how unhappy we are. The multiclass SVM (hinge) loss wants the
correct score to beat every other score by a margin and is satisfied once it
does; the softmax classifier reads the scores as log-probabilities and always
wants the correct class a little more probable.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, heading, run, say, start, table

CLASSES = ("cat", "car", "frog")
# CS231n's three training images (a cat, a car, a frog); one row of scores per image.
SCORES = np.array([[3.2, 5.1, -1.7],
                   [1.3, 4.9, 2.0],
                   [2.2, 2.5, -3.1]])
LABELS = np.array([0, 1, 2])


def hinge_by_hand(s: np.ndarray, y: int, margin: float = 1.0) -> float:
    """L_i = sum over j != y of max(0, s_j - s_y + margin), written out for one example."""
    return float(sum(max(0.0, s[j] - s[y] + margin) for j in range(len(s)) if j != y))


def softmax_by_hand(s: np.ndarray, y: int) -> float:
    """L_i = -log(e^{s_y} / sum_j e^{s_j}), written out for one example."""
    return float(-math.log(math.exp(s[y]) / sum(math.exp(v) for v in s)))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("The three-image example: scores")
    say("""A linear classifier has produced these scores for three training images. Each column is
        one image; the correct class is the one named in the header.""")
    table(["class"] + [f"{c} image" for c in CLASSES],
          [[c] + [SCORES[i, j] for i in range(3)] for j, c in enumerate(CLASSES)], ".1f")

    heading("Multiclass SVM loss, margin 1")
    svm_each = [hinge_by_hand(SCORES[i], LABELS[i]) for i in range(3)]
    say("""For the cat image: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9 + 0 = 2.9. The car
        already beats both others by more than 1, so it costs nothing. The frog's score is the
        lowest of the three: max(0, 2.2 + 3.1 + 1) + max(0, 2.5 + 3.1 + 1) = 6.3 + 6.6 = 12.9.""")
    check("per-image SVM losses", svm_each, [2.9, 0.0, 12.9], tol=1e-9, note="CS231n's worked example")
    scores = tg.Tensor(SCORES, requires_grad=True)
    svm = F.svm_loss(scores, LABELS)
    check("F.svm_loss (mean over the 3 images)", svm.item(), 5.27, tol=0.005, note="(2.9 + 0 + 12.9) / 3")
    check("F.svm_loss agrees with the sum written out", svm.item(), sum(svm_each) / 3, tol=1e-5)
    svm.backward()
    say("""Its gradient is just as readable: every violated margin pushes its wrong score up by 1/N
        and the correct score down by 1/N (N = 3 images here).""")
    grad = scores.grad * 3
    table(["image", "dL/ds cat", "dL/ds car", "dL/ds frog"], [[f"{c} image", *grad[i]] for i, c in enumerate(CLASSES)],
          ".0f")
    check("N * gradient for the frog image", grad[2], [1.0, 1.0, -2.0], tol=1e-6, note="two violated margins")
    check("N * gradient for the car image", grad[1], [0.0, 0.0, 0.0], tol=1e-6, note="no violation, no push")

    heading("Softmax cross-entropy of the same scores")
    ce_each = [softmax_by_hand(SCORES[i], LABELS[i]) for i in range(3)]
    probs = F.softmax(tg.Tensor(SCORES), dim=-1).numpy()
    table(["image", "p(cat)", "p(car)", "p(frog)", "loss -log p(correct)"],
          [[f"{c} image", *probs[i], ce_each[i]] for i, c in enumerate(CLASSES)], ".3f")
    check("softmax probabilities sum to 1", probs.sum(1), 1.0, tol=1e-6)
    check("cat image: -log p(cat)", ce_each[0], 2.04, tol=0.005, note="CS231n's figure, natural log")
    ce = F.cross_entropy(tg.Tensor(SCORES), LABELS)
    check("F.cross_entropy (mean)", ce.item(), sum(ce_each) / 3, tol=1e-5, note="mean of the column above")

    heading("How the two losses treat a confident classifier")
    say("""Take scores that already satisfy every margin, say [4, 1, 2] for a cat, and double them.
        The SVM loss was zero and stays zero: it does not care by how much the margins are met.
        The softmax loss keeps shrinking: the correct class can always become a little more
        probable.""")
    rows = []
    for k in (1, 2, 4):
        s = tg.Tensor(np.array([[4.0, 1.0, 2.0]]) * k)
        rows.append([f"{k} x scores", F.svm_loss(s, [0]).item(), F.cross_entropy(s, [0]).item()])
    table(["scores", "SVM loss", "softmax loss"], rows, ".3g")
    check("SVM loss for 1x, 2x, 4x", [r[1] for r in rows], [0.0, 0.0, 0.0], tol=1e-9)
    check("softmax loss keeps falling", bool(rows[0][2] > rows[1][2] > rows[2][2] > 0), True)

    heading("The loss before any learning")
    say("""With small random weights every score is close to 0. Then each of the C - 1 wrong classes
        violates the margin by almost exactly 1, so the SVM loss is about C - 1; and softmax gives
        every class probability 1/C, so the cross-entropy is about log C. Checking this first is a
        cheap way to catch a bug before training.""")
    images, labels = tg.data.mnist("train")
    n = 500 if opts.quick else 4000
    x = tg.Tensor(images[:n].reshape(n, -1) / 255.0)
    w = tg.randn(784, 10) * 1e-4
    s0 = x @ w
    check("SVM loss at init, C = 10", F.svm_loss(s0, labels[:n]).item(), 9.0, tol=0.05, note="C - 1")
    check("softmax loss at init, C = 10", F.cross_entropy(s0, labels[:n]).item(), math.log(10), tol=0.01,
          note="log 10 = 2.303")
    say("""The extremes are worth knowing too: the SVM loss is 0 at best and has no upper bound; the
        softmax loss approaches 0 only as the correct probability approaches 1, and grows without
        bound as it approaches 0.""")


if __name__ == "__main__":
    run(main)
