"""The small toolkit every lesson script uses.

A lesson is a module ``lessons/NN_topic.py`` (NN: its place in the course; the CLI
finds every such file) whose docstring's first line is its title (or which sets a
``TITLE`` string), with a ``main(argv)`` function and the usual script ending::

    '''Backprop on a computational graph.

    A paragraph saying what the student will see.
    '''
    from __future__ import annotations

    import sys
    from pathlib import Path

    if not __package__:  # run as a file: make the checkout's `lessons` package importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import tinygrad_cv as tg
    from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start

    def main(argv: list[str] | None = None) -> None:
        opts = start(__doc__, argv)          # parses --quick / --out DIR, seeds every generator
        heading("The add gate")
        say("An add gate hands its upstream gradient to both inputs unchanged.")
        x, y = tg.Value(2.0), tg.Value(3.0)
        (x + y).backward()
        check("dL/dx", x.grad, 1.0, tol=1e-12, note="add distributes")   # ✓ line, or CheckFailed
        plt = plots_wanted(opts)             # None without --out or without matplotlib
        if plt is not None:
            fig, ax = plt.subplots()
            ...
            save_figure(opts, fig, "NN_topic_name")

    if __name__ == "__main__":
        run(main)

``tgcv lesson run NN`` imports the module and calls ``main(["--quick", "--out", DIR])``;
a :class:`CheckFailed` (an AssertionError) becomes one error line and exit status 1.
Keep ``--quick`` under ~10 s on two cores: fewer examples and steps, same checks.

The helpers:

``start(doc, argv) -> Options``   parse ``--quick`` and ``--out DIR``, print the title, seed
                                  ``tg.manual_seed`` and NumPy's legacy generator with 0.
``heading(text)``                 a numbered section heading.
``say(text)``                     explanation text (dedented, wrapped, indented).
``table(header, rows)``           an aligned table; floats printed with ``fmt``.
``check(what, value, expected=None, *, tol, rel, at_least, at_most)``
                                  compare and print ``✓ what = value (expected ...)``; on a
                                  mismatch raise :class:`CheckFailed` naming both numbers.
``pyplot()``                      matplotlib's pyplot on the Agg backend, or None if absent.
``plots_wanted(opts)``            pyplot when --out was given and matplotlib is there, else None.
``save_figure(opts, fig, name)``  write a matplotlib figure to ``--out/name.png``.
``save_graph(opts, obj, name)``   render a Value/Tensor/Graph with ``viz.render`` to ``--out/name.svg``.
``digits(split, n, skip)``        shipped MNIST digits as float32 rows in [0, 1] (n, 784) and labels.
``accuracy(scores, labels)``      fraction of rows whose largest score is the label.
``on_canvas(images, size, top, left)``  digits pasted into blank size x size canvases.
``train_steps(model, opt, loader, steps)``  exactly ``steps`` mini-batch steps of cross-entropy.
``few_per_class(labels, classes, n, seed)``  indices of n random examples of each class.
``fit_full_batch(model, params, x, y, steps, lr)``  Adam on the whole small set at every step.
``train_lenet(images, labels, epochs)``  LeNet-5 trained with the library's recipe.
``pretrain_on_0_to_4(images, labels, n, epochs)``  the same with 5 outputs on digits 0-4, and how
                                  many digits it saw.
``lenet_codes(model, images)``    LeNet-5's 84 last-hidden-layer activations per digit.
``pca(x, k)``                     projections on the top-k principal directions, the directions, variances.
``run(main)``                     the script entry point: a failed check prints one ✗ line, exit 1.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ["Options", "CheckFailed", "start", "heading", "say", "table", "check", "pyplot",
           "plots_wanted", "save_figure", "save_graph", "digits", "accuracy", "train_steps", "few_per_class",
           "fit_full_batch", "train_lenet", "pretrain_on_0_to_4", "lenet_codes", "pca", "on_canvas", "run"]

WIDTH = 88
_section = 0


class CheckFailed(AssertionError):
    """A lesson's number disagrees with the course or with theory."""


@dataclass(frozen=True)
class Options:
    """What the command line asked for: ``quick`` (small and fast) and ``out`` (figures folder or None)."""

    quick: bool = False
    out: Path | None = None
    data: Path | None = None          # --data DIR: CIFAR-10's binary batches (lessons 01 and 02)


