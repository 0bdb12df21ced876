"""Dense prediction: a fully convolutional net and a small U-Net segment the digit strokes.

Classification gives one label per image; dense prediction gives one label per pixel, so
the network's output must be as large as its input. A fully convolutional network (FCN)
has no fully connected layer, so it accepts any input size, and it grows its small
feature maps back with learned upsampling: the transposed convolution. U-Net adds a
contracting path to gather context and a symmetric expanding path that, through skip
connections, reuses the contracting path's fine maps to put the boundaries back in place.
Here both learn to find the strokes of noisy MNIST digits, in a few seconds.
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

NOISE = 0.6          # std of the Gaussian noise added to the [0, 1] digits
STROKE = 0.5         # mask = clean image > STROKE


def transposed_size(h: int, k: int, s: int, p: int = 0, output_padding: int = 0) -> int:
    """The course's arithmetic run backwards: (H - 1)*S - 2P + (F - 1) + output_padding + 1."""
    return (h - 1) * s - 2 * p + (k - 1) + output_padding + 1


class FCN(nn.Module):
    """Three 3x3 convs and two 2x2 max pools down to 7x7, then one learned 4x upsampling."""

    def __init__(self, c: int = 16):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(2 * c, 1, 4, stride=4)       # 7 -> (7 - 1)*4 + 4 = 28

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        return self.up(self.features(x))


class UNet(nn.Module):
    """Contracting path 28 -> 14 -> 7 (conv + pool), expanding path 7 -> 14 -> 28 with a
    transposed conv, then a bilinear Upsample, each followed by a skip connection (tg.cat)."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU())                      # 28x28
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU())  # 14x14
        self.bottom = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU())  # 7x7
        self.up2 = nn.ConvTranspose2d(2 * c, 2 * c, 2, stride=2)                                  # 7 -> 14
        self.dec2 = nn.Sequential(nn.Conv2d(4 * c, c, 3, padding=1), nn.ReLU())
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear")                                  # 14 -> 28
        self.dec1 = nn.Sequential(nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 1, 1))
        self.shapes: dict[str, tuple[int, ...]] = {}

    def forward(self, x: tg.Tensor) -> tg.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        z = self.bottom(e2)
        u2 = self.up2(z)
        d2 = self.dec2(tg.cat([u2, e2], dim=1))      # the skip: the 14x14 encoder map joins
        u1 = self.up1(d2)
        y = self.dec1(tg.cat([u1, e1], dim=1))       # the skip: the 28x28 encoder map joins
        self.shapes = {"input": x.shape, "contract 1": e1.shape, "contract 2": e2.shape, "bottom": z.shape,
                       "ConvTranspose2d": u2.shape, "cat + conv": d2.shape, "Upsample": u1.shape, "output": y.shape}
        return y


def noisy_digits(split: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy input, mask), both (n, 1, 28, 28) float32: the mask comes from the clean digit."""
    clean = digits(split, n)[0].reshape(-1, 1, 28, 28)
    mask = (clean > STROKE).astype(np.float32)
    return (clean + NOISE * rng.standard_normal(clean.shape)).astype(np.float32), mask


