"""Translation equivariance: why a conv layer shares its weights, and what pooling adds.

Move a digit two pixels to the right and a conv layer's feature maps move two
pixels to the right, unchanged otherwise: conv(shift(x)) = shift(conv(x)). The
course's definition of equivariance, S[phi(X)] = phi(T(X)), with T and S both
the same shift. A fully connected layer has no such property. Pooling turns the
equivariance into (approximate) invariance. And a convolution is itself a matrix
product, with a very sparse matrix whose entries are the filter's few weights
repeated along its diagonals (a Toeplitz matrix): weight sharing, made visible.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, digits, heading, on_canvas, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn

SIZE, CORNER = 40, 6          # a 40x40 canvas with the digit's 28x28 box at (6, 6): room to move


def shift(maps: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate (N, C, H, W) maps by (dy, dx) pixels, zero fill (the engine's data.shift)."""
    return tg.data.shift(maps, dy, dx)


def run_layer(layer: nn.Module, canvases: np.ndarray) -> np.ndarray:
    with tg.no_grad():
        return layer(tg.Tensor(canvases)).numpy()


def toeplitz_1d(h: np.ndarray, n: int) -> np.ndarray:
    """The slide's (n + m - 1) x n matrix of the full 1-D convolution h * x: T[i, j] = h[i - j]."""
    m = len(h)
    T = np.zeros((n + m - 1, n), dtype=np.float64)
    for j in range(n):
        T[j:j + m, j] = h
    return T


def conv_matrix_2d(w: np.ndarray, n: int) -> np.ndarray:
    """The (n*n) x (n*n) matrix M with M @ x.ravel() == F.conv2d(x, w, padding=f//2) for one n x n channel.

    Row r*n + c is output pixel (r, c); it holds filter tap w[a, b] in the column of input
    pixel (r + a - f//2, c + b - f//2) when that pixel is inside the image (zero padding).
    """
    f = w.shape[0]
    p = f // 2
    M = np.zeros((n * n, n * n), dtype=np.float64)
    for r in range(n):
        for c in range(n):
            for a in range(f):
                for b in range(f):
                    y, x = r + a - p, c + b - p
                    if 0 <= y < n and 0 <= x < n:
                        M[r * n + c, y * n + x] = w[a, b]
    return M


