"""Data preprocessing: centering, normalization, PCA and whitening.

Before a network sees the digits we can reshape the cloud of data points:
move its centre to the origin, give every feature the same spread, rotate it
onto its principal axes, and finally squash those axes to unit variance
(whitening). For images the course's advice is short: centre them, and
usually stop there.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table


def positive_weight_gradients(x: np.ndarray) -> float:
    """Fraction of positive weight gradients (among non-zero ones) for one neuron on one example.

    The neuron is f = w·x + b; backward gives df/dw = x times the upstream gradient, so the
    signs of the weight gradients are exactly the signs of the input.
    """
    w = tg.Tensor(tg.randn(x.shape[0]).numpy() * 0.01, requires_grad=True)
    b = tg.Tensor(0.0, requires_grad=True)
    f = (w * tg.Tensor(x)).sum() + b
    f.backward(1.7)                               # any upstream gradient: one sign for all of x
    g = w.grad[x != 0]
    return float((g > 0).mean())


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    images, _ = tg.data.mnist("train")
    n = 2000 if opts.quick else 8000
    X = images[:n].reshape(n, -1).astype(np.float64)
    say(f"""X holds {n} digits as rows of 784 pixel values in [0, 255] (N x D = {n} x 784).""")

    heading("Why centre? The gradients on a neuron's weights")
    say("""A neuron f = w·x + b receives an upstream gradient g and sends df/dw_i = g x_i to its
        weights. Raw pixels are never negative, so every weight gradient has the sign of g: all
        weights must move up together or down together, and reaching a mixed-sign w takes a
        zig-zag path. Let the engine show it on one digit, before and after centering.""")
    mean_image = X.mean(0)
    raw = positive_weight_gradients(X[0].astype(np.float32))
    centred = positive_weight_gradients((X[0] - mean_image).astype(np.float32))
    check("raw digit: fraction of positive weight gradients", raw, 1.0, note="all one sign")
    check("centred digit: fraction of positive weight gradients", centred, at_least=0.05, at_most=0.95,
          note="both signs")

    heading("Mean subtraction and normalization")
    Xc = X - mean_image
    std = Xc.std(0)
    live = std > 1e-8
    Xn = np.zeros_like(Xc)
    Xn[:, live] = Xc[:, live] / std[live]
    say(f"""Subtracting the mean image centres every pixel feature; dividing by its standard
        deviation gives each the same spread. {int((~live).sum())} border pixels are 0 in every digit
        here: their std is 0, so they are left at 0 rather than divided by zero.""")
    table(["data", "largest |feature mean|", "feature std (min..max over live pixels)"],
          [["raw", np.abs(X.mean(0)).max(), f"{X.std(0)[live].min():.3g} .. {X.std(0)[live].max():.3g}"],
           ["centred", np.abs(Xc.mean(0)).max(), f"{std[live].min():.3g} .. {std[live].max():.3g}"],
           ["normalized", np.abs(Xn.mean(0)).max(), f"{Xn.std(0)[live].min():.3g} .. {Xn.std(0)[live].max():.3g}"]])
    check("largest feature mean after centering", float(np.abs(Xc.mean(0)).max()), 0.0, tol=1e-9)
    check("every live feature's std after normalizing", Xn.std(0)[live], 1.0, tol=1e-9)

    heading("PCA: rotating onto the principal axes")
    cov = Xc.T @ Xc / n
    U, S, _ = np.linalg.svd(cov)
    say("""The covariance matrix Xc^T Xc / N is symmetric; its singular vectors U are the principal
        axes, its singular values S the variance along each. Projecting onto them (Xc U)
        decorrelates the features; keeping only the first k columns reduces the dimension.""")
    Xrot = Xc @ U
    cov_rot = Xrot.T @ Xrot / n
    off = cov_rot - np.diag(np.diag(cov_rot))
    check("largest off-diagonal covariance after rotation", float(np.abs(off).max() / S[0]), 0.0, tol=1e-9,
          note="relative to the top variance")
    explained = np.cumsum(S) / S.sum()
    rows = []
    for k in (10, 50, 100, 200):
        recon = Xrot[:, :k] @ U[:, :k].T
        rows.append([k, explained[k - 1], float(np.sqrt(((recon - Xc) ** 2).mean()))])
    table(["components k", "variance kept", "RMS reconstruction error"], rows, ".3f")
    check("variance kept by 100 of 784 components", float(explained[99]), at_least=0.85,
          note="neighbouring pixels are strongly correlated")

    heading("Whitening: every principal axis gets unit variance")
    k, eps = 100, 1e-5
    Xw = Xrot[:, :k] / np.sqrt(S[:k] + eps)
    cov_w = Xw.T @ Xw / n
    say(f"""Divide each of the first {k} rotated features by the square root of its variance (plus a
        small eps = {eps:g} against division by zero). The covariance of the result should be the
        identity matrix: unit variances on the diagonal, zeros elsewhere.""")
    check("largest |cov - I| of the whitened data", float(np.abs(cov_w - np.eye(k)).max()), 0.0, tol=1e-3)
    say("""A warning comes with it: whitening blows up the weakest directions, which on images are
        mostly noise. The course's practical advice for images is therefore short: centre only
        (subtract the mean image, or one mean per colour channel); scaling by the variance, PCA and
        whitening are rarely used.""")

    heading("The same three steps on a 2-D cloud")
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((500, 2)) @ np.array([[2.0, 0.6], [1.0, 0.8]]) + np.array([3.0, -2.0])
    pc = pts - pts.mean(0)
    pn = pc / pc.std(0)
    u, s, _ = np.linalg.svd(pc.T @ pc / len(pc))
    pw = pc @ u / np.sqrt(s + eps)
    table(["step", "mean", "std per axis", "correlation"],
          [[name, np.round(p.mean(0), 3) + 0.0, np.round(p.std(0), 3), round(float(np.corrcoef(p.T)[0, 1]), 3) + 0.0]
           for name, p in (("original", pts), ("centred", pc), ("normalized", pn), ("whitened", pw))])
    check("correlation after whitening", float(np.corrcoef(pw.T)[0, 1]), 0.0, tol=1e-9)
    check("correlation survives normalization", float(np.corrcoef(pn.T)[0, 1]), at_least=0.8,
          note="scaling the axes does not rotate the cloud")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
        for ax, (name, p) in zip(axes, (("original", pts), ("centred", pc), ("normalized", pn), ("whitened", pw))):
            ax.scatter(*p.T, s=4)
            ax.axhline(0, color="gray", lw=0.5)
            ax.axvline(0, color="gray", lw=0.5)
            ax.set(title=name, aspect="equal", xlim=(-7, 7), ylim=(-7, 7))
        save_figure(opts, fig, "09_preprocessing_2d")
        fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
        for i, ax in enumerate(axes.ravel()):
            img = mean_image if i == 0 else U[:, i - 1]
            ax.imshow(img.reshape(28, 28), cmap="gray" if i == 0 else "RdBu")
            ax.set_title("mean image" if i == 0 else f"PC {i}", fontsize=8)
            ax.axis("off")
        save_figure(opts, fig, "09_preprocessing_principal_axes")


if __name__ == "__main__":
    run(main)
