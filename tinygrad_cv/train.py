"""Training recipe and loop: train a model on MNIST digits, evaluate on the held-out ones.

    from tinygrad_cv.train import TrainConfig, fit
    result = fit(TrainConfig(epochs=3))
    result.history[-1].accuracy        # held-out accuracy after the last epoch

The pieces are reusable by lessons: ``load_mnist`` (uint8 digits), ``prepare``
(normalized float32), ``make_loader``, ``make_optimizer``, ``make_scheduler``,
``WeightAverage``, ``train_epoch`` and ``evaluate`` (accuracy under no_grad, in
eval mode).

The default recipe (LeNet-5 on the 8,000 shipped digits, evaluated on the 2,000
held-out ones): Adam at lr 4e-3, batch 32, a linear warmup over the first 30
steps then a cosine decay to 0 over the whole run (stepped per batch), inputs
normalized with MNIST's mean and std, random shifts of up to 1 pixel, and
evaluation with a running average of the weights (Polyak averaging, decay 0.99),
which takes the noise of the last steps out of the reported accuracy; the model
keeps the averaged weights at the end. Measured with seeds 0-4: 97.0-98.2%
held-out after the first epoch of the default 8-epoch run and 98.8-99.2% at its
end (about 1 s per epoch on 2 idle cores); 96.4-97.1% when the whole run is one
epoch (``--epochs 1``). For comparison, torch's LeNet with plain SGD (lr 0.05,
momentum 0.9, batch 64) gets 92-96% after one epoch; SGD is available here with
``optimizer="sgd"``.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from . import data as tgdata
from . import models, nn, optim
from .graph import no_grad
from .nn import functional as F
from .random import manual_seed
from .tensors import Tensor

__all__ = ["TrainConfig", "EpochStats", "TrainResult", "MODELS", "OPTIMIZERS", "DEFAULT_LR",
           "build_model", "load_mnist", "prepare", "make_loader", "make_optimizer", "make_scheduler",
           "train_epoch", "evaluate", "fit", "WeightAverage", "plot_curves"]

MODELS: dict[str, Callable[[], nn.Module]] = {n: s.build for n, s in models.registry.MODELS.items() if s.mnist}
OPTIMIZERS = ("adam", "sgd")
DEFAULT_LR = {"adam": 4e-3, "sgd": 0.05}
WARMUP_STEPS = 30


@dataclass
class TrainConfig:
    """Everything ``fit`` needs; the defaults are the recipe described in the module docstring."""

    model: str = "lenet5"
    epochs: int = 8
    batch_size: int = 32
    lr: float | None = None              # None: DEFAULT_LR[optimizer]
    optimizer: str = "adam"
    momentum: float = 0.9                # SGD only
    weight_decay: float = 0.0
    schedule: str = "warmup_cosine"      # or "constant"
    warmup_steps: int = WARMUP_STEPS
    augment: int = 1                     # max random shift in pixels (0: none)
    average: float = 0.99                # decay of the weight average used for evaluation (0: none)
    backend: str | None = None           # None: keep the current backend
    data: str | None = None              # None: the shipped digits; DIR: full MNIST IDX files
    limit: int | None = None             # use only the first N training digits
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in ("warmup_cosine", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; choose warmup_cosine or constant")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")

    @property
    def learning_rate(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr


@dataclass
class EpochStats:
    epoch: int
    loss: float          # mean training loss over the epoch
    accuracy: float      # held-out accuracy in [0, 1]
    seconds: float       # training time of the epoch (evaluation excluded)
    lr: float            # learning rate at the end of the epoch

    def line(self, epochs: int) -> str:
        width = len(str(epochs))
        return (f"epoch {self.epoch:>{width}}/{epochs}  loss {self.loss:.4f}  "
                f"acc {100 * self.accuracy:.1f}%  {self.seconds:.1f}s")


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochStats] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    config: TrainConfig | None = None
    interrupted: bool = False      # stopped by Ctrl-C: ``model`` holds the last finished epoch's weights


def build_model(name: str) -> nn.Module:
    """A fresh model by name (see MODELS)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]()


def load_mnist(split: str, path: str | None = None, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels int64 (N,)), the first ``limit`` of them if given."""
    images, labels = tgdata.mnist(split, path)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 digits -> float32 (N, 1, 28, 28) normalized with MNIST's mean and std."""
    return tgdata.normalize(tgdata.to_float(images))