def is_toeplitz(A: np.ndarray) -> bool:
    """Every descending diagonal constant: A[i, j] == A[i + 1, j + 1]."""
    return bool(np.array_equal(A[:-1, :-1], A[1:, 1:]))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_digits = 8 if opts.quick else 32
    x28, _ = digits("test", n_digits)
    canvases = on_canvas(x28, SIZE, CORNER, CORNER)[:, None]           # (N, 1, 40, 40)
    shifts = [(0, 1), (2, -3), (-4, 5), (6, 6)]

    heading("A conv layer commutes with shifts")
    tg.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    say(f"""Each digit sits in a {SIZE}x{SIZE} blank canvas, so it can move by up to {CORNER} pixels without
        leaving it. Our 'layer' is a small stack: a 5x5 conv with 8 filters, a ReLU and a 3x3 conv
        (random weights and biases: equivariance needs no training). For each shift (dy, dx) we
        compare conv(shift(x)) with shift(conv(x)). Zero padding makes the two differ in a frame
        along the canvas edge: there shift() fills in zeros, while the convolution of blank
        canvas gives relu(bias)-dependent values. Away from that frame they must agree to the
        last bit of float32 rounding.""")
    base = run_layer(conv, canvases)
    rows = []
    for dy, dx in shifts:
        a = run_layer(conv, shift(canvases, dy, dx))
        b = shift(base, dy, dx)
        m = max(abs(dy), abs(dx)) + 3                                  # the frame: shift + receptive radius
        inner = (slice(None), slice(None), slice(m, SIZE - m), slice(m, SIZE - m))
        rows.append([f"({dy}, {dx})", float(np.abs(a - b).max()), float(np.abs(a[inner] - b[inner]).max()), m])
    table(["shift", "max |diff|, whole map", "max |diff|, away from the border", "frame width"], rows, ".3g")
    check("conv(shift(x)) == shift(conv(x)) away from the border, worst shift", max(r[2] for r in rows), 0.0,
          tol=1e-6, note="equivariance")
    check("... but not at the border (zero padding)", max(r[1] for r in rows), at_least=1e-3,
          note="the course: 'ignoring the values at the boundary'")

    heading("A fully connected layer does not")
    lin = nn.Linear(SIZE * SIZE, SIZE * SIZE)
    say(f"""A fully connected layer from the {SIZE}x{SIZE} canvas to a {SIZE}x{SIZE} map has its own weight for
        every (input pixel, output pixel) pair, {SIZE ** 4:,} in all, with nothing tying the weights of
        one location to those of another. Shift the digit and its output changes arbitrarily.""")
    flat = canvases.reshape(len(canvases), -1)
    out = run_layer(lin, flat).reshape(canvases.shape)
    rows_fc = []
    for dy, dx in shifts:
        a = run_layer(lin, shift(canvases, dy, dx).reshape(len(canvases), -1)).reshape(canvases.shape)
        b = shift(out, dy, dx)
        m = max(abs(dy), abs(dx)) + 3
        inner = (slice(None), slice(None), slice(m, SIZE - m), slice(m, SIZE - m))
        rel = float(np.linalg.norm(a[inner] - b[inner]) / np.linalg.norm(b[inner]))
        rows_fc.append([f"({dy}, {dx})", rel])
    table(["shift", "|fc(shift x) - shift(fc x)| / |shift(fc x)|, away from the border"], rows_fc, ".3f")
    check("fully connected: relative mismatch, smallest over the shifts", min(r[1] for r in rows_fc), at_least=0.5,
          note="order 1: no equivariance")
    say("""(The only fully connected layers that do commute with every shift are those whose weight
        matrix is a convolution's matrix: section 4 builds one.)""")

    heading("Pooling: from equivariance to (approximate) invariance")
    detector = nn.Sequential(conv[0], nn.ReLU())                      # the first conv + ReLU: a detector stage
    say("""Often we care whether a feature is present, not exactly where. Pooling summarises a
        neighbourhood by its maximum, so a small shift changes the pooled map less than the map it
        came from. We take the detector stage (the first 5x5 conv and its ReLU), shift the digit by
        1 to 4 pixels and measure how much each representation changes (relative norm of the
        difference, compared position by position, without undoing the shift): the raw pixels,
        the detector's maps, 2x2 and 4x4 max pooling of them, and a global max over the whole map
        (one number per channel).""")
    feats = run_layer(detector, canvases)

    def reps(maps: np.ndarray) -> dict[str, np.ndarray]:
        t = tg.Tensor(maps)
        return {"detector maps": maps, "max pool 2x2": F.max_pool2d(t, 2).numpy(),
                "max pool 4x4": F.max_pool2d(t, 4).numpy(), "global max": maps.max(axis=(2, 3))}

    ref = reps(feats)
    names = ["pixels"] + list(ref)
    change = {k: [] for k in names}
    moves = (1, 2, 3, 4)
    for d in moves:
        moved = shift(canvases, d, d)
        change["pixels"].append(float(np.linalg.norm(moved - canvases) / np.linalg.norm(canvases)))
        new = reps(run_layer(detector, moved))
        for k in ref:
            change[k].append(float(np.linalg.norm(new[k] - ref[k]) / np.linalg.norm(ref[k])))
    table(["representation"] + [f"shift ({d}, {d})" for d in moves], [[k] + change[k] for k in names], ".3f")
    one = [change[k][0] for k in ("detector maps", "max pool 2x2", "max pool 4x4")]
    check("1-pixel shift: change of detector maps > 2x2-pooled > 4x4-pooled", bool(one[0] > one[1] > one[2]), True,
          note=f"{one[0]:.3f} > {one[1]:.3f} > {one[2]:.3f}")
    check("1-pixel shift: 4x4 pooling's change relative to the maps it pools", one[2] / one[0], at_most=0.8)
    check("global max over the map: change under any shift", max(change["global max"]), 0.0, tol=1e-6,
          note="exactly invariant: the max of an equivariant map")
    say(f"""Local pooling buys only partial invariance: a 1-pixel shift still changes the 2x2-pooled maps
        by {one[1]:.0%} (against {one[0]:.0%} before pooling), and the benefit fades as the shift grows: by a
        shift of 4 the 4x4-pooled maps have changed by {change["max pool 4x4"][3]:.0%}. The global maximum
        forgets position entirely (as long as the digit stays inside the canvas). A shift by exactly
        the pooling stride is different again: the pooled map then moves by one cell, equivariance
        at the coarser scale.""")
    p2 = F.max_pool2d(tg.Tensor(feats), 2).numpy()
    p2s = F.max_pool2d(tg.Tensor(run_layer(detector, shift(canvases, 2, 2))), 2).numpy()
    inner = (slice(None), slice(None), slice(3, SIZE // 2 - 3), slice(3, SIZE // 2 - 3))
    check("shift by 2 -> 2x2-pooled map shifts by 1, away from the border",
          float(np.abs(p2s[inner] - shift(p2, 1, 1)[inner]).max()), 0.0, tol=1e-6)

    heading("Weight sharing as a matrix: 1-D")
    h = np.array([1.0, -2.0, 0.5])
    n1 = 8
    T = toeplitz_1d(h, n1)
    xs = np.random.default_rng(0).standard_normal(n1)
    say(f"""The slide writes the full 1-D convolution of a length-{len(h)} filter h with a length-{n1} signal as a
        ({n1 + len(h) - 1} x {n1}) matrix: column j holds h, moved down by j. Every descending diagonal is one
        filter tap, so the matrix is Toeplitz. Deep-learning libraries compute cross-correlation
        (they slide the filter without flipping it), so F.conv2d with padding m - 1 equals the slide's
        matrix built from the reversed filter.""")
    print("    T =")
    for row in T:
        print("     ", " ".join(f"{v:5.1f}" for v in row))
    check("T is Toeplitz (diagonals constant)", is_toeplitz(T), True)
    check("T @ x == numpy's full convolution", T @ xs, np.convolve(xs, h), tol=1e-12)
    with tg.no_grad():
        y = F.conv2d(tg.Tensor(xs.reshape(1, 1, 1, n1).astype(np.float32)),
                     tg.Tensor(h.reshape(1, 1, 1, -1).astype(np.float32)), padding=(0, len(h) - 1)).numpy().ravel()
    check("toeplitz(reversed h) @ x == F.conv2d(x, h, padding m-1)", toeplitz_1d(h[::-1], n1) @ xs, y, tol=1e-5)

    heading("Weight sharing as a matrix: 2-D, a doubly block Toeplitz matrix")
    f = 3
    w = np.random.default_rng(1).standard_normal((f, f)).round(2)
    n_small = 6
    M = conv_matrix_2d(w, n_small)
    blocks = M.reshape(n_small, n_small, n_small, n_small).transpose(0, 2, 1, 3)   # (block row, block col, n, n)
    say(f"""For an n x n image and a {f}x{f} filter with zero padding 1, row (r, c) of the matrix holds the 9 taps in
        the columns of the input pixels around (r, c). Grouped into n x n blocks (one block per pair of
        image rows), only the blocks on the three central block diagonals are nonzero, each block is
        itself Toeplitz, and blocks on the same block diagonal are equal: a doubly block Toeplitz
        matrix. (The slide's "doubly block circulant" is the variant that wraps around at the edges
        instead of padding with zeros.)""")
    check("every block is Toeplitz", all(is_toeplitz(blocks[i, j]) for i in range(n_small) for j in range(n_small)),
          True)
    check("equal blocks along each block diagonal", all(np.array_equal(blocks[i, j], blocks[i + 1, j + 1])
                                                       for i in range(n_small - 1) for j in range(n_small - 1)), True)
    check("blocks away from the 3 central block diagonals are zero",
          all(not blocks[i, j].any() for i in range(n_small) for j in range(n_small) if abs(i - j) > 1), True)
    n = 28
    M28 = conv_matrix_2d(w, n)
    digit = x28[0].reshape(28, 28).astype(np.float64)
    with tg.no_grad():
        y28 = F.conv2d(tg.Tensor(digit[None, None].astype(np.float32)),
                       tg.Tensor(w[None, None].astype(np.float32)), padding=1).numpy().ravel()
    check("M @ digit.ravel() vs F.conv2d(digit, w, padding=1), 28x28: max |diff|",
          float(np.abs(M28 @ digit.ravel() - y28).max()), 0.0, tol=1e-6)
    nnz, distinct = int(np.count_nonzero(M28)), len(np.unique(M28[M28 != 0]))
    dense = nn.Linear(n * n, n * n, bias=False)
    layer = nn.Conv2d(1, 1, f, padding=1, bias=False)
    rows = [["dense layer 784 -> 784: weights", int(dense.weight.data.size), n ** 4],
            ["conv matrix: entries", M28.size, n ** 4],
            ["conv matrix: nonzero entries (sparse connectivity)", nnz, (f * n - 2) ** 2],
            ["conv matrix: distinct values (parameter sharing)", distinct, f * f],
            ["nn.Conv2d(1, 1, 3): weights", int(layer.weight.data.size), f * f]]
    table(["28x28 image, 3x3 filter", "count", "formula"], rows)
    say(f"""Of the {n ** 4:,} entries only {nnz:,} are nonzero ({nnz / n ** 4:.2%}): an output pixel sees only its 3x3
        neighbourhood (sparse connectivity; along each axis the in-bounds (output, tap) pairs number
        3n - 2, so (3n - 2)^2 in all). And those {nnz:,} entries take only {distinct} distinct values, the
        filter's: the same weights are used at every location (parameter sharing). The slides' count
        for C input and K output channels: a fully connected layer needs W1 W2 H1 H2 C K weights, a
        conv layer F^2 C K.""")
    check("nonzeros of the conv matrix", nnz, (f * n - 2) ** 2, note="(3n - 2)^2")
    check("distinct nonzero values = the filter's taps", distinct, f * f)
    C, K, s = 3, 16, 12
    fc_ck = nn.Linear(C * s * s, K * s * s, bias=False)
    conv_ck = nn.Conv2d(C, K, f, padding=1, bias=False)
    check(f"FC, {s}x{s}x{C} -> {s}x{s}x{K}: weights", int(fc_ck.weight.data.size), s * s * s * s * C * K,
          note="slides: W1 W2 H1 H2 C K")
    check(f"conv {f}x{f}, {C} -> {K} channels: weights", int(conv_ck.weight.data.size), f * f * C * K,
          note="slides: F^2 C K")
    check("parameter-sharing saving (FC / conv)", fc_ck.weight.data.size / conv_ck.weight.data.size,
          s ** 4 / f ** 2, rel=1e-12, note="W1 W2 H1 H2 / F^2")
    say(f"""On a {s}x{s} map that saving is already {s ** 4 / f ** 2:,.0f}-fold; on 28x28 it is {n ** 4 / f ** 2:,.0f}-fold, and it grows
        with the fourth power of the image side while the conv layer's size does not change at all.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [1, 3.2]})
        axes[0].imshow(np.ma.masked_equal(T, 0), cmap="coolwarm", interpolation="nearest")
        axes[0].set_title(f"1-D: {T.shape[0]}x{T.shape[1]}, filter of 3")
        axes[1].imshow(np.ma.masked_equal(M, 0), cmap="coolwarm", interpolation="nearest")  # colour = tap value
        for k in range(0, n_small * n_small + 1, n_small):
            axes[1].axhline(k - 0.5, color="C1", lw=0.5), axes[1].axvline(k - 0.5, color="C1", lw=0.5)
        axes[1].set_title(f"2-D: {n_small}x{n_small} image, 3x3 filter -> {M.shape[0]}x{M.shape[1]} matrix "
                          f"(blocks of {n_small}; colour = the tap)", fontsize=9)
        fig.suptitle("convolution as a matrix: nonzero entries (blank = 0), each colour one filter tap", y=1.02)
        save_figure(opts, fig, "30_toeplitz_sparsity")
        dy, dx = shifts[2]
        moved = shift(canvases[:1], dy, dx)
        fm, fm_moved = base[0, 0], run_layer(conv, moved)[0, 0]
        fc0, fc_moved = out[0, 0], run_layer(lin, moved.reshape(1, -1)).reshape(SIZE, SIZE)
        panels = [("digit", canvases[0, 0]), (f"digit shifted ({dy}, {dx})", moved[0, 0]),
                  ("conv feature map", fm), ("conv map of the shifted digit", fm_moved),
                  ("fully connected output", fc0), ("FC output of the shifted digit", fc_moved)]
        fig, axes = plt.subplots(1, 6, figsize=(15, 3))
        for ax, (title, img) in zip(axes, panels):
            ax.imshow(img, cmap="gray" if "digit" == title.split()[0] else "viridis")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        fig.suptitle("a conv map moves with the digit; a fully connected output does not")
        save_figure(opts, fig, "30_shift_pairs")


if __name__ == "__main__":
    run(main)