def scores(pred: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(per-pixel accuracy, IoU of the stroke class = |pred & mask| / |pred | mask|)."""
    m = mask > 0.5
    union = (pred | m).sum()
    return float((pred == m).mean()), float((pred & m).sum() / union) if union else 1.0


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels within one pixel of a stroke's edge: where a 3x3 max and a 3x3 min of the mask differ."""
    m = tg.Tensor(mask)
    grown = F.max_pool2d(m, 3, stride=1, padding=1).numpy()
    shrunk = -F.max_pool2d(-m, 3, stride=1, padding=1).numpy()
    return grown != shrunk


def train(model: nn.Module, x: np.ndarray, mask: np.ndarray, steps: int, batch: int,
          rng: np.random.Generator) -> float:
    """Adam on the per-pixel binary cross-entropy of sigmoid(logits); returns the last loss."""
    opt = tg.optim.Adam(model.parameters(), lr=1e-2)
    loss = None
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch)
        loss = F.binary_cross_entropy(F.sigmoid(model(tg.Tensor(x[idx]))), mask[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.item())


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with tg.no_grad():
        return model(tg.Tensor(x)).numpy() > 0          # logit > 0 <=> probability > 1/2


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    rng = np.random.default_rng(0)

    heading("A transposed convolution scatters one filter per input pixel")
    say("""A convolution reads a window of the input for every output pixel. A transposed
        convolution runs the other way: every input value, times the whole filter, is added into
        the output at stride S, and P rows and columns are then cut from each border. Its output
        size is the course's (W - F + 2P)/S + 1 solved for W: (H - 1)*S - 2P + (F - 1) + 1. A
        single 1 in a 3x3 input, a 3x3 filter holding 1..9, stride 2:""")
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 2] = 1.0
    w = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    y = F.conv_transpose2d(tg.Tensor(x), tg.Tensor(w), stride=2).numpy()[0, 0]
    print("\n".join("    " + " ".join(f"{v:2.0f}" for v in row) for row in y))
    check("output size", y.shape[0], transposed_size(3, 3, 2), note="(3 - 1)*2 + (3 - 1) + 1")
    check("the filter, copied at row 1*S = 2, column 2*S = 4", bool(np.array_equal(y[2:5, 4:7], w[0, 0])), True)
    check("and nothing anywhere else", float(y.sum()), float(w.sum()))
    say("""It is called transposed because it is the adjoint (the matrix transpose) of the
        convolution with the same filter: for any x and y, <conv_transpose(x), y> = <x, conv(y)>.
        That is also why conv2d's backward pass for its input is exactly this operation.""")
    xa = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    wa = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    ya = rng.standard_normal((2, 2, 9, 7)).astype(np.float32)    # (5 - 1)*2 - 2 + 3 = 9, (4 - 1)*2 - 2 + 3 = 7
    lhs = float((F.conv_transpose2d(tg.Tensor(xa), tg.Tensor(wa), stride=2, padding=1).numpy() * ya).sum())
    rhs = float((xa * F.conv2d(tg.Tensor(ya), tg.Tensor(wa), stride=2, padding=1).numpy()).sum())
    check("<conv_transpose2d(x), y> - <x, conv2d(y)>", lhs - rhs, 0.0, tol=1e-3 * max(1.0, abs(rhs)),
          note=f"both {rhs:.4g}: theory, the adjoint")
    say("""Fixed upsamplings are transposed convolutions with fixed filters. Nearest-neighbour 2x
        upsampling copies each pixel into a 2x2 block: a stride-2 transposed conv with a 2x2
        filter of ones. Bilinear 2x (align_corners=False) is, away from the border, a stride-2,
        padding-1 transposed conv with the 4x4 filter outer([1, 3, 3, 1], [1, 3, 3, 1]) / 16; at
        the border bilinear repeats the edge pixel where the convolution sees zeros.""")
    xt = tg.Tensor(rng.standard_normal((1, 1, 5, 6)).astype(np.float32))
    near = nn.Upsample(scale_factor=2)(xt).numpy()
    check("Upsample(nearest) - conv_transpose2d(ones 2x2, stride 2)", float(np.abs(
        near - F.conv_transpose2d(xt, tg.Tensor(np.ones((1, 1, 2, 2), np.float32)), stride=2).numpy()).max()), 0.0)
    k = np.array([1, 3, 3, 1], np.float32) / 4
    bil = nn.Upsample(scale_factor=2, mode="bilinear")(xt).numpy()
    tconv = F.conv_transpose2d(xt, tg.Tensor(np.outer(k, k)[None, None]), stride=2, padding=1).numpy()
    check("inside the border: Upsample(bilinear) - conv_transpose2d([1,3,3,1]^2/16)",
          float(np.abs(bil - tconv)[..., 1:-1, 1:-1].max()), 0.0, tol=1e-6)
    check("on the border they differ (edge repeated versus zeros)", float(np.abs(bil - tconv).max()), at_least=0.01)

    heading("The task: find the strokes under the noise")
    n_train, steps, batch = (1000, 100, 16) if opts.quick else (4000, 400, 32)
    x_tr, m_tr = noisy_digits("train", n_train, rng)
    x_te, m_te = noisy_digits("test", 500, rng)
    say(f"""The target mask marks the pixels of the *clean* digit brighter than {STROKE}; the network
        sees the digit with Gaussian noise of std {NOISE} added to every pixel (and never the clean
        image; the networks get it standardized with the training mean and std). Without the noise the task would be a threshold; with it, a single pixel says
        little and only its neighbourhood tells stroke from background. Training: {n_train}
        training digits; scores on 500 held-out test digits.""")
    stroke = float(m_te.mean())
    check("stroke pixels in the test masks", stroke, at_least=0.08, at_most=0.2, note="MNIST is mostly background")
    best_t = max(np.linspace(0.0, 1.5, 31), key=lambda t: scores(x_tr > t, m_tr)[1])
    baselines = {"all background": scores(np.zeros_like(m_te, bool), m_te),
                 f"threshold the input at {best_t:.2f}": scores(x_te > best_t, m_te)}
    check("all-background accuracy = 1 - stroke fraction", baselines["all background"][0], 1 - stroke, tol=1e-6)

    mu, sd = float(x_tr.mean()), float(x_tr.std())
    z_tr, z_te = (x_tr - mu) / sd, (x_te - mu) / sd          # the networks get standardized inputs

    heading("Two networks whose output is as large as their input")
    tg.manual_seed(0)
    fcn, unet = FCN(), UNet()
    out_f, out_u = fcn(tg.Tensor(z_te[:2])), unet(tg.Tensor(z_te[:2]))
    table(["U-Net stage", "shape"], [[k, str(v)] for k, v in unet.shapes.items()])
    say("""The FCN comes back from 7x7 in one step, a transposed conv with F = S = 4: every
        bottom pixel paints a 4x4 block of the output. The U-Net climbs back in two steps and, at
        each size, concatenates the contracting path's map of that size (the skip connection)
        before convolving, so the fine detail that pooling threw away is still at hand.""")
    check("FCN: 4x4 transposed conv, stride 4, from 7x7", transposed_size(7, 4, 4), 28, note="(7 - 1)*4 + 3 + 1")
    check("U-Net: 2x2 transposed conv, stride 2, from 7x7", transposed_size(7, 2, 2), unet.shapes["ConvTranspose2d"][2])
    check("FCN output shape = input shape", out_f.shape, (2, 1, 28, 28))
    check("U-Net output shape = input shape", out_u.shape, (2, 1, 28, 28))
    params = {name: sum(p.data.size for p in m.parameters()) for name, m in (("FCN", fcn), ("U-Net", unet))}
    table(["model", "parameters"], params.items())
    check("the U-Net is the smaller model", params["U-Net"], at_most=params["FCN"])

    heading("Training for a few seconds")
    losses = {"FCN": train(fcn, z_tr, m_tr, steps, batch, rng), "U-Net": train(unet, z_tr, m_tr, steps, batch, rng)}
    preds = {"FCN": predict(fcn, z_te), "U-Net": predict(unet, z_te)}
    results = {**baselines, **{f"{k} ({steps} Adam steps)": scores(p, m_te) for k, p in preds.items()}}
    table(["prediction", "pixel accuracy", "stroke IoU"], [[k, a, i] for k, (a, i) in results.items()], ".3f")
    say("""IoU (intersection over union) of the stroke pixels is the honest score here: predicting
        background everywhere is already right on most pixels, yet its IoU is 0.""")
    thr = baselines[f"threshold the input at {best_t:.2f}"]
    for name in ("FCN", "U-Net"):
        acc, iou = scores(preds[name], m_te)
        check(f"{name}: last training loss below the all-background loss",
              losses[name], at_most=float(-(stroke * np.log(stroke) + (1 - stroke) * np.log(1 - stroke))),
              note="entropy of the stroke fraction")
        check(f"{name}: pixel accuracy beats all background", acc, at_least=baselines["all background"][0] + 0.02)
        check(f"{name}: pixel accuracy beats the threshold", acc, at_least=thr[0] + 0.02)
        check(f"{name}: IoU beats the best threshold of the input", iou, at_least=thr[1] + 0.05)
    check("U-Net IoU - FCN IoU (the skip connections)", scores(preds["U-Net"], m_te)[1] - scores(preds["FCN"], m_te)[1],
          at_least=0.03, note="fewer parameters, yet sharper boundaries")
    say("""Where does the U-Net gain? The FCN's only view of the image is the 7x7 bottom map, and
        one transposed conv cannot say where inside its 4x4 block a stroke ends; the U-Net's last
        convolution sees the 28x28 encoder map beside the upsampled context. So compare the two
        on the pixels within one pixel of a stroke's edge (a 3x3 max pool of the mask differs
        from a 3x3 min pool there) and on all the others:""")
    edge = boundary(m_te)
    m_bool = m_te > 0.5
    rows = [[name, float((p == m_bool)[edge].mean()), float((p == m_bool)[~edge].mean())] for name, p in preds.items()]
    table(["model", "accuracy at the edges", "accuracy elsewhere"], rows, ".3f")
    check("share of test pixels at a stroke's edge", float(edge.mean()), at_least=0.1, at_most=0.5)
    check("U-Net - FCN accuracy at the edges", rows[1][1] - rows[0][1], at_least=0.02,
          note="the skips carry the fine position")

    plt = plots_wanted(opts)
    if plt is not None:
        show = 6
        rows = [("noisy input", x_te[:show, 0], "gray"), ("mask (clean > 0.5)", m_te[:show, 0], "gray"),
                (f"threshold {best_t:.2f}", (x_te[:show, 0] > best_t), "gray"),
                ("FCN", preds["FCN"][:show, 0], "gray"), ("U-Net", preds["U-Net"][:show, 0], "gray")]
        fig, axes = plt.subplots(len(rows), show, figsize=(1.6 * show, 1.7 * len(rows)))
        for r, (name, imgs, cmap) in enumerate(rows):
            for c in range(show):
                ax = axes[r, c]
                ax.imshow(imgs[c], cmap=cmap, vmin=0 if r else None, vmax=1 if r else None)
                ax.set_xticks([]), ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(name, fontsize=8)
        fig.suptitle("Segmenting digit strokes: input, target and predictions (held-out digits)")
        fig.tight_layout()
        save_figure(opts, fig, "34_dense_prediction")


if __name__ == "__main__":
    run(main)
