"""Attention as a learned mask: a digit somewhere in a big canvas, and where the network looks.

The course introduces attention with a simple idea: add a learned weighted mask
to the features, so that the network selects the locations that matter. We put
each digit at a random place in a 56x56 canvas, three quarters of which is
blank. A small conv trunk turns the canvas into a 14x14 grid of feature vectors,
a 1x1 conv gives every grid location a score, a softmax over the 196 locations
turns the scores into a mask that sums to 1, and the mask-weighted sum of the
feature vectors goes to a linear classifier. Nobody tells the network where the
digit is; the mask finds it because that lowers the loss. Global average
pooling, the same network with a uniform mask, is the baseline.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import (accuracy, check, digits, heading, on_canvas, plots_wanted, run, save_figure, say, start,
                             table, train_steps)
from tinygrad_cv import nn, optim

SIZE, PATCH, WIDTH = 56, 4, 16        # canvas side, the trunk's stride (one grid cell = 4x4 pixels), channels
GRID = SIZE // PATCH


class AttentionNet(nn.Module):
    """trunk (1x56x56 -> 16x14x14) -> [softmax over the 196 locations of a 1x1-conv score] -> weighted sum -> Linear.

    With ``attend=False`` the mask is uniform (1/196 everywhere): global average pooling.
    """

    def __init__(self, attend: bool = True):
        super().__init__()
        self.attend = attend
        self.trunk = nn.Sequential(nn.Conv2d(1, WIDTH, PATCH, stride=PATCH), nn.ReLU(),
                                   nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.ReLU())
        self.score = nn.Conv2d(WIDTH, 1, 1)
        self.head = nn.Linear(WIDTH, 10)

    def features_and_mask(self, x: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
        """Feature vectors (N, C, L) of the L = 14*14 locations and the mask (N, L), each row summing to 1."""
        f = self.trunk(x)
        n, c, h, w = f.shape
        if self.attend:
            mask = F.softmax(self.score(f).reshape(n, h * w), dim=1)
        else:
            mask = tg.Tensor(np.full((n, h * w), 1.0 / (h * w), dtype=np.float32))
        return f.reshape(n, c, h * w), mask

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        f, mask = self.features_and_mask(x)
        attended = (f * mask.reshape(mask.shape[0], 1, mask.shape[1])).sum(2)     # sum_l mask_l f_l: (N, C)
        return self.head(attended)


def mass_in_box(mask: np.ndarray, top: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Share of each mask (N, 196) that falls on the digit's 28x28 box: each grid cell's weight is spread
    evenly over its 4x4 pixels, then the pixels inside the box are added up."""
    pixels = np.repeat(np.repeat(mask.reshape(-1, GRID, GRID), PATCH, 1), PATCH, 2) / PATCH ** 2
    return np.array([pixels[i, t:t + 28, s:s + 28].sum() for i, (t, s) in enumerate(zip(top, left))])