def make_loader(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                augment: int = 0) -> tgdata.DataLoader:
    """Shuffled (seeded) batches of uint8 digits made float and normalized per batch, after random
    shifts of up to ``augment`` pixels (zero fill, before normalizing) when augment > 0."""
    norm = tgdata.Normalize()
    transform = tgdata.Compose([tgdata.RandomShift(augment), norm]) if augment else norm
    return tgdata.DataLoader(tgdata.TensorDataset(images, labels), batch_size=batch_size, shuffle=True,
                             seed=seed, transform=transform)


def make_optimizer(name: str, params: Iterable[Any], lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> optim.Optimizer:
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def make_scheduler(name: str, optimizer: optim.Optimizer, total_steps: int,
                   warmup_steps: int = WARMUP_STEPS) -> optim.lr_scheduler.LRScheduler | None:
    """Per-batch schedule: "warmup_cosine" (linear warmup, then cosine to 0) or "constant" (None)."""
    if name == "constant":
        return None
    warmup = min(warmup_steps, max(total_steps // 2, 1))
    return optim.lr_scheduler.WarmupCosineLR(optimizer, warmup, max(total_steps, warmup + 1))


class WeightAverage:
    """Polyak averaging: an exponential moving average of a model's parameters.

    After every step ``avg = d * avg + (1 - d) * w`` with d = min(decay, (1 + t) / (10 + t))
    (a short memory at first, so the random init fades quickly). Evaluating with the average
    instead of the last noisy iterate is steadier and usually a little better (CS231n:
    "model ensembles ... keep a moving average of the parameter vector, use that at test time").
    """

    def __init__(self, model: nn.Module, decay: float = 0.99):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the averaging decay must be in [0, 1), got {decay}")
        self.params = list(model.parameters())
        self.decay, self.steps = decay, 0
        self.average = [p.data.copy() for p in self.params]

    def update(self) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for avg, p in zip(self.average, self.params):
            avg *= d
            avg += (1 - d) * p.data

    def swap(self) -> None:
        """Exchange the model's weights and the averaged ones (call twice to undo)."""
        for i, p in enumerate(self.params):
            p.data, self.average[i] = self.average[i], p.data


def train_epoch(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], optimizer: optim.Optimizer,
                scheduler: Any = None, progress: Any = None, step_losses: list[float] | None = None,
                average: WeightAverage | None = None, callbacks: Iterable[Any] = ()) -> float:
    """One pass over ``loader`` with cross-entropy; returns the mean training loss.

    ``progress``: an object with ``update(n)`` and ``set_postfix_str(s)`` (a tqdm bar), or None;
    ``average``: a WeightAverage to update after every step; ``callbacks``: objects whose
    ``after_backward(model, optimizer)`` runs once the gradients are in and whose
    ``after_step(model, optimizer)`` runs once the optimizer has moved the weights
    (either may be missing), e.g. ``viz.flowsheet.FlowRecorder``.
    """
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        _call(callbacks, "after_backward", model, optimizer)
        optimizer.step()
        _call(callbacks, "after_step", model, optimizer)
        if scheduler is not None:
            scheduler.step()
        if average is not None:
            average.update()
        value = float(loss.data)
        if not math.isfinite(value):
            raise RuntimeError(f"the training loss became {value}: lower the learning rate (now "
                               f"{optimizer.param_groups[0]['lr']:.3g})")
        n = len(yb)
        total += value * n
        count += n
        if step_losses is not None:
            step_losses.append(value)
        if progress is not None:
            progress.update(1)
            progress.set_postfix_str(f"loss {value:.3f}", refresh=False)
    return total / max(count, 1)


def _call(callbacks: Iterable[Any], name: str, *args: Any) -> None:
    for cb in callbacks:
        hook = getattr(cb, name, None)
        if hook is not None:
            hook(*args)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Accuracy in [0, 1] of ``model`` (switched to eval mode, then back) on arrays of images/labels."""
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with no_grad():
            for i in range(0, len(labels), batch_size):
                logits = model(Tensor(images[i:i + batch_size]))
                correct += int((logits.data.argmax(axis=1) == labels[i:i + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / max(len(labels), 1)


def fit(config: TrainConfig, progress: bool = True, log: Callable[[str], None] | None = None,
        callbacks: Iterable[Any] = ()) -> TrainResult:
    """Train ``config.model`` per the recipe; ``log`` gets one line per epoch (default: print).

    progress=True draws a tqdm bar per epoch on stderr. ``callbacks`` are called around
    every optimizer step (see :func:`train_epoch`).

    Ctrl-C (KeyboardInterrupt) stops training cleanly: the bar is closed, the model is
    put back to the weights of the last finished epoch (the ones its accuracy was
    reported for) and the result comes back with ``interrupted=True`` and the history
    so far (empty when the first epoch did not finish).
    """
    from .backends import set_backend

    log = print if log is None else log
    if config.backend is not None:
        set_backend(config.backend)
    train_x, train_y = load_mnist("train", config.data, config.limit)
    test_x, test_y = load_mnist("test", config.data)
    for split, labels in (("training", train_y), ("held-out", test_y)):
        if len(labels) == 0:
            raise tgdata.DataError(f"there are no {split} digits to {'train on' if split == 'training' else 'evaluate on'}")
    test_x = prepare(test_x)
    manual_seed(config.seed)
    model = build_model(config.model)
    loader = make_loader(train_x, train_y, config.batch_size, config.seed, config.augment)
    opt = make_optimizer(config.optimizer, model.parameters(), config.learning_rate, config.momentum,
                         config.weight_decay)
    sched = make_scheduler(config.schedule, opt, config.epochs * len(loader), config.warmup_steps)
    average = WeightAverage(model, config.average) if config.average else None
    result = TrainResult(model, config=config)
    finished: list[tuple[EpochStats, dict[str, np.ndarray]]] = []     # the last finished epoch, its weights
    try:
        _epochs(config, model, loader, opt, sched, average, test_x, test_y, result, progress, log, finished,
                list(callbacks))
    except KeyboardInterrupt:
        result.interrupted = True
        if finished:
            stats, weights = finished[0]
            model.load_state_dict(weights)
            result.history = [h for h in result.history if h.epoch < stats.epoch] + [stats]
        model.train()
    return result


def _progress_bar(total: int, desc: str) -> Any:
    """A tqdm bar on stderr, made with Ctrl-C held back: a bar interrupted half-built cannot be closed."""
    import signal
    import threading

    from tqdm import tqdm

    held = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if held:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, unit="batch", dynamic_ncols=True)
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _epochs(config: TrainConfig, model: nn.Module, loader: Any, opt: optim.Optimizer, sched: Any,
            average: WeightAverage | None, test_x: np.ndarray, test_y: np.ndarray, result: TrainResult,
            progress: bool, log: Callable[[str], None],
            finished: list[tuple[EpochStats, dict[str, np.ndarray]]], callbacks: Iterable[Any] = ()) -> None:
    """The epochs of ``fit``; after each, the evaluated weights are kept in ``finished`` (for Ctrl-C)."""
    from .backends.compiling import CompileWatch

    watch = CompileWatch(log)               # "compiling kernels (first run only) ..." / "... done in 4.1 s"
    for epoch in range(1, config.epochs + 1):
        bar = _progress_bar(len(loader), f"epoch {epoch}/{config.epochs}") if progress else None
        bar = watch.wrap(bar)               # the ETA starts after the compile
        start = time.perf_counter()
        try:
            loss = train_epoch(model, loader, opt, sched, bar, result.step_losses, average, callbacks)
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
        if average is not None:
            average.swap()                  # evaluate (and finally keep) the averaged weights
        acc = evaluate(model, test_x, test_y)
        snapshot = model.state_dict()
        if average is not None and epoch < config.epochs:
            average.swap()
        stats = EpochStats(epoch, loss, acc, seconds, opt.param_groups[0]["lr"])
        finished[:] = [(stats, snapshot)]
        result.history.append(stats)
        log(stats.line(config.epochs))


def plot_curves(result: TrainResult, path: str) -> None:
    """Training loss per step and held-out accuracy per epoch, side by side (needs matplotlib)."""
    try:
        from matplotlib.figure import Figure          # no pyplot: no global backend state
    except ImportError:
        raise RuntimeError("plotting needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    steps = np.arange(1, len(result.step_losses) + 1)
    per_epoch = len(result.step_losses) / max(len(result.history), 1)
    ax1.plot(steps / per_epoch, result.step_losses, lw=0.6, alpha=0.6, label="batch")
    ax1.plot([h.epoch for h in result.history], [h.loss for h in result.history], "o-", label="epoch mean")
    ax1.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    ax1.legend()
    ax2.plot([h.epoch for h in result.history], [100 * h.accuracy for h in result.history], "o-")
    ax2.set(xlabel="epoch", ylabel="held-out accuracy (%)", title="accuracy")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
