"""Inside a CNN: each conv layer's feature maps, their gradients, and the learned filters.

    import viz
    fm = viz.feature_maps(model, image, grads=True, path="out/")   # out/<layer>_maps.png, _grads.png
    fm.maps["conv1"].shape          # (out_channels, H, W): one tile per output channel
    viz.filters(model.conv1, "out/conv1_filters.png")

Activations are captured with forward hooks (``Module.register_forward_hook``): for
the duration of one forward pass each chosen module gets a hook that keeps its output
(:func:`capture_outputs`), and the hooks are removed after. After ``backward`` those
output tensors hold dScore/dActivation in ``.grad``.

Images are written by a small pure-NumPy PNG writer (zlib), so nothing here needs
matplotlib; with matplotlib installed :func:`feature_maps` also writes an annotated
``overview.png``. Colours: activations use a viridis-like ramp (dark = low, yellow =
high, each tile scaled to its own min..max unless ``scale="layer"``); anything
signed (gradients, filter weights) uses a red/white/blue diverging ramp centred on
zero: red positive, blue negative, white zero.
"""
from __future__ import annotations

import math
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    from tinygrad_cv.nn import Module
    from tinygrad_cv.tensors import Tensor

__all__ = ["FeatureMaps", "capture_outputs", "feature_maps", "filters", "tile_grid", "grid_shape",
           "colorize", "write_png", "png_bytes"]

# viridis at 0, 1/4, 1/2, 3/4, 1 (linear in between is close enough for a tile)
_SEQUENTIAL = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], float)
# ColorBrewer RdBu reversed: -1 blue ... 0 white ... +1 red
_DIVERGING = np.array([(33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247),
                       (253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43)], float)
BACKGROUND = 255
GUTTER_SIGNED = 150
MIN_TILE_PX = 96