def centre_of_mass(mask: np.ndarray) -> np.ndarray:
    """(row, col) in pixels of each mask's centre of mass (grid cell centres at 4i + 1.5)."""
    m = mask.reshape(-1, GRID, GRID)
    centres = PATCH * np.arange(GRID) + (PATCH - 1) / 2
    return np.stack([(m.sum(2) * centres).sum(1), (m.sum(1) * centres).sum(1)], axis=1)


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_test, steps, batch = (2000, 500, 300, 32) if opts.quick else (6000, 2000, 800, 64)
    rng = np.random.default_rng(0)
    x, y = digits("train", n_train)
    x_test, y_test = digits("test", n_test)
    corner = rng.integers(0, SIZE - 28 + 1, size=(n_train, 2))
    corner_test = rng.integers(0, SIZE - 28 + 1, size=(n_test, 2))
    canvas = on_canvas(x, SIZE, corner[:, 0], corner[:, 1])[:, None]
    canvas_test = on_canvas(x_test, SIZE, corner_test[:, 0], corner_test[:, 1])[:, None]

    heading(f"Digits lost in a {SIZE}x{SIZE} canvas")
    box_share = 28 * 28 / SIZE ** 2
    say(f"""Each digit's 28x28 box lands at a random corner in [0, {SIZE - 28}] x [0, {SIZE - 28}], a fresh one per
        digit. The box covers {box_share:.0%} of the canvas; the rest is zeros. A network that
        pooled all locations alike would dilute the digit's features with 75% background.""")
    check("ink is preserved by the placement", float(canvas.sum()), float(x.sum()), rel=1e-5)
    check("the box's share of the canvas", box_share, 0.25, tol=1e-12, note="28^2 / 56^2")

    heading("The mask: a softmax over locations")
    tg.manual_seed(0)
    net = AttentionNet()
    probe = tg.Tensor(canvas_test[:64])
    with tg.no_grad():
        f, mask = net.features_and_mask(probe)
    say(f"""The trunk's first conv has a {PATCH}x{PATCH} filter at stride {PATCH}, so the canvas becomes a {GRID}x{GRID}
        grid; two 3x3 convs let each location see its neighbours (a 20x20-pixel receptive field).
        Scores s_l from a 1x1 conv, mask a_l = exp(s_l) / sum_k exp(s_k) over the {GRID * GRID} locations, and
        the attended vector z = sum_l a_l f_l. Before training the scores are nearly equal and the
        mask nearly uniform.""")
    m = mask.numpy()
    check("mask sums to 1 over the locations: worst |sum - 1| of 64 images", float(np.abs(m.sum(1) - 1).max()), 0.0,
          tol=1e-5)
    check("mask is positive", float(m.min()), at_least=0.0)
    check("untrained mask is close to uniform: max / (1/196)", float(m.max() * GRID ** 2), at_most=3.0)
    uniform = AttentionNet(attend=False)
    uniform.load_state_dict(net.state_dict())
    net.score.weight.data[...] = 0.0                              # all scores equal -> mask exactly 1/196
    with tg.no_grad():
        same = float(np.abs(net(probe).numpy() - uniform(probe).numpy()).max())
    say("""With all scores equal the softmax is exactly uniform, the weighted sum is the mean over
        locations, and the attention network is the global-average-pooling network: the baseline is
        a special case, which the training below must beat by learning where to look.""")
    check("equal scores: attention output == global average pooling output", same, 0.0, tol=1e-6)
    flat = np.full((1, GRID * GRID), 1.0 / GRID ** 2)
    check("a uniform mask puts exactly the box's share on the box", float(mass_in_box(flat, [10], [17])[0]),
          box_share, tol=1e-9, note="the yardstick")

    heading(f"Training both for {steps} steps")
    loader = tg.data.DataLoader((canvas, y), batch_size=batch, shuffle=True, seed=0)
    rows, nets = [], {}
    for name, attend in (("attention mask", True), ("global average pooling", False)):
        tg.manual_seed(0)
        model = AttentionNet(attend)
        t0 = time.perf_counter()
        train_steps(model, optim.Adam(model.parameters(), lr=3e-3), loader, steps)
        seconds = time.perf_counter() - t0
        with tg.no_grad():
            scores = model(tg.Tensor(canvas_test))
        nets[name] = model
        rows.append([name, accuracy(scores, y_test), F.cross_entropy(scores, y_test).item(), seconds])
    table(["pooling", "test acc", "test loss", "train seconds"], rows, ".3f")
    att_acc, gap_acc = rows[0][1], rows[1][1]
    say(f"""Same trunk, same classifier, same {steps} Adam steps on {n_train} canvases; the only difference is whether
        the 196 locations are weighted by a learned mask or all alike. {att_acc:.1%} against {gap_acc:.1%} on
        {n_test} test canvases (chance: 10%).""")
    check("attention: test accuracy", att_acc, at_least=0.5, note="chance is 0.10")
    check("attention - global average pooling, test accuracy", att_acc - gap_acc, at_least=0.0,
          note="measured: the mask helps")

    heading("Where the mask looks")
    with tg.no_grad():
        _, mask = nets["attention mask"].features_and_mask(tg.Tensor(canvas_test))
    mask = mask.numpy().astype(np.float64)
    inside = mass_in_box(mask, corner_test[:, 0], corner_test[:, 1])
    entropy = -(mask * np.log(np.maximum(mask, 1e-30))).sum(1)
    com = centre_of_mass(mask)
    box_centre = corner_test + 13.5
    dist = np.linalg.norm(com - box_centre, axis=1)
    shuffled = np.linalg.norm(com - box_centre[np.random.default_rng(1).permutation(n_test)], axis=1)
    table(["measure", "trained mask", "for comparison"],
          [["mask mass on the digit's box (mean)", inside.mean(), f"{box_share:.2f} (uniform mask)"],
           ["... (median)", np.median(inside), ""],
           ["test canvases with more than half the mass on the box", (inside > 0.5).mean(), ""],
           ["effective number of locations exp(entropy)", np.exp(entropy).mean(), f"{GRID ** 2} (uniform)"],
           ["mask centre to box centre, pixels (mean)", dist.mean(), f"{shuffled.mean():.1f} (another digit's box)"]],
          ".3f")
    say(f"""The mask sends {inside.mean():.0%} of its weight to the digit's box on average, against the {box_share:.0%} a
        uniform mask would, and concentrates on about {np.exp(entropy).mean():.0f} of the {GRID ** 2} locations. Its
        centre of mass sits {dist.mean():.1f} pixels from the box centre, where the box of some other digit is
        {shuffled.mean():.1f} pixels away: the network found the digit without ever being told where it is.

        Look at the figure: the mask does not outline the digit. It picks a handful of cells on or
        near it, and that is enough: each cell's feature vector already describes its whole
        20x20-pixel receptive field. Where the mask goes astray (the first panel, the worst test
        canvas), part of its weight sits on the canvas edge, where zero padding makes the features
        differ from plain background.""")
    check(f"trained mask sums to 1: worst |sum - 1| of {n_test} test images", float(np.abs(mask.sum(1) - 1).max()),
          0.0, tol=1e-5)
    check("mask mass on the digit's box (mean)", inside.mean(), at_least=2 * box_share,
          note="at least twice the uniform 0.25")
    check("mask centre to box centre, against another digit's box", dist.mean() / shuffled.mean(), at_most=0.5)

    plt = plots_wanted(opts)
    if plt is not None:
        from matplotlib.patches import Rectangle

        show = np.argsort(inside)[np.linspace(0, n_test - 1, 10).astype(int)]   # from the worst to the best
        fig, axes = plt.subplots(2, 5, figsize=(12, 5.4))
        pred = nets["attention mask"](tg.Tensor(canvas_test[show])).numpy().argmax(1)
        for ax, i, p in zip(axes.flat, show, pred):
            up = np.repeat(np.repeat(mask[i].reshape(GRID, GRID), PATCH, 0), PATCH, 1)
            ax.imshow(canvas_test[i, 0], cmap="gray", vmin=0, vmax=1)
            overlay = np.zeros((SIZE, SIZE, 4))
            overlay[..., 0], overlay[..., 3] = 1.0, 0.85 * up / up.max()      # red, as opaque as the weight
            ax.imshow(overlay)
            t, s = corner_test[i]
            ax.add_patch(Rectangle((s - 0.5, t - 0.5), 28, 28, fill=False, ec="cyan", lw=1))
            ax.set_title(f"label {y_test[i]}, says {p}; {inside[i]:.0%} on box", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        fig.suptitle("learned attention masks over test canvases (red = weight; cyan = the digit's box), "
                     "sorted by mass on the box", fontsize=10)
        save_figure(opts, fig, "35_attention_masks")


if __name__ == "__main__":
    run(main)
