"""Gradient flow at any depth: a compact sheet, side-by-side comparisons, and flow over training.

    rows, loss = viz.flow.measure(model, x, y)                 # one batch, every layer
    viz.flowsheet.sheet([("ResNet-50", rows)], "r50.png")      # one line per layer, fits 1600 px
    viz.flowsheet.sheet([("plain", a), ("residual", b)], "pair.png")   # side by side, one scale

    rec = viz.flowsheet.FlowRecorder(every=10)                 # during training (tinygrad_cv.train.fit
    fit(config, callbacks=[rec]); rec.plot("flow.png")         #  calls it after backward and after step)

A sheet is a table with one line per layer, input side at the top: the layer's name and
type, mean and max |dL/dW|, the mean |dL/d output| that reached it, a bar of
rho = ||dL/dW|| / ||W|| on a log axis over the verdict bands (blue vanishing, green
healthy, red exploding; the thresholds of :mod:`viz.flow`), and the verdict. Every panel
of a sheet shares that axis, so bars compare across panels. A net too deep for one column
wraps into more columns so that the long side stays within ``max_px`` (ResNet-50's 107
layers: two columns); ``collapse`` in :func:`viz.flow.layer_stats` folds blocks into one line.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .flow import EXPLODING, STATUS_COLORS, VANISHING, _shape_text, layer_stats, status_of

__all__ = ["Sheet", "sheet", "FlowRecorder", "flow_summary", "UPDATE_RULE"]

UPDATE_RULE = 1e-3      # CS231n: an update should be about 1e-3 of the weight it changes

DPI = 100
ROW_PX = 17             # one layer's line: 8.5 pt text at 100 dpi
PANEL_PX = 800          # one column of the table
HEAD_PX, FOOT_PX = 96, 66


@dataclass
class Sheet:
    """What :func:`sheet` drew: the file, its size in pixels, the shared rho axis and the panels."""

    path: Path
    size_px: tuple[int, int]                       # (width, height)
    xlim: tuple[float, float]                      # the rho axis every panel shares
    panels: list[tuple[str, int]] = field(default_factory=list)    # (title, number of lines)
    panel_xlims: list[tuple[float, float]] = field(default_factory=list)   # as drawn, read back from each axis


def _figure() -> Any:
    try:
        from matplotlib.figure import Figure      # no pyplot: no global state, no display needed
    except ImportError:
        raise RuntimeError("drawing a flow sheet needs matplotlib: pip install 'tinygrad_cv[plot]'") from None
    return Figure


def _limits(ratios: Sequence[float]) -> tuple[float, float]:
    finite = [r for r in ratios if r > 0 and math.isfinite(r)]
    lo = min(finite + [VANISHING]) / 10
    hi = max(finite + [EXPLODING]) * 10
    return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))


def sheet(flows: Sequence[tuple[str, list[dict[str, Any]]]], path: str | Path, *, title: str = "",
          max_px: int = 1600) -> Sheet:
    """Draw one or more flows (title, rows of :func:`viz.flow.layer_stats`) side by side as a table sheet.

    A collapsed block's type reads "Bottleneck ×8": the class and how many layers it pools.
    Each flow is one panel, or several columns of one when its lines would not fit
    ``max_px`` high. Every panel shares one rho axis, so equal bars mean equal ratios.
    Writes .png/.svg/.pdf by the suffix; returns a :class:`Sheet`.
    """
    if not flows or any(not rows for _, rows in flows):
        raise ValueError("a flow sheet needs at least one flow with at least one layer")
    Figure = _figure()
    per_column = max(4, (max_px - HEAD_PX - FOOT_PX) // ROW_PX)
    panels: list[tuple[str, list[dict[str, Any]], int]] = []     # (title, rows, index of the first row)
    for name, rows in flows:
        chunks = math.ceil(len(rows) / per_column)
        size = math.ceil(len(rows) / chunks)
        for k in range(chunks):
            part = f"{name} ({k + 1}/{chunks})" if chunks > 1 else name
            panels.append((part, rows[k * size:(k + 1) * size], k * size))
    lines = max(len(rows) for _, rows, _ in panels)
    width_px, height_px = PANEL_PX * len(panels), HEAD_PX + FOOT_PX + ROW_PX * max(lines, 4)
    xlim = _limits([r["ratio"] for _, rows in flows for r in rows])
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    if title:
        fig.text(0.5, 1 - 10 / height_px, textwrap.fill(title, width_px // 9), ha="center", va="top", fontsize=10.5,
                 weight="bold", linespacing=1.25)
    top, bottom = 1 - HEAD_PX / height_px, FOOT_PX / height_px
    drawn = []
    for i, (name, rows, first) in enumerate(panels):
        left = (i * PANEL_PX + 470) / width_px
        ax = fig.add_axes((left, bottom + (1 - (HEAD_PX + FOOT_PX) / height_px) * (1 - len(rows) / max(lines, 4)),
                           250 / width_px, (top - bottom) * len(rows) / max(lines, 4)))
        _panel(ax, name, rows, xlim, i == 0)
        drawn.append(tuple(float(v) for v in ax.get_xlim()))
    foot = (f"ρ = ‖∂L/∂W‖ / ‖W‖ (log scale, the same in every panel), the size of one SGD step at lr = 1 relative "
            f"to the weight:  vanishing < {VANISHING:g} ≤ healthy ≤ {EXPLODING:g} < exploding.  Input side at the top.")
    fig.text(0.5, 6 / height_px, textwrap.fill(foot, width_px // 6), ha="center", va="bottom", fontsize=8,
             color="#333333")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return Sheet(path, (width_px, height_px), xlim, [(n, len(r)) for n, r, _ in panels], drawn)


def _panel(ax: Any, name: str, rows: list[dict[str, Any]], xlim: tuple[float, float], first: bool) -> None:
    n = len(rows)
    y = np.arange(n)
    ax.set_xscale("log")
    ax.set_xlim(*xlim)
    ax.set_ylim(n - 0.5, -0.5)
    for (lo, hi), status in (((xlim[0], VANISHING), "vanishing"), ((VANISHING, EXPLODING), "healthy"),
                             ((EXPLODING, xlim[1]), "exploding")):
        ax.axvspan(lo, hi, color=STATUS_COLORS[status][0], zorder=0, lw=0)
    ratios = [min(max(r["ratio"], xlim[0]), xlim[1]) if math.isfinite(r["ratio"]) else xlim[1] for r in rows]
    inks = [STATUS_COLORS[r["status"]][1] for r in rows]
    ax.barh(y, ratios, left=xlim[0], height=0.62, color=inks, zorder=2)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", which="major", color="white", lw=0.8, zorder=1)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUS_COLORS}
    summary = ", ".join(f"{c} {s}" for s, c in counts.items() if c)
    ax.text(-1.8, -2.3, f"{name}", transform=ax.get_yaxis_transform(), fontsize=10, weight="bold", va="bottom",
            clip_on=False)
    ax.text(-1.8, -1.35, f"{n} lines: {summary}", transform=ax.get_yaxis_transform(), fontsize=8, va="bottom",
            color="#444444", clip_on=False)
    # text columns, placed in axes-width units left of the bars (the bars are 250 px wide)
    columns = [(-1.8, "left", "layer"), (-1.2, "left", "type"), (-0.53, "right", "mean|∂L/∂W|"),
               (-0.275, "right", "max|∂L/∂W|"), (-0.02, "right", "|∂L/∂out|"), (1.03, "left", "verdict")]
    for x, ha, head in columns:
        ax.text(x, -0.58, head, transform=ax.get_yaxis_transform(), ha=ha, va="bottom", fontsize=7.5,
                color="#555555", clip_on=False)
    ax.text(0.5, -0.58, "ρ", transform=ax.get_yaxis_transform(), ha="center", va="bottom", fontsize=8,
            color="#555555", clip_on=False)
    for k, r in enumerate(rows):
        ink = STATUS_COLORS[r["status"]][1]
        label = r["name"] if len(r["name"]) <= 22 else "…" + r["name"][-21:]
        kind = r["type"] if len(r["type"]) <= 13 else r["type"][:12] + "…"
        kind += "" if r["shape"] else f' ×{r.get("layers", 1)}'
        cells = [label, kind, _short(r["mean_grad"]), _short(r["max_grad"]),
                 _short(r["out_grad"]), r["status"]]
        for (x, ha, _), text in zip(columns, cells):
            ax.text(x, k, text, transform=ax.get_yaxis_transform(), ha=ha, va="center",
                    fontsize=8 if ha == "right" else 8.5,
                    family="DejaVu Sans Mono" if ha == "right" else "DejaVu Sans", clip_on=False,
                    color=ink if x > 1 else "#111111")
        if k % 2:
            ax.axhspan(k - 0.5, k + 0.5, xmin=-1.82, xmax=1.3, color="#000000", alpha=0.035, lw=0, clip_on=False,
                       zorder=0)


def _short(v: float | None) -> str:
    return "-" if v is None else f"{v:.1e}"


class FlowRecorder:
    """Per-layer gradient ratios and update/weight ratios every ``every`` training steps.

    A training loop calls ``after_backward(model, optimizer)`` once the gradients are in
    and ``after_step(model, optimizer)`` once the optimizer has moved the weights
    (:func:`tinygrad_cv.train.fit` does, given ``callbacks=[recorder]``). On recorded steps
    it keeps rho = ||dL/dW|| / ||W|| per layer and the update/weight ratio
    ||W_after - W_before|| / ||W_before||; :meth:`plot` draws both as layer x step heat maps.
    """

    def __init__(self, every: int = 10, collapse: bool | int | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.collapse = every, collapse
        self.step = 0                                  # steps seen so far
        self.steps: list[int] = []                     # the recorded ones (1 = the first step)
        self.layers: list[str] = []
        self.ratio: list[list[float]] = []             # [recorded step][layer]
        self.update: list[list[float]] = []
        self._before: dict[str, np.ndarray] | None = None

    def after_backward(self, model: Any, optimizer: Any = None) -> None:
        self.step += 1
        if (self.step - 1) % self.every:
            return
        rows = layer_stats(model, collapse=self.collapse)
        self.layers = [r["name"] for r in rows]
        self.steps.append(self.step)
        self.ratio.append([r["ratio"] for r in rows])
        self._before = {k: np.array(getattr(p, "data", p), dtype=np.float64) for k, p in model.named_parameters()}

    def after_step(self, model: Any, optimizer: Any = None) -> None:
        if self._before is None:
            return
        rows = layer_stats(model, before=self._before, collapse=self.collapse)
        self.update.append([r["update_ratio"] if r["update_ratio"] is not None else float("nan") for r in rows])
        self._before = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(rho, update/weight), each (layers, recorded steps); NaN where a step was not finished."""
        if not self.steps:
            raise ValueError("nothing recorded yet: no training step has run")
        rho = np.array(self.ratio, dtype=np.float64).T
        upd = np.full_like(rho, np.nan)
        if self.update:
            upd[:, :len(self.update)] = np.array(self.update, dtype=np.float64).T
        return rho, upd

    def plot(self, path: str | Path, *, title: str = "", max_px: int = 1600) -> Sheet:
        """Two heat maps, layer x step: rho coloured by verdict band, and update/weight around 1e-3."""
        from matplotlib.colors import LinearSegmentedColormap, TwoSlopeNorm

        Figure = _figure()
        rho, upd = self.arrays()
        n_layers = len(self.layers)
        row = max(6, min(ROW_PX, (max_px // 2 - 120) // max(n_layers, 1)))
        height_px = min(max_px, 2 * (max(n_layers * row, 180) + 110) + 60)
        width_px = 1200
        fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
        top, bottom = fig.subplots(2, 1)
        fig.subplots_adjust(left=0.17, right=0.88, top=1 - 50 / height_px, bottom=50 / height_px, hspace=0.55)
        lo, hi = math.log10(_limits(rho[np.isfinite(rho)].tolist())[0]), math.log10(_limits(rho.ravel().tolist())[1])
        v, e = math.log10(VANISHING), math.log10(EXPLODING)
        pos = lambda t: (t - lo) / (hi - lo)  # noqa: E731
        band = LinearSegmentedColormap.from_list("verdict", [
            (0.0, "#0b3d7a"), (pos(v) - 1e-6, "#9cc3ee"), (pos(v), "#c9e8c9"),
            (pos(e) - 1e-6, "#1b6e20"), (pos(e), "#f3a3a3"), (1.0, "#7f0000")])
        extent = (self.steps[0] - 0.5, self.steps[-1] + 0.5, n_layers - 0.5, -0.5)
        shown = np.log10(np.clip(np.nan_to_num(rho, nan=10 ** hi, posinf=10 ** hi), 10 ** lo, 10 ** hi))
        im = top.imshow(shown, aspect="auto", cmap=band, vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
        bar = fig.colorbar(im, ax=top, fraction=0.04, pad=0.02)
        bar.set_ticks([v, e], labels=[f"{VANISHING:g}", f"{EXPLODING:g}"])
        bar.ax.tick_params(labelsize=8)
        for y, text in ((pos(v) / 2, "vanishing"), ((pos(v) + pos(e)) / 2, "healthy"), ((pos(e) + 1) / 2, "exploding")):
            bar.ax.text(-0.6, y, text, transform=bar.ax.transAxes, rotation=90, va="center", ha="right", fontsize=7.5)
        top.set_title("ρ = ‖∂L/∂W‖ / ‖W‖ per layer (colour: verdict band)", fontsize=10)
        u = np.log10(np.clip(upd, 1e-12, None))
        finite = u[np.isfinite(u)]
        r = math.log10(UPDATE_RULE)
        span = max(1.0, float(np.max(np.abs(finite - r)))) if finite.size else 1.0
        im2 = bottom.imshow(u, aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(r, r - span, r + span), extent=extent,
                            interpolation="nearest")
        bar2 = fig.colorbar(im2, ax=bottom, fraction=0.04, pad=0.02)
        bar2.ax.tick_params(labelsize=8)
        ticks = sorted({r - span, r - 1, r, r + 1, r + span} & set(np.arange(math.floor(r - span), r + span + 1e-9)))
        bar2.set_ticks(ticks or [r], labels=[f"{10 ** t:g}" for t in (ticks or [r])])
        share = float(np.mean(np.abs(finite - r) <= 1)) if finite.size else float("nan")
        bottom.set_title(f"update / weight = ‖ΔW‖ / ‖W‖ after each recorded step; white = the ~{UPDATE_RULE:g} rule "
                         f"({100 * share:.0f}% of cells within 10x of it)", fontsize=10)
        for ax in (top, bottom):
            ax.set_yticks(range(n_layers), [s if len(s) <= 24 else "…" + s[-23:] for s in self.layers],
                          fontsize=8 if row >= 12 else 6.5)
            ax.set_xlabel(f"training step (recorded every {self.every})", fontsize=9)
            ax.tick_params(axis="x", labelsize=8)
        if title:
            fig.suptitle(title, fontsize=11, weight="bold", y=1 - 8 / height_px, va="top")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
        return Sheet(path, (width_px, height_px), (10 ** lo, 10 ** hi), [("rho", n_layers), ("update", n_layers)])


def flow_summary(recorder: FlowRecorder) -> list[str]:
    """What a recording says, in lines: verdicts at the first and last recorded step, and per layer
    the median update/weight ratio against the ~1e-3 rule."""
    rho, upd = recorder.arrays()
    statuses = [[status_of(float(v)) for v in rho[:, j]] for j in (0, -1)]
    count = lambda s: ", ".join(f"{s.count(k)} {k}" for k in STATUS_COLORS if s.count(k))  # noqa: E731
    lines = [f"gradient flow: {len(recorder.steps)} records over {recorder.step} steps (every {recorder.every}); "
             f"step {recorder.steps[0]}: {count(statuses[0])}; step {recorder.steps[-1]}: {count(statuses[1])}"]
    for name, row in zip(recorder.layers, upd):
        finite = row[np.isfinite(row)]
        if finite.size:
            med = float(np.median(finite))
            word = "about right" if 1e-4 <= med <= 1e-2 else ("too small" if med < 1e-4 else "too large")
            lines.append(f"  {name:<24} median update/weight {med:.1e} ({word} against ~{UPDATE_RULE:g})")
    return lines