# -- PNG and colours ------------------------------------------------------------------------------
def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 image, (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, as a PNG (zlib only)."""
    png = png_bytes(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image, (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, encoded as PNG (zlib only)."""
    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8:
        raise TypeError(f"write_png needs uint8 pixels, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or 0 in a.shape[:2]:
        raise ValueError(f"write_png needs (H, W), (H, W, 3) or (H, W, 4) pixels, got shape {image.shape}")
    h, w, c = a.shape
    rows = np.zeros((h, 1 + w * c), np.uint8)          # filter byte 0 ("None") before every row
    rows[:, 1:] = a.reshape(h, w * c)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    color_type = {1: 0, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + chunk(b"IEND", b""))


def _ramp(t: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0) * (len(anchors) - 1)
    i = np.minimum(t.astype(int), len(anchors) - 2)
    f = (t - i)[..., None]
    return np.rint(anchors[i] * (1 - f) + anchors[i + 1] * f).astype(np.uint8)


def colorize(a: np.ndarray, *, signed: bool, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Map values to RGB uint8. signed: red/white/blue centred on 0 over +-max|a| (or +-hi);
    else viridis over lo..hi (default a's min..max; a constant array maps to the ramp's bottom)."""
    a = np.asarray(a, dtype=np.float64)
    if signed:
        m = float(np.max(np.abs(a))) if hi is None and a.size else float(hi or 0.0)
        t = 0.5 + 0.5 * a / m if m > 0 else np.full(a.shape, 0.5)
        return _ramp(t, _DIVERGING)
    lo = float(a.min()) if lo is None else lo
    hi = float(a.max()) if hi is None else hi
    t = (a - lo) / (hi - lo) if hi > lo else np.zeros(a.shape)
    return _ramp(t, _SEQUENTIAL)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) for n tiles: cols = ceil(sqrt(n)), as square as possible (6 -> 2x3, 16 -> 4x4)."""
    if n < 1:
        raise ValueError(f"a grid needs at least one tile, got {n}")
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def tile_grid(tiles: np.ndarray, *, signed: bool = False, scale: str = "tile", cols: int | None = None,
              gap: int = 2, min_px: int = MIN_TILE_PX) -> np.ndarray:
    """Draw (N, H, W) arrays as one RGB grid image, tiles in reading order, white gutters of ``gap`` px.

    Each tile is enlarged by the integer factor ``ceil(min_px / max(H, W))`` (nearest neighbour);
    gutters are white, or grey for ``signed`` tiles (whose zero is white).
    ``scale`` = "tile" colours each tile over its own range, "layer" over the range of all tiles.
    The result has shape ``(rows*(H*k + gap) + gap, cols*(W*k + gap) + gap, 3)``.
    """
    t = np.asarray(tiles, dtype=np.float64)
    if t.ndim != 3:
        raise ValueError(f"tile_grid needs tiles shaped (N, H, W), got {t.shape}")
    if scale not in ("tile", "layer"):
        raise ValueError(f"scale must be 'tile' or 'layer', got {scale!r}")
    n, h, w = t.shape
    rows, c = grid_shape(n) if cols is None else (math.ceil(n / cols), cols)
    k = max(1, math.ceil(min_px / max(h, w)))
    th, tw = h * k, w * k
    # white gutters around sequential tiles; grey ones around diverging tiles, whose zero is white
    out = np.full((rows * (th + gap) + gap, c * (tw + gap) + gap, 3), GUTTER_SIGNED if signed else BACKGROUND,
                  np.uint8)
    amax, lo, hi = float(np.max(np.abs(t))) if t.size else 0.0, float(t.min()), float(t.max())
    for i in range(n):
        if signed:
            rgb = colorize(t[i], signed=True, hi=amax if scale == "layer" else None)
        else:
            rgb = colorize(t[i], signed=False, lo=lo if scale == "layer" else None,
                           hi=hi if scale == "layer" else None)
        r, q = divmod(i, c)
        y, x = gap + r * (th + gap), gap + q * (tw + gap)
        out[y:y + th, x:x + tw] = np.kron(rgb, np.ones((k, k, 1), np.uint8))
    return out


# -- capturing module outputs -------------------------------------------------------------------
@contextmanager
def capture_outputs(model: Module, kinds: type | tuple[type, ...] | None = None,
                    names: Iterable[str] | None = None) -> Iterator[dict[str, Tensor]]:
    """Record the output of chosen sub-modules during the forward passes run inside the block.

    Chooses modules of ``kinds`` (classes) and/or with dotted ``names`` from
    ``model.named_modules()``; yields a dict name -> output Tensor (the last call's),
    filled as the forward runs, in the order the modules ran. Each chosen module gets
    a forward hook for the block, removed after (also when the block raises).
    """
    wanted = None if names is None else set(names)
    chosen = [(n, m) for n, m in model.named_modules()
              if (kinds is None or isinstance(m, kinds)) and (wanted is None or n in wanted)]
    store: dict[str, Any] = {}

    def recorder(name: str) -> Any:
        def hook(module: Any, inputs: tuple, output: Any) -> None:
            store.pop(name, None)            # keep "the order they ran" for repeated calls too
            store[name] = output
        return hook

    handles = []
    try:
        for name, module in chosen:
            handles.append(module.register_forward_hook(recorder(name)))
        yield store
    finally:
        for h in handles:
            h.remove()


# -- feature maps ---------------------------------------------------------------------------------
@dataclass
class FeatureMaps:
    """What :func:`feature_maps` saw: per conv layer, activations and (with grads=True) gradients.

    ``maps[name]`` and ``grads[name]`` are (out_channels, H, W) arrays for the single image;
    ``images``/``grad_images`` the RGB grids drawn from them (one tile per channel);
    ``grads`` is None unless a backward pass ran. ``files`` lists the PNGs written.
    """

    input: np.ndarray
    maps: dict[str, np.ndarray]
    images: dict[str, np.ndarray]
    grads: dict[str, np.ndarray] | None = None
    grad_images: dict[str, np.ndarray] | None = None
    prediction: int | None = None
    target: int | None = None
    scores: np.ndarray | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def layers(self) -> list[str]:
        return list(self.maps)


def _as_batch(image: Any) -> np.ndarray:
    """One image as a (1, C, H, W) float32 array: (H, W), (C, H, W) or (1, C, H, W); uint8 -> [0, 1]."""
    a = np.asarray(getattr(image, "data", image))
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / np.float32(255.0)
    elif a.dtype.kind not in "fiu":
        raise TypeError(f"feature_maps: the image must hold numbers, got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        a = a[None, None]
    elif a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[0] != 1:
        raise ValueError(f"feature_maps takes one image, (H, W), (C, H, W) or (1, C, H, W); got shape {a.shape}")
    return a


def _conv_names(model: Module) -> list[str]:
    from tinygrad_cv.nn import Conv2d
    return [n for n, m in model.named_modules() if isinstance(m, Conv2d)]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name) or "model"


def feature_maps(model: Module, image: Any, *, layers: Sequence[str] | None = None, grads: bool = False,
                 target: int | None = None, path: str | Path | None = None, scale: str = "tile") -> FeatureMaps:
    """Run one image through ``model`` and draw each conv layer's activations as a grid of tiles.

    ``layers``: dotted names of Conv2d modules (default: every Conv2d in
    ``model.named_modules()``, in order). ``grads=True`` also backpropagates from the
    score of class ``target`` (default: the predicted class) and draws
    d score / d activation per layer: red where raising the activation raises the score,
    blue where it lowers it. Parameter gradients are restored afterwards and the model's
    train/eval mode too (the pass runs in eval mode). ``path``: a directory that receives
    ``input.png``, ``<layer>_maps.png``, ``<layer>_grads.png`` (with grads) and, with
    matplotlib installed, an annotated ``overview.png``.
    """
    import tinygrad_cv as tg
    from tinygrad_cv.nn import Conv2d

    convs = _conv_names(model)
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layers to show feature maps of")
    if layers is None:
        chosen = convs
    else:
        chosen = list(layers)
        unknown = [n for n in chosen if n not in convs]
        if unknown:
            raise ValueError(f"no Conv2d layer named {', '.join(map(repr, unknown))} in "
                             f"{type(model).__name__}; conv layers: {', '.join(convs)}")
    x = _as_batch(image)
    modes = [(m, m.training) for m in model.modules()]       # parents before their children
    params = list(model.parameters())
    saved = [p.grad for p in params]
    model.eval()
    try:
        with capture_outputs(model, Conv2d, chosen) as outs:
            if grads:
                logits = model(tg.Tensor(x))
            else:
                with tg.no_grad():
                    logits = model(tg.Tensor(x))
        missing = [n for n in chosen if n not in outs]
        if missing:
            raise RuntimeError(f"the forward pass of {type(model).__name__} never called {', '.join(missing)}")
        scores = np.asarray(logits.data)
        pred = int(np.argmax(scores.reshape(-1))) if scores.ndim == 2 and scores.shape[0] == 1 else None
        tgt = None
        grad_maps = None
        if grads:
            if scores.ndim == 2 and scores.shape[0] == 1:
                tgt = pred if target is None else int(target)
                if not 0 <= tgt < scores.shape[1]:
                    raise ValueError(f"target class {tgt} is out of range for {scores.shape[1]} classes")
                root = logits[0, tgt]
            else:
                root = logits.sum()
            root.backward()
            grad_maps = {}
            for n in chosen:
                g = outs[n].grad
                grad_maps[n] = np.zeros(outs[n].shape[1:], np.float32) if g is None else np.asarray(g)[0]
    finally:
        for p, g in zip(params, saved):
            p.grad = g
        for m, mode in modes:        # train(mode) sets a whole subtree: parents first, children after
            m.train(mode)
    order = [n for n in outs if n in chosen]
    maps = {n: np.asarray(outs[n].data)[0] for n in order}
    result = FeatureMaps(input=x[0], maps=maps,
                         images={n: tile_grid(a, scale=scale) for n, a in maps.items()},
                         prediction=pred, target=tgt, scores=scores)
    if grad_maps is not None:
        result.grads = {n: grad_maps[n] for n in order}
        result.grad_images = {n: tile_grid(g, signed=True, scale="layer") for n, g in result.grads.items()}
    if path is not None:
        _write_maps(result, Path(path))
    return result


def _write_maps(fm: FeatureMaps, folder: Path) -> None:
    if folder.suffix.lower() == ".png":
        raise ValueError(f"feature_maps(path=...) is a directory for several PNGs, got the file name {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    inp = fm.input if fm.input.shape[0] in (1, 3) else fm.input[:1]
    img = inp.mean(axis=0) if inp.shape[0] == 1 else inp
    if img.ndim == 2:
        fm.files.append(write_png(folder / "input.png", tile_grid(img[None], scale="tile", min_px=112)))
    else:
        rgb = np.moveaxis(img, 0, -1)
        rgb = (255 * (rgb - rgb.min()) / max(float(np.ptp(rgb)), 1e-12)).astype(np.uint8)
        k = max(1, math.ceil(112 / max(rgb.shape[:2])))
        fm.files.append(write_png(folder / "input.png", np.kron(rgb, np.ones((k, k, 1), np.uint8))))
    for n, im in fm.images.items():
        fm.files.append(write_png(folder / f"{_safe(n)}_maps.png", im))
    for n, im in (fm.grad_images or {}).items():
        fm.files.append(write_png(folder / f"{_safe(n)}_grads.png", im))
    overview = _overview(fm, folder / "overview.png")
    if overview is not None:
        fm.files.append(overview)


def _tile_corners(n: int, h: int, w: int, min_px: int = MIN_TILE_PX, gap: int = 2) -> list[tuple[int, int]]:
    """Top-left pixel of each tile in :func:`tile_grid`'s layout (same arguments)."""
    _, cols = grid_shape(n)
    k = max(1, math.ceil(min_px / max(h, w)))
    return [(gap + r * (h * k + gap), gap + q * (w * k + gap)) for r, q in (divmod(i, cols) for i in range(n))]


def _overview(fm: FeatureMaps, path: Path) -> Path | None:
    """One annotated figure (matplotlib, if installed): input and class scores on top, then one
    row per layer with its maps (and gradients, with a colour bar), drawn from the same tile grids."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap, Normalize
    except ImportError:
        return None
    names = list(fm.maps)
    cols = 2 if fm.grads is not None else 1
    heights = [1.0] + [fm.images[n].shape[0] / fm.images[n].shape[1] for n in names]
    fig = plt.figure(figsize=(4.2 * cols + 0.6, 4.2 * sum(heights) * (0.85 if cols == 2 else 1.0)))
    grid = fig.add_gridspec(len(heights), cols, height_ratios=heights, hspace=0.28, wspace=0.12)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(fm.input.mean(axis=0), cmap="gray")
    ax.set_title("input", fontsize=10)
    ax.axis("off")
    if fm.scores is not None and fm.scores.ndim == 2 and fm.scores.shape[0] == 1 and cols == 2:
        s = fm.scores[0].astype(np.float64)
        p = np.exp(s - s.max())
        p /= p.sum()
        ax = fig.add_subplot(grid[0, 1])
        colors = ["#b71c1c" if i == fm.target else "#1f5fa8" if i == fm.prediction else "#9e9e9e"
                  for i in range(len(p))]
        ax.bar(np.arange(len(p)), p, color=colors)
        ax.set_xticks(np.arange(len(p)))
        ax.set_ylim(0, 1)
        ax.set_title(f"softmax: predicted {fm.prediction} (p = {p[fm.prediction]:.2f})"
                     + (f", gradients of class {fm.target}'s score" if fm.target is not None else ""), fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    diverging = ListedColormap(_ramp(np.linspace(0, 1, 256), _DIVERGING) / 255.0)
    for row, name in enumerate(names, start=1):
        panels = [(fm.images[name], fm.maps[name], False)]
        if fm.grads is not None:
            panels.append((fm.grad_images[name], fm.grads[name], True))
        for col, (image, a, signed) in enumerate(panels):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(image, interpolation="nearest")
            ax.axis("off")
            c, h, w = a.shape
            what = "∂score/∂activation (red +, blue −)" if signed else "activations (each tile: min..max)"
            ax.set_title(f"{name}: {c} maps {h}x{w}\n{what}", fontsize=9)
            for i, (y, x) in enumerate(_tile_corners(c, h, w)):
                ax.text(x + 2, y + 2, str(i), fontsize=6, va="top", ha="left",
                        color="#222222" if signed else "white")
            if signed:
                amax = float(np.max(np.abs(a))) or 1.0
                bar = fig.colorbar(plt.cm.ScalarMappable(Normalize(-amax, amax), diverging), ax=ax,
                                   fraction=0.04, pad=0.02)
                bar.ax.tick_params(labelsize=7)
                bar.formatter.set_powerlimits((-2, 2))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# -- filters --------------------------------------------------------------------------------------
def filters(conv: Any, path: str | Path | None = None, *, reduce: str = "auto") -> np.ndarray:
    """Draw a conv layer's learned filters as a grid (red positive weights, blue negative, white 0).

    ``conv``: a Conv2d (or its weight, a Tensor/array (out, in, kh, kw)). ``reduce``:
    "auto" = one tile per filter when in_channels is 1 (a first layer on grey images),
    an RGB tile per filter when it is 3 (colour first layer), otherwise "mean";
    "mean" = per output channel the mean over its input channels (one tile per filter);
    "first" = the first input channel's kernel; "all" = every (out, in) kernel, one row
    per output channel. Each tile is scaled symmetrically to its own max |w|.
    Returns the RGB image; writes it as a PNG when ``path`` is given.
    """
    w = np.asarray(getattr(getattr(conv, "weight", conv), "data", getattr(conv, "weight", conv)), np.float64)
    if w.ndim != 4:
        raise ValueError(f"filters() needs conv weights shaped (out, in, kh, kw), got shape {w.shape}")
    if reduce not in ("auto", "mean", "first", "all"):
        raise ValueError(f"reduce must be 'auto', 'mean', 'first' or 'all', got {reduce!r}")
    o, i, kh, kw = w.shape
    if reduce == "auto" and i == 3:
        image = _rgb_filters(w)
    else:
        if reduce == "all":
            tiles, cols = w.reshape(o * i, kh, kw), i
        elif reduce == "first" or i == 1:
            tiles, cols = w[:, 0], None
        else:
            tiles, cols = w.mean(axis=1), None
        image = tile_grid(tiles, signed=True, scale="tile", cols=cols, min_px=64)
    if path is not None:
        write_png(path, image)
    return image


def _rgb_filters(w: np.ndarray) -> np.ndarray:
    o, _, kh, kw = w.shape
    rows, cols = grid_shape(o)
    k = max(1, math.ceil(64 / max(kh, kw)))
    gap = 2
    out = np.full((rows * (kh * k + gap) + gap, cols * (kw * k + gap) + gap, 3), GUTTER_SIGNED, np.uint8)
    for f in range(o):
        t = np.moveaxis(w[f], 0, -1)
        m = float(np.max(np.abs(t))) or 1.0
        rgb = np.rint(127.5 + 127.5 * t / m).astype(np.uint8)
        r, q = divmod(f, cols)
        y, x = gap + r * (kh * k + gap), gap + q * (kw * k + gap)
        out[y:y + kh * k, x:x + kw * k] = np.kron(rgb, np.ones((k, k, 1), np.uint8))
    return out
