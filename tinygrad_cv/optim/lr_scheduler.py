"""Learning-rate schedules with torch.optim.lr_scheduler's names and sequences.

A scheduler sets ``group["lr"]`` of each parameter group from the group's initial
lr and the step count t (``last_epoch``): construct it (t = 0), then call
``scheduler.step()`` after each ``optimizer.step()`` (per epoch or per batch, as
you choose). Each schedule is a closed form ``lr_at(base_lr, t)``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "LambdaLR",
           "WarmupLR", "WarmupCosineLR", "InverseSqrtLR", "InverseTimeLR"]


class LRScheduler:
    """Base class: subclasses define ``lr_at(base_lr, t)``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            if last_epoch == -1:
                g.setdefault("initial_lr", g["lr"])
            elif "initial_lr" not in g:
                raise KeyError(f"resuming {type(self).__name__} at last_epoch={last_epoch} needs 'initial_lr' "
                               f"in every parameter group")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, t: int) -> float:
        raise TypeError(f"{type(self).__name__} does not define lr_at(base_lr, t)")

    def _lrs(self, t: int) -> list[float]:
        return [self.lr_at(base, t) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one step and set every group's lr."""
        self.last_epoch += 1
        self._last_lr = self._lrs(self.last_epoch)
        for g, lr in zip(self.optimizer.param_groups, self._last_lr):
            g["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last step (one per group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """lr = base * gamma^(t // step_size): drop by gamma every step_size steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = base * gamma^t."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi t / T_max)) / 2 (half a cosine, then back up)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(LRScheduler):
    """lr = base * factor, factor going linearly from start_factor to end_factor over total_iters steps."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], "
                             f"got {start_factor} and {end_factor}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        frac = min(t, self.total_iters) / self.total_iters if self.total_iters else 1.0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class LambdaLR(LRScheduler):
    """lr = base * lr_lambda(t); one function, or one per parameter group."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fns) != n:
            raise ValueError(f"LambdaLR: {len(fns)} lr_lambdas for {n} parameter groups")
        self.lr_lambdas = fns
        super().__init__(optimizer, last_epoch)

    def _lrs(self, t: int) -> list[float]:
        return [base * fn(t) for base, fn in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class WarmupLR(LRScheduler):
    """Linear warmup: lr = base * (t + 1) / warmup_steps for the first warmup_steps steps, then
    base * decay(t - warmup_steps) (decay defaults to the constant 1).

    Large early steps on a fresh network can blow up (especially with Adam's first, noisy
    second-moment estimates); ramping the lr up avoids that.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, decay: Callable[[int], float] | None = None,
                 last_epoch: int = -1):
        if warmup_steps < 0:
            raise ValueError(f"WarmupLR: warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps, self.decay = warmup_steps, decay
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        if t < self.warmup_steps:
            return (t + 1) / self.warmup_steps
        return 1.0 if self.decay is None else self.decay(t - self.warmup_steps)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr * self.factor(t)


class WarmupCosineLR(WarmupLR):
    """Linear warmup over warmup_steps, then a half cosine from base down to base * final_factor
    at total_steps (a one-cycle-like schedule; constant after total_steps)."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, final_factor: float = 0.0,
                 last_epoch: int = -1):
        if total_steps <= warmup_steps:
            raise ValueError(f"WarmupCosineLR: total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})")
        self.total_steps, self.final_factor = total_steps, final_factor
        span = total_steps - warmup_steps

        def cosine(t: int) -> float:
            return final_factor + (1 - final_factor) * (1 + math.cos(math.pi * min(t, span) / span)) / 2

        super().__init__(optimizer, warmup_steps, cosine, last_epoch)


class InverseSqrtLR(LRScheduler):
    """lr = base / sqrt(t + 1) (after an optional linear warmup: base * sqrt(warmup / (t + 1)))."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 0, last_epoch: int = -1):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        if t < self.warmup_steps:
            return base_lr * (t + 1) / self.warmup_steps
        return base_lr * math.sqrt(max(self.warmup_steps, 1) / (t + 1))


class InverseTimeLR(LRScheduler):
    """1/t decay: lr = base / (1 + k t)."""

    def __init__(self, optimizer: Optimizer, k: float, last_epoch: int = -1):
        if k < 0:
            raise ValueError(f"InverseTimeLR: k must be >= 0, got {k}")
        self.k = k
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, t: int) -> float:
        return base_lr / (1 + self.k * t)