def title_of(doc: str | None) -> str:
    """The first non-empty line of a docstring, without a trailing period."""
    for line in (doc or "").strip().splitlines():
        if line.strip():
            return line.strip().rstrip(".")
    return ""


def start(doc: str | None, argv: Sequence[str] | None = None) -> Options:
    """Parse the lesson's options, print its title and seed every random generator with 0."""
    global _section
    parser = argparse.ArgumentParser(description=title_of(doc))
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer steps (seconds)")
    parser.add_argument("--out", metavar="DIR", type=Path, help="folder for figures (none written without it)")
    parser.add_argument("--data", metavar="DIR", type=Path,
                        help="CIFAR-10 binary batches (data_batch_*.bin) to use instead of the digits")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    import tinygrad_cv as tg

    tg.manual_seed(0)
    np.random.seed(0)
    _section = 0
    for stream in (sys.stdout, sys.stderr):  # a terminal without UTF-8 still gets readable text
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    title = title_of(doc) + ("  [quick]" if args.quick else "")
    print(f"{title}\n{'=' * len(title)}")
    return Options(quick=args.quick, out=args.out, data=args.data)


def heading(text: str) -> None:
    """Print a numbered section heading."""
    global _section
    _section += 1
    line = f"{_section}. {text}"
    print(f"\n{line}\n{'-' * len(line)}")


def say(text: str) -> None:
    """Print explanation text: dedented, re-wrapped paragraph by paragraph, indented two spaces."""
    for para in textwrap.dedent(text).strip().split("\n\n"):
        print(textwrap.fill(" ".join(para.split()), WIDTH, initial_indent="  ", subsequent_indent="  "))


