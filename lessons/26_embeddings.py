"""Embedding the learned codes in 2-D: what the last hidden layer makes of the digits.

A trained ConvNet can be read as a machine that moves the images, layer by layer,
into a space where a linear classifier can separate the classes. We take the
activations of LeNet-5's last hidden layer (84 numbers per digit, its "code"),
flatten them to two dimensions with PCA, and compare the picture with the same
projection of the raw pixels. Classes that lie in tangled clouds in pixel space
should sit in separate clusters in code space.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import (check, heading, lenet_codes, pca, plots_wanted, run, save_figure, say, start, table,
                             train_lenet)
from tinygrad_cv import train


def nearest_centroid_accuracy(z: np.ndarray, y: np.ndarray) -> float:
    """Class means from the first half, accuracy of 'nearest mean wins' on the second half."""
    half = len(z) // 2
    cents = np.stack([z[:half][y[:half] == c].mean(0) for c in range(10)])
    d = ((z[half:, None, :] - cents[None]) ** 2).sum(-1)
    return float((d.argmin(1) == y[half:]).mean())


def separation(z: np.ndarray, y: np.ndarray) -> float:
    """Mean distance between class centroids divided by the mean distance of points to their own centroid."""
    cents = np.stack([z[y == c].mean(0) for c in range(10)])
    within = np.mean(np.linalg.norm(z - cents[y], axis=1))
    between = np.mean([np.linalg.norm(cents[a] - cents[b]) for a in range(10) for b in range(a + 1, 10)])
    return float(between / within)


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_show, epochs = (2000, 600, 5) if opts.quick else (8000, 2000, 6)

    heading("A LeNet-5 to look inside")
    images, labels = tg.data.mnist("train")
    test_images, test_labels = tg.data.mnist("test")
    model = train_lenet(images[:n_train], labels[:n_train], epochs)
    x, y = test_images[:n_show], test_labels[:n_show]
    acc = train.evaluate(model, train.prepare(x), y)
    say(f"""Trained with the library's recipe on {n_train} digits for {epochs} epochs; we embed {n_show} held-out
        digits the network has never seen.""")
    check("held-out accuracy of the network", acc, at_least=0.9)

    heading("Codes and pixels, flattened by PCA")
    pixels = train.prepare(x).reshape(len(x), -1)
    feats = lenet_codes(model, x)
    say(f"""Each digit is a point in 784-D pixel space and, after the network, a point in {feats.shape[1]}-D code
        space. PCA keeps the two directions along which the points vary most: centre the data,
        take its singular value decomposition, project onto the first two right singular vectors.""")
    check("code size (LeNet-5's last hidden layer)", feats.shape[1], 84)
    zp, vp, varp = pca(pixels)
    zc, vc, varc = pca(feats)
    check("principal directions are orthonormal: max |V V^T - I|", float(np.abs(vc @ vc.T - np.eye(2)).max()), 0.0,
          tol=1e-5)
    check("variance along each projected axis = its eigenvalue", zc.var(0, ddof=1), varc[:2], rel=1e-4)
    check("the first axis carries the most variance", bool(varc[0] >= varc[1] >= varc[2]), True)
    share_p, share_c = varp[:2].sum() / varp.sum(), varc[:2].sum() / varc.sum()
    table(["space", "dims", "variance kept by 2 PCA axes"], [["pixels", 784, share_p], ["codes", 84, share_c]], ".3f")
    say("""The codes are far more compressible: a couple of directions explain much more of their
        variation than they do for the pixels, because the network has thrown away what does not
        matter for the label (stroke thickness, slant, exact position).""")
    check("2 axes keep a larger share of the codes' variance than of the pixels'", share_c, at_least=share_p)

    heading("Do the classes separate?")
    say("""Two measurements of separation. Nearest centroid: compute each class's mean point on half of
        the digits and label the other half by the closest mean (chance: 10%). Spread ratio: the
        average distance between class means divided by the average distance of a digit from its own
        class mean; larger means tighter, farther-apart clusters.""")
    rows, metric = [], {}
    for name, z in [("pixels, 784-D", pixels), ("pixels, PCA 2-D", zp), ("codes, 84-D", feats), ("codes, PCA 2-D", zc)]:
        metric[name] = (nearest_centroid_accuracy(z, y), separation(z, y))
        rows.append([name, *metric[name]])
    table(["representation", "nearest-centroid acc", "between / within"], rows, ".3f")
    check("codes, 84-D: nearest centroid", metric["codes, 84-D"][0], at_least=0.85,
          note="the codes are nearly linearly separable")
    check("codes, 2-D: nearest centroid well above chance", metric["codes, PCA 2-D"][0], at_least=0.4,
          note="chance 0.1")
    check("codes beat pixels in 2-D (nearest centroid)", metric["codes, PCA 2-D"][0],
          at_least=metric["pixels, PCA 2-D"][0] + 0.05)
    check("codes beat pixels in full dimension (nearest centroid)", metric["codes, 84-D"][0],
          at_least=metric["pixels, 784-D"][0])
    check("codes beat pixels in 2-D (between / within)", metric["codes, PCA 2-D"][1],
          at_least=metric["pixels, PCA 2-D"][1])
    say("""Ten classes cannot all be pulled apart in a flat 2-D projection, so some clusters still overlap
        in the picture; in the full 84-D code space even the crude nearest-centroid rule labels most
        digits correctly, and the network's final linear layer, which is allowed to tilt its
        boundaries, does better still. t-SNE, the method the report mentions, is a non-linear embedding that
        tries to keep each point's nearest neighbours close in 2-D instead of keeping the directions
        of largest variance; it draws the clusters more clearly, but distances between clusters in a
        t-SNE plot do not mean much. PCA is linear, exact and has no knobs, so we check numbers on it.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 5))
        for ax, (name, z) in zip(axes, [("raw pixels", zp), ("LeNet-5 codes (84-D)", zc)]):
            sc = ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
            for c in range(10):
                m = np.median(z[y == c], axis=0)
                ax.text(m[0], m[1], str(c), fontsize=14, weight="bold", ha="center", va="center",
                        bbox=dict(boxstyle="circle", fc="white", alpha=0.7))
            ax.set(title=f"PCA of {name}", xlabel="PC 1", ylabel="PC 2")
        fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
        save_figure(opts, fig, "26_embeddings_pca")


if __name__ == "__main__":
    run(main)
