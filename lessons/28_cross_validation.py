"""Cross-validation: choosing kNN's k and distance from every fold, not just one.

Lesson 01 chose k on a single validation split. With few training digits one
split is a noisy judge: a different split could have picked a different k. In
5-fold cross-validation the training digits are cut into 5 equal folds; each fold
serves once as the validation set while the other 4 are remembered, and the 5
accuracies are averaged. Their spread (mean ± std) says how much one split could
mislead, and the test set is still looked at only once, at the very end.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from lessons._lesson import check, digits, heading, plots_wanted, run, save_figure, say, start, table

knn = importlib.import_module("lessons.01_knn")          # lesson 01's distances and majority vote
KS = (1, 3, 5, 7, 10, 15, 20)
KINDS = ("L1", "L2")


def make_folds(n: int, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Indices 0..n-1 shuffled once and cut into n_folds folds of (almost) equal size."""
    return np.array_split(np.random.default_rng(seed).permutation(n), n_folds)


def cross_validate(dist: np.ndarray, labels: np.ndarray, folds: list[np.ndarray], ks=KS) -> np.ndarray:
    """Accuracy of each k on each fold, shape (len(ks), n_folds).

    ``dist`` holds all pairwise distances of the training digits; for fold f the rows
    of the fold are the validation digits and the columns of the other folds the
    remembered ones, so no distance is computed twice.
    """
    acc = np.empty((len(ks), len(folds)))
    for f, val in enumerate(folds):
        rest = np.concatenate([fold for g, fold in enumerate(folds) if g != f])
        d = dist[np.ix_(val, rest)]
        for i, k in enumerate(ks):
            acc[i, f] = float((knn.knn_predict(d, labels[rest], k) == labels[val]).mean())
    return acc


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_test, n_folds = (1000, 500, 5) if opts.quick else (3000, 2000, 5)
    x, y = digits("train", n_train)
    x_test, y_test = digits("test", n_test)

    heading(f"Cutting {n_train} training digits into {n_folds} folds")
    folds = make_folds(n_train, n_folds)
    sizes = [len(f) for f in folds]
    say(f"""We shuffle the {n_train} digits once and cut them into {n_folds} folds. Every digit must land in
        exactly one fold: then each digit is a validation digit exactly once and a remembered digit
        in the other {n_folds - 1} rounds.""")
    table(["fold"] + [str(f + 1) for f in range(n_folds)], [["size"] + sizes])
    everything = np.concatenate(folds)
    check("fold sizes add up to the training set", sum(sizes), n_train)
    check("each digit is in exactly one fold", bool(np.array_equal(np.sort(everything), np.arange(n_train))), True,
          note="a partition")
    check("fold sizes differ by at most one", max(sizes) - min(sizes), at_most=1)

    heading("Every k, every distance, every fold")
    say("""All pairwise distances between the training digits are computed once; round f uses the rows
        of fold f against the columns of the other folds. The table gives each setting's mean
        accuracy over the folds and the spread between folds (the sample standard deviation).""")
    dists = {kind: knn.distances(x, x, kind) for kind in KINDS}
    acc = {kind: cross_validate(dists[kind], y, folds) for kind in KINDS}
    mean = {kind: acc[kind].mean(1) for kind in KINDS}
    std = {kind: acc[kind].std(1, ddof=1) for kind in KINDS}
    table(["k"] + [f"{kind} mean ± std" for kind in KINDS] + [f"L2 fold {f + 1}" for f in range(n_folds)],
          [[k] + [f"{mean[kind][i]:.3f} ± {std[kind][i]:.3f}" for kind in KINDS] + list(acc["L2"][i])
           for i, k in enumerate(KS)], ".3f")
    best_kind, best_i = max(((kind, i) for kind in KINDS for i in range(len(KS))),
                            key=lambda key: (mean[key[0]][key[1]], -KS[key[1]]))
    best_k = KS[best_i]
    cv_mean, cv_std = mean[best_kind][best_i], std[best_kind][best_i]
    grid = np.stack([mean[kind] for kind in KINDS])
    runner_up = float(np.sort(grid.ravel())[-2])
    say(f"""Cross-validation picks k = {best_k} with the {best_kind} distance: {cv_mean:.3f} ± {cv_std:.3f}
        averaged over {n_folds} folds. The runner-up is {cv_mean - runner_up:.3f} behind,
        {"less than" if cv_mean - runner_up < cv_std else "not much more than"} the spread between folds: one split alone is a noisy judge of such small differences, and
        averaging {n_folds} of them is what makes the choice steadier.""")
    check("the chosen setting's mean accuracy is the largest in the table", cv_mean, float(grid.max()), tol=0.0)
    per_fold = [(KINDS[a], KS[b]) for a, b in
                (np.unravel_index(np.argmax(np.stack([acc[kind][:, f] for kind in KINDS])), grid.shape)
                 for f in range(n_folds))]
    table(["fold", "best setting on that fold alone", "its accuracy", f"accuracy of {best_kind}, k={best_k}"],
          [[f + 1, f"{kind}, k={k}", acc[kind][KS.index(k), f], acc[best_kind][best_i, f]]
           for f, (kind, k) in enumerate(per_fold)], ".3f")
    lone = acc[best_kind][best_i]
    disagree = sum(s != (best_kind, best_k) for s in per_fold)
    say(f"""Used alone, as a single validation split, the folds would have chosen {len(set(per_fold))} different
        setting(s); {disagree} of {n_folds} disagree with the average. The chosen setting's accuracy
        ranges from {lone.min():.3f} to {lone.max():.3f} across the folds: that is how far a single
        split's estimate can wander.""")
    check("fold-to-fold spread of the chosen setting (std)", cv_std, at_least=1e-4, at_most=0.05,
          note="folds differ, but by a few points at most")
    l1_vs_l2 = mean["L2"].max() - mean["L1"].max()
    say(f"""L2 beats L1 on the digits by {l1_vs_l2:+.3f} at their best k: squaring the differences forgives
        the many small disagreements of a slightly shifted stroke and punishes a few big ones.""")
    check("best L2 mean - best L1 mean", l1_vs_l2, at_least=0.0, note="as in lesson 01's single split")

    heading("Theory check: k = 1 on the remembered digits themselves")
    n_distinct = len(np.unique(x, axis=0))
    check("distinct training digits", n_distinct, n_train, note="no two images equal")
    self_acc = float((knn.knn_predict(dists[best_kind], y, 1) == y).mean())
    say("""Every distinct digit is at distance zero from itself and at a positive distance from every
        other one, so with k = 1 it is its own nearest neighbour and gets its own label. Training
        accuracy 1.0 says nothing about new digits; that is why k is chosen on held-out folds.""")
    check("k = 1 training accuracy", self_acc, 1.0, tol=0.0, note="theory: exactly 1")

    heading("One look at the test set")
    pred = knn.knn_predict(knn.distances(x_test, x, best_kind), y, best_k)
    test_acc = float((pred == y_test).mean())
    se_cv = cv_std / np.sqrt(n_folds)                       # standard error of a mean of n_folds folds
    se_test = np.sqrt(test_acc * (1 - test_acc) / n_test)   # binomial standard error of the test estimate
    se = float(np.hypot(se_cv, se_test))
    say(f"""Now the chosen setting remembers all {n_train} training digits (a quarter more than any fold remembered)
        and labels {n_test} test digits it has never seen. The cross-validated estimate has a standard
        error of std/sqrt({n_folds}) = {se_cv:.4f}, the test accuracy one of sqrt(p(1-p)/n) = {se_test:.4f};
        together {se:.4f}. An honest estimate puts the test accuracy within a few of those.""")
    table(["estimate", "accuracy", "standard error"],
          [[f"CV ({n_folds} folds)", cv_mean, se_cv], [f"test ({n_test} digits)", test_acc, se_test]], ".4f")
    check("test accuracy - CV estimate, in standard errors", (test_acc - cv_mean) / se, 0.0, tol=3.0,
          note="within 3 standard errors")
    check(f"test accuracy ({best_kind}, k={best_k})", test_acc, at_least=0.80, note="chance is 0.10")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for j, kind in enumerate(KINDS):
            ks = np.array(KS) + (j - 0.5) * 0.3
            ax.errorbar(ks, mean[kind], yerr=std[kind], fmt="o-", capsize=3, label=f"{kind}: mean ± std")
            for f in range(n_folds):
                ax.plot(ks, acc[kind][:, f], ".", color=f"C{j}", alpha=0.3, ms=4)
        ax.axvline(best_k, color="grey", ls=":", lw=1)
        ax.set(xlabel="k", ylabel="validation accuracy",
               title=f"{n_folds}-fold cross-validation of k-NN ({n_train} digits); dots: single folds")
        ax.legend()
        save_figure(opts, fig, "28_cross_validation")


if __name__ == "__main__":
    run(main)
