"""Visualising what a CNN learned: top-activating patches, saliency maps and a t-SNE map.

ZFNet's question: once a ConvNet is trained, what has it learned? We train LeNet-5
briefly and look three ways. Per conv filter, the held-out digit patches that excite
it most (the crop of the input inside the unit's receptive field, found with forward
hooks). Per digit, the image-gradient saliency |d score / d x|: which pixels would
change the class score most. And for the whole test set, a t-SNE map of the last
hidden layer, which keeps each digit's nearest neighbours close in 2-D.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import (check, heading, lenet_codes, pca, plots_wanted, run, save_figure, say, start, table,
                             train_lenet)
from tinygrad_cv import nn, train

TOP = 8                      # patches shown per filter


def receptive_field(layers: list[nn.Module]) -> tuple[int, int, int]:
    """(size, jump, first) of a unit after ``layers``: unit i sees input pixels first + i*jump ...
    first + i*jump + size - 1. Each conv or pool of kernel k, stride s, padding p maps
    size <- size + (k - 1) * jump, first <- first - p * jump, jump <- jump * s."""
    size, jump, first = 1, 1, 0
    for m in layers:
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
            size, first, jump = size + (k - 1) * jump, first - p * jump, jump * s
    return size, jump, first


def top_patches(model: nn.Module, layer: int, x: np.ndarray, raw: np.ndarray) -> dict:
    """For every channel of ``model.features[layer]`` (a ReLU), the TOP held-out digits that excite it
    most (each digit's strongest position), with the receptive-field crops of the raw pixels (``raw``,
    for showing) and of the network's input ``x``."""
    acts: list[np.ndarray] = []
    handle = model.features[layer].register_forward_hook(lambda m, inputs, out: acts.append(out.data.copy()))
    with tg.no_grad():
        for i in range(0, len(x), 500):
            model(tg.Tensor(x[i:i + 500]))
    handle.remove()
    a = np.concatenate(acts)                                          # (N, C, H, W)
    size, jump, first = receptive_field(list(model.features)[:layer + 1])
    pad = max(0, -first) + size
    padded = np.pad(raw, ((0, 0), (pad, pad), (pad, pad)))
    padded_x = np.pad(x[:, 0], ((0, 0), (pad, pad), (pad, pad)))     # the network's input, zero-padded as conv pads
    n, c, h, w = a.shape
    flat = a.reshape(n, c, h * w)
    best_pos, best_val = flat.argmax(2), flat.max(2)                  # each digit's strongest position
    result = {"acts": a, "size": size, "jump": jump, "first": first, "filters": []}
    for ch in range(c):
        imgs = np.argsort(-best_val[:, ch], kind="stable")[:TOP]
        crops, inputs, where = [], [], []
        for im in imgs:
            i, j = divmod(int(best_pos[im, ch]), w)
            r0, c0 = first + i * jump + pad, first + j * jump + pad
            crops.append(padded[im, r0:r0 + size, c0:c0 + size])
            inputs.append(padded_x[im, r0:r0 + size, c0:c0 + size])
            where.append((int(im), i, j))
        result["filters"].append({"crops": crops, "inputs": inputs, "where": where, "values": best_val[imgs, ch]})
    return result


def unit(model: nn.Module, layer: int, x: np.ndarray, ch: int, i: int, j: int) -> float:
    """The activation of channel ch at (i, j) after features[layer], for one (1, 1, 28, 28) input."""
    with tg.no_grad():
        h = tg.Tensor(x)
        for m in list(model.features)[:layer + 1]:
            h = m(h)
    return float(h.data[0, ch, i, j])


def saliency(model: nn.Module, x: np.ndarray, label: int) -> np.ndarray:
    """d score_label / d x for one image (1, 1, 28, 28), by backward through the network."""
    xt = tg.Tensor(x, requires_grad=True, dtype=x.dtype)
    model(xt)[0, label].backward()
    return np.asarray(xt.grad.data if hasattr(xt.grad, "data") else xt.grad)[0, 0]