def _fmt(x: Any, fmt: str = ".4g") -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return format(float(x) + 0.0, fmt)  # + 0.0 turns -0.0 into 0.0
    if isinstance(x, (list, tuple, np.ndarray)):
        arr = np.asarray(x)
        if arr.dtype.kind in "fiub" and arr.ndim == 1 and arr.size <= 10:
            return "[" + ", ".join(_fmt(v.item(), fmt) for v in arr) + "]"
        if arr.dtype.kind in "fiub" and arr.ndim:
            return np.array2string(arr, precision=4, threshold=8, edgeitems=3, separator=", ")
    return str(x)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = ".4g") -> None:
    """Print rows under a header, columns right-aligned; floats with ``fmt``."""
    cells = [[str(h) for h in header]] + [[_fmt(c, fmt) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


def check(what: str, value: Any, expected: Any = None, *, tol: float | None = None, rel: float | None = None,
          at_least: float | None = None, at_most: float | None = None, note: str = "") -> Any:
    """Check one number (or array, or truth) and print a ✓ line; raise CheckFailed otherwise.

    ``expected`` with ``tol`` (absolute) and/or ``rel`` (relative) compares numbers or
    arrays elementwise; without either the comparison is exact (use it for bools and
    integers). ``at_least`` / ``at_most`` bound the value from below / above. ``note``
    says where the expected figure comes from ("seed table", "theory: log 10").
    Returns ``value`` so a check can sit inside an expression.
    """
    parts, ok = [], True
    if expected is not None:
        if tol is None and rel is None:
            if isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "__array__"):   # arrays, Tensors
                good = bool(np.array_equal(np.asarray(value), np.asarray(expected)))
            else:
                good = bool(value == expected)
            parts.append(f"expected {_fmt(expected)}")
        else:
            a, b = np.asarray(value, dtype=float), np.asarray(expected, dtype=float)
            bound = (tol or 0.0) + (rel or 0.0) * np.abs(b)
            good = a.shape == b.shape or b.ndim == 0
            good = good and bool(np.all(np.abs(a - b) <= bound)) and not np.any(np.isnan(a))
            pct = f"{rel * 100:g}%" if rel is not None else ""
            spread = f"± {tol:g}" if rel is None else (f"± {pct}" if tol is None else f"± {tol:g} + {pct}")
            parts.append(f"expected {_fmt(expected)} {spread}")
        ok &= good
    if at_least is not None:
        ok &= bool(np.all(np.asarray(value) >= at_least)) and not _isnan(value)
        parts.append(f">= {_fmt(at_least)}")
    if at_most is not None:
        ok &= bool(np.all(np.asarray(value) <= at_most)) and not _isnan(value)
        parts.append(f"<= {_fmt(at_most)}")
    if note:
        parts.append(note)
    line = f"{what} = {_fmt(value)}" + (f"  ({'; '.join(parts)})" if parts else "")
    if not ok:
        raise CheckFailed(f"check failed: {line}")
    print(f"  ✓ {line}")
    return value


def _isnan(x: Any) -> bool:
    arr = np.asarray(x)
    return arr.dtype.kind == "f" and bool(np.any(np.isnan(arr)))


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(opts: Options, fig: Any, name: str) -> Path | None:
    """Save a matplotlib figure as ``--out/name.png`` (nothing without --out); close it either way."""
    path = None
    if opts.out is not None:
        path = opts.out / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print(f"  figure: {path}")
    pyplot().close(fig)
    return path


def save_graph(opts: Options, obj: Any, name: str, suffix: str = ".svg", **kwargs: Any) -> Path | None:
    """Render a Value, Tensor or Graph with ``viz.render`` to ``--out/name.svg`` (nothing without --out).

    Skipped with a note when this build has no ``viz.render`` or Graphviz's ``dot`` is missing.
    """
    if opts.out is None:
        return None
    import viz

    render = getattr(viz, "render", None)
    if render is None:
        print("  (viz.render is not available: diagram skipped)")
        return None
    path = opts.out / f"{name}{suffix}"
    try:
        render(obj, path, **kwargs)
    except Exception as e:  # viz.GraphvizMissing / graphviz.ExecutableNotFound: no `dot` program
        if type(e).__name__ not in ("GraphvizMissing", "ExecutableNotFound"):
            raise
        print("  (Graphviz's `dot` program is not installed: diagram skipped)")
        return None
    print(f"  diagram: {path}")
    return path


def plots_wanted(opts: Options) -> Any:
    """pyplot when figures are wanted (--out given) and matplotlib is installed, else None."""
    if opts.out is None:
        return None
    plt = pyplot()
    if plt is None:
        print("  (matplotlib is not installed: plots skipped)")
    return plt


def digits(split: str = "train", n: int | None = None, skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` shipped MNIST digits of ``split`` after the first ``skip``: float32 rows in [0, 1], int64 labels."""
    import tinygrad_cv as tg

    images, labels = tg.data.mnist(split)
    stop = len(images) if n is None else skip + n
    return (images[skip:stop].reshape(-1, 28 * 28) / np.float32(255)).astype(np.float32), labels[skip:stop]


def images(opts: Options, split: str = "train", n: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The lesson's images as float32 rows in [0, 1] with int64 labels, and what they are:
    the shipped digits, or CIFAR-10 from ``--data DIR`` (its binary batches)."""
    if opts.data is None:
        x, y = digits(split, n)
        return x, y, "digits"
    import tinygrad_cv as tg

    imgs, labels = tg.data.cifar10(split, opts.data)
    imgs, labels = imgs[:n], labels[:n]
    return (imgs.reshape(len(imgs), -1) / np.float32(255)).astype(np.float32), labels, "CIFAR-10"


def on_canvas(images: np.ndarray, size: int, top: Any, left: Any) -> np.ndarray:
    """28x28 digits (rows of 784 or (N, 28, 28)) pasted into blank ``size`` x ``size`` canvases,
    digit i with its top-left corner at (top[i], left[i]) (ints broadcast); float32 (N, size, size)."""
    imgs = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    n = len(imgs)
    top, left = np.broadcast_to(np.asarray(top, dtype=np.int64), (n,)), np.broadcast_to(np.asarray(left, dtype=np.int64), (n,))
    if n and (min(top.min(), left.min()) < 0 or max(top.max(), left.max()) > size - 28):
        raise ValueError(f"on_canvas: corners must lie in [0, {size - 28}] for a {size}x{size} canvas, got top "
                         f"{int(top.min())}..{int(top.max())}, left {int(left.min())}..{int(left.max())}")
    out = np.zeros((n, size, size), dtype=np.float32)
    for i in range(n):
        out[i, top[i]:top[i] + 28, left[i]:left[i] + 28] = imgs[i]
    return out


def accuracy(scores: Any, labels: Any) -> float:
    """Fraction of rows of ``scores`` (Tensor or array, (N, C)) whose arg-max is the label."""
    s = scores.numpy() if hasattr(scores, "numpy") else np.asarray(scores)
    return float((s.argmax(1) == np.asarray(labels)).mean())


def train_steps(model: Any, opt: Any, loader: Any, steps: int) -> Any:
    """Train ``model`` for exactly ``steps`` mini-batch steps of cross-entropy (looping over
    ``loader`` as often as needed), then put it in eval mode; returns the last step's loss."""
    import tinygrad_cv.nn.functional as F

    done, loss = 0, None
    model.train()
    while done < steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    model.eval()
    return loss


def few_per_class(labels: np.ndarray, classes: Iterable[int], n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` random examples of each class in ``classes`` (seeded, without replacement)."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.nonzero(labels == c)[0], n, replace=False) for c in classes])


def fit_full_batch(model: Any, params: Any, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> float:
    """Adam on the whole (small) training set ``x, y`` at every step, updating only ``params`` (a list
    of parameters, or torch-style groups ``[{"params": [...], "lr": ...}, ...]`` whose missing ``lr``
    is ``lr``); leaves the model in eval mode and returns the final training loss."""
    import tinygrad_cv as tg
    import tinygrad_cv.nn.functional as F
    from tinygrad_cv import optim

    opt = optim.Adam(params, lr=lr)
    xt, yt = tg.Tensor(x), tg.Tensor(y)
    model.train()
    for _ in range(steps):
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return loss.item()


def train_lenet(images: np.ndarray, labels: np.ndarray, epochs: int, num_classes: int = 10) -> Any:
    """LeNet-5 trained with the library's recipe (Adam 3e-3, warmup + cosine, shifts of up to 2
    pixels, batches of 64, seed 0) on the uint8 digits ``images``; prints one line per epoch."""
    import tinygrad_cv as tg
    from tinygrad_cv import models, train

    tg.manual_seed(0)
    net = models.lenet5(num_classes=num_classes)
    loader = train.make_loader(images, labels, batch_size=64, seed=0, augment=2)
    opt = train.make_optimizer("adam", net.parameters(), lr=3e-3)
    sched = train.make_scheduler("warmup_cosine", opt, epochs * len(loader), warmup_steps=20)
    for epoch in range(1, epochs + 1):
        loss = train.train_epoch(net, loader, opt, sched)
        print(f"    epoch {epoch}/{epochs}  training loss {loss:.3f}")
    return net


def pretrain_on_0_to_4(images: np.ndarray, labels: np.ndarray, n: int | None, epochs: int) -> tuple[Any, int]:
    """``train_lenet`` with 5 outputs on the first ``n`` training digits 0-4 (all of them for None): the
    "big task" of the transfer-learning lessons. Returns the network and how many digits it saw."""
    src = np.nonzero(labels < 5)[0][:n]
    return train_lenet(images[src], labels[src], epochs, num_classes=5), len(src)


def lenet_codes(model: Any, images: np.ndarray) -> np.ndarray:
    """The 84 activations of LeNet-5's last hidden layer (after its ReLU) for uint8 digits, one row each."""
    import tinygrad_cv as tg
    from tinygrad_cv import train

    model.eval()
    penultimate = model.classifier[:-1]            # Linear-ReLU-Linear-ReLU, without the final Linear
    with tg.no_grad():
        h = model.flatten(model.features(tg.Tensor(train.prepare(images))))
        return penultimate(h).data


def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project rows of x onto their top-k principal directions (SVD of the centred data).

    Returns (projections (N, k), directions (k, D), variance of every component (min(N, D),)).
    """
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:k].T, vt[:k], s ** 2 / (len(x) - 1)


def run(main: Callable[[list[str] | None], None]) -> None:
    """Script entry point: run ``main`` on sys.argv; a failed check prints one ✗ line and exits 1."""
    try:
        main(None)
    except CheckFailed as e:
        print(f"✗ {e}", file=sys.stderr)
        sys.exit(1)
    print("\nAll checks passed.")