def nearest(z: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k closest other rows (Euclidean), closest first."""
    d = ((z[:, None, :] - z[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def knn_wrong(z: np.ndarray, y: np.ndarray, k: int = 5) -> np.ndarray:
    """True where the majority of a point's k closest other points has another label (leave-one-out kNN)."""
    votes = np.apply_along_axis(np.bincount, 1, y[nearest(z, k)], minlength=10)
    return votes.argmax(1) != y


def knn_accuracy(z: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy (majority of the k closest other points)."""
    return float(1 - knn_wrong(z, y, k).mean())


def lenet_predictions(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with tg.no_grad():
        return model(tg.Tensor(x)).data.argmax(1)


def neighbours_kept(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Average share of each point's k nearest neighbours in ``high`` that are also among its k nearest in ``low``."""
    a, b = nearest(high, k), nearest(low, k)
    return float(np.mean([len(set(a[i]) & set(b[i])) / k for i in range(len(a))]))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, epochs, n_map = (2000, 3, 500) if opts.quick else (8000, 5, 2000)

    heading("A briefly trained LeNet-5")
    images, labels = tg.data.mnist("train")
    test_images, test_labels = tg.data.mnist("test")
    model = train_lenet(images[:n_train], labels[:n_train], epochs)
    model.eval()
    x_test = train.prepare(test_images)
    raw = test_images.astype(np.float32) / 255
    acc = train.evaluate(model, x_test, test_labels)
    check("held-out accuracy", acc, at_least=0.9)

    # -- 1. top-activating patches ----------------------------------------------------------------------
    heading("What excites each filter: the top held-out patches")
    say("""A unit of a conv layer looks only at a window of the input, its receptive field. A forward
        hook on the ReLU after each conv records every unit's activation on all held-out digits; for
        each filter we keep the digits where it fires hardest and cut out the window its strongest
        unit sees. The window follows from the layer arithmetic: a kernel k, stride s, padding p
        widens the field by (k - 1) * jump and multiplies the jump by s.""")
    layers = {"conv1": 1, "conv2": 4}
    found = {name: top_patches(model, li, x_test, raw) for name, li in layers.items()}
    table(["layer", "maps", "receptive field", "jump", "first pixel"],
          [[name, f"{r['acts'].shape[1]} x {r['acts'].shape[2]}x{r['acts'].shape[3]}", f"{r['size']}x{r['size']}",
            r["jump"], r["first"]] for name, r in found.items()])
    check("conv1 (5x5, padding 2) receptive field", found["conv1"]["size"], 5)
    check("conv2 receptive field: 5 + 1*1 (pool) + 4*2", found["conv2"]["size"], 14)

    say("""Two checks that the windows are right. The unit's value must not change when every pixel
        outside its window is replaced by noise; and the pixels with a non-zero gradient of that
        unit, over several random inputs, must fill exactly that window.""")
    rng = np.random.default_rng(0)
    worst = 0.0
    for name, li in layers.items():
        r = found[name]
        for ch, f in enumerate(r["filters"]):
            im, i, j = f["where"][0]
            x = x_test[im:im + 1].copy()
            r0, c0 = r["first"] + i * r["jump"], r["first"] + j * r["jump"]
            keep = np.zeros((28, 28), bool)
            keep[max(r0, 0):r0 + r["size"], max(c0, 0):c0 + r["size"]] = True
            noisy = np.where(keep, x, rng.normal(0, 1, x.shape).astype(np.float32))
            worst = max(worst, abs(unit(model, li, noisy, ch, i, j) - float(r["acts"][im, ch, i, j])))
    check("largest change of a top unit when everything outside its window is noise", worst, 0.0, tol=1e-4)
    r, (ch, i, j) = found["conv2"], (0, 4, 4)
    support = np.zeros((28, 28), bool)
    for _ in range(4):
        xt = tg.Tensor(rng.normal(0, 1, (1, 1, 28, 28)).astype(np.float32), requires_grad=True)
        h = xt
        for m in list(model.features)[:layers["conv2"] + 1]:
            h = m(h)
        h[0, ch, i, j].backward()
        support |= xt.grad[0, 0] != 0
    rows_, cols_ = np.nonzero(support)
    r0 = r["first"] + i * r["jump"]
    check("conv2 unit (4, 4): rows with non-zero gradient", [int(rows_.min()), int(rows_.max())], [r0, r0 + 13])
    check("... and columns", [int(cols_.min()), int(cols_.max())], [r0, r0 + 13])
    w1 = model.features[0].weight.data.reshape(6, -1)
    cos = []
    for ch, f in enumerate(found["conv1"]["filters"]):          # conv1 is linear before its ReLU: w . patch + b
        mean_patch = np.mean(f["inputs"], axis=0).ravel()
        cos.append(float(mean_patch @ w1[ch] / (np.linalg.norm(mean_patch) * np.linalg.norm(w1[ch]))))
    table(["conv1 filter"] + [str(k) for k in range(6)], [["cos(mean top patch, weights)", *cos]], ".2f")
    check("conv1: every filter's mean top patch points along its weights (smallest cosine)", min(cos), at_least=0.0,
          note="theory: the top patches maximise w . patch")
    say("""conv1's 5x5 windows are little pieces of stroke: its filters are edge and bar detectors with
        an orientation. conv2's 14x14 windows cover half a digit and show larger parts, such as a
        loop's side, a crossing or a stroke ending, all in one position for one filter.""")

    # -- 2. saliency -------------------------------------------------------------------------------------
    heading("Saliency: which pixels move the class score")
    say("""The gradient of the (unnormalised) class score with respect to the input pixels says how
        much each pixel would change the score; its magnitude |d score / d x| is the saliency map. It
        is one backward pass, here through the engine's own conv and pool gradients, checked against
        central finite differences (score(x + h) - score(x - h)) / 2h at a few pixels, in float64.""")
    picks = [int(np.nonzero(test_labels == d)[0][0]) for d in range(10)]
    maps = [saliency(model, x_test[p:p + 1], int(test_labels[p])) for p in picks]
    model64 = float64_copy(model)
    x0 = x_test[picks[3]:picks[3] + 1].astype(np.float64)
    g = saliency(model64, x0, int(test_labels[picks[3]]))
    pix = [tuple(int(v) for v in np.unravel_index(k, g.shape)) for k in np.argsort(-np.abs(g).ravel())[:4]]
    pix.append((14, 14))
    h, fd, an = 1e-5, [], []
    for r_, c_ in pix:
        plus, minus = x0.copy(), x0.copy()
        plus[0, 0, r_, c_] += h
        minus[0, 0, r_, c_] -= h
        with tg.no_grad():
            s_p = model64(tg.Tensor(plus, dtype=np.float64)).data[0, test_labels[picks[3]]]
            s_m = model64(tg.Tensor(minus, dtype=np.float64)).data[0, test_labels[picks[3]]]
        fd.append((s_p - s_m) / (2 * h))
        an.append(g[r_, c_])
    table(["pixel", "backward", "finite difference"], [[f"{p}", a, f] for p, a, f in zip(pix, an, fd)], ".6g")
    check("saliency = finite differences at 5 pixels", np.array(an), np.array(fd), tol=1e-6, rel=1e-5)
    near_ink = [dilate(raw[p] > 0.3, 2) for p in picks]
    share = [float(np.abs(m)[k].sum() / np.abs(m).sum()) for m, k in zip(maps, near_ink)]
    area = [float(k.mean()) for k in near_ink]
    table(["digit", "saliency on or near the strokes", "share of the image there"],
          [[d, s, a] for d, s, a in zip(range(10), share, area)], ".3f")
    check("saliency concentrates on the strokes: smallest share / area over the 10 digits",
          min(s / a for s, a in zip(share, area)), at_least=1.2)
    say("""Most of the saliency sits on and right next to the strokes: the network reads the ink and the
        gaps between strokes close to it, not the empty border. Saliency is noisy and local; it tells
        what a small change would do, not why the whole digit is what it is.""")

    # -- 3. t-SNE -----------------------------------------------------------------------------------------
    heading("A t-SNE map of the last hidden layer")
    codes, y = lenet_codes(model, test_images[:n_map]), test_labels[:n_map]
    z_pca = pca(codes)[0]
    have_sklearn = importlib.util.find_spec("sklearn") is not None
    if not have_sklearn:
        print("  (scikit-learn is not installed: the t-SNE map is skipped; pip install \".[course]\")")
        z_tsne = None
    else:
        from sklearn.manifold import TSNE

        say(f"""t-SNE (scikit-learn's TSNE, perplexity 30, PCA initialisation) places {n_map} held-out
            digits in 2-D so that points that are near neighbours in the 84-D code space stay near
            neighbours; unlike PCA (lesson 26) it does not try to keep large distances. We score
            both maps the same way: the leave-one-out 5-nearest-neighbour accuracy in 2-D (chance 0.1),
            and how many of each digit's 10 nearest neighbours in 84-D are still among its 10 nearest
            in 2-D.""")
        from threadpoolctl import threadpool_limits         # installed with scikit-learn

        with threadpool_limits(1):                            # one thread: faster than fighting for two cores
            z_tsne = TSNE(n_components=2, perplexity=30, init="pca", random_state=0,
                          max_iter=500 if opts.quick else 1000).fit_transform(codes)
        scores = {name: (knn_accuracy(z, y), neighbours_kept(codes, z)) for name, z in
                  [("codes, 84-D", codes), ("PCA 2-D", z_pca), ("t-SNE 2-D", z_tsne)]}
        table(["map", "5-NN accuracy", "10-NN kept"], [[k, *v] for k, v in scores.items()], ".3f")
        check("t-SNE 2-D: 5-NN accuracy", scores["t-SNE 2-D"][0], at_least=0.8, note="chance 0.1")
        check("t-SNE keeps more of the 84-D neighbours than PCA", scores["t-SNE 2-D"][1],
              at_least=scores["PCA 2-D"][1] + 0.1)
        check("t-SNE 2-D: 5-NN accuracy at least PCA's", scores["t-SNE 2-D"][0], at_least=scores["PCA 2-D"][0])
        misplaced = knn_wrong(z_tsne, y)
        wrong = lenet_predictions(model, x_test[:n_map]) != y
        table(["digits", "count", "network's error rate"],
              [["all mapped", len(y), float(wrong.mean())], ["in another digit's island (5-NN wrong)",
                                                             int(misplaced.sum()), float(wrong[misplaced].mean())]], ".3f")
        check("digits in the wrong island are misclassified more often than the rest (error-rate ratio)",
              float(wrong[misplaced].mean() / max(wrong.mean(), 1e-9)), at_least=1.0)
        say("""In the t-SNE map the ten digits form separate islands, and a digit's neighbours there are
            mostly its neighbours in the code space too; a digit that lands in another digit's island
            is more often one the network gets wrong. The size of an island and the gaps between
            islands mean little: t-SNE only tries to keep the neighbourhoods.""")

    plt = plots_wanted(opts)
    if plt is not None:
        for name, r in found.items():
            filters, first = r["filters"], int(name == "conv1")      # conv1: its 5x5 weights first
            fig, axes = plt.subplots(len(filters), TOP + first, figsize=((TOP + first) * 0.8, len(filters) * 0.82))
            for k, (row, f) in enumerate(zip(axes, filters)):
                if first:
                    wk = model.features[0].weight.data[k, 0]
                    row[0].imshow(wk, cmap="RdBu_r", vmin=-np.abs(wk).max(), vmax=np.abs(wk).max())
                for ax, crop in zip(row[first:], f["crops"]):
                    ax.imshow(crop, cmap="gray", vmin=0, vmax=1)
                for ax in row:
                    ax.set_xticks([]), ax.set_yticks([])
                row[0].set_ylabel(f"{k}", rotation=0, labelpad=10, va="center")
            if first:
                axes[0, 0].set_title("weights", fontsize=8)
            fig.suptitle(f"{name}: top {TOP} held-out patches per filter ({r['size']}x{r['size']} receptive field)",
                         fontsize=10, y=1 - 0.25 / (len(filters) * 0.82))
            fig.subplots_adjust(top=1 - 0.5 / (len(filters) * 0.82))
            save_figure(opts, fig, f"33_{name}_patches")
        fig, axes = plt.subplots(2, 10, figsize=(13, 3))
        for k, (p, m) in enumerate(zip(picks, maps)):
            axes[0, k].imshow(raw[p], cmap="gray")
            axes[0, k].set_title(f"{test_labels[p]}")
            axes[1, k].imshow(np.abs(m), cmap="hot")
            for ax in axes[:, k]:
                ax.set_xticks([]), ax.set_yticks([])
        axes[1, 0].set_ylabel("|d score / d x|")
        fig.suptitle("saliency of the true class's score", fontsize=10)
        save_figure(opts, fig, "33_saliency")
        if z_tsne is not None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 5))
            for ax, (title, z) in zip(axes, [("PCA of the codes", z_pca), ("t-SNE of the codes", z_tsne)]):
                ax.scatter(z[:, 0], z[:, 1], c=y, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
                for c in range(10):
                    med = np.median(z[y == c], axis=0)
                    ax.text(med[0], med[1], str(c), fontsize=13, weight="bold", ha="center", va="center",
                            bbox=dict(boxstyle="circle", fc="white", alpha=0.7))
                ax.set(title=f"{title} (LeNet-5's 84-D last hidden layer)", xticks=[], yticks=[])
            save_figure(opts, fig, "33_tsne")


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` (for finite differences without float32 rounding)."""
    copy = type(model)(num_classes=model.classifier[-1].out_features)
    copy.load_state_dict(model.state_dict())
    return copy.double().eval()


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` grown by ``r`` pixels in every direction (a square neighbourhood)."""
    out = mask.copy()
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dr, 0), dc, 1)
    return out


if __name__ == "__main__":
    run(main)
