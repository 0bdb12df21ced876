"""Losses. Cross-entropy, NLL, binary cross-entropy and the multiclass SVM loss are fused
ops (forward and backward side by side); mse_loss is composed from tensor ops.

``reduction`` is PyTorch's: "mean" (the default), "sum" or "none" (one loss per sample).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...graph import Op
from ...tensors import Tensor
from .activation import _stable_exp

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, fn: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}")
    return reduction


def _class_targets(target: Any, scores: Tensor, fn: str) -> np.ndarray:
    """Integer class labels (Tensor or array) of shape (N,), checked against scores (N, C)."""
    if scores.ndim != 2:
        raise ValueError(f"{fn}: scores must be (N, C), got shape {scores.shape}")
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: targets must be integer class indices, got dtype {t.dtype}")
    n, c = scores.shape
    if t.shape != (n,):
        raise ValueError(f"{fn}: targets must have shape ({n},) for scores of shape {scores.shape}, got {t.shape}")
    if n and (t.min() < 0 or t.max() >= c):
        bad = t[(t < 0) | (t >= c)][0]
        raise ValueError(f"{fn}: target class {bad} is out of range for {c} classes (0..{c - 1})")
    return t.astype(np.intp, copy=False)


def _reduce(per: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return per
    total = per.sum()
    return np.asarray(total / per.dtype.type(per.size) if reduction == "mean" else total, dtype=per.dtype)


def _scale(up: np.ndarray, per_shape: tuple[int, ...], reduction: str) -> np.ndarray:
    """The upstream gradient of each per-sample loss: up/N (mean), up (sum) or up_i (none)."""
    if reduction == "none":
        return up
    n = int(np.prod(per_shape))
    return up / up.dtype.type(n) if reduction == "mean" else up


class CrossEntropyOp(Op):
    """L_i = -log softmax(x_i)[y_i] = log sum_j e^(x_ij) - x_i,y_i, fused with the log-softmax."""

    name, inputs = "cross_entropy", ("x",)
    derivatives = ("dL/dx_j = softmax(x)_j - 1[j = y]",)

    def __init__(self, target: np.ndarray, reduction: str = "mean"):
        self.target, self.reduction = target, reduction

    def forward(self, ctx, x):
        shifted, e = _stable_exp(x, 1)
        total = e.sum(axis=1, keepdims=True)
        rows = np.arange(x.shape[0])
        per = np.log(total[:, 0]) - shifted[rows, self.target]
        ctx.save_for_backward(e / total)            # the softmax, for backward
        return _reduce(per, self.reduction)

    def backward(self, ctx, up):
        # dL_i/dx_ij = p_ij - 1[j = y_i]: softmax minus the one-hot target
        (probs,) = ctx.saved_tensors
        g = probs.copy()
        g[np.arange(probs.shape[0]), self.target] -= 1
        s = _scale(up, (probs.shape[0],), self.reduction)
        g *= s[:, None] if s.ndim else s
        return (g,)


class NLLLossOp(Op):
    """L_i = -x_i,y_i for log-probabilities x."""

    name, inputs = "nll_loss", ("x",)
    derivatives = ("dL/dx_j = -1 for the target class, 0 elsewhere",)

    def __init__(self, target: np.ndarray, reduction: str = "mean"):
        self.target, self.reduction = target, reduction

    def forward(self, ctx, x):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return _reduce(-x[np.arange(x.shape[0]), self.target], self.reduction)

    def backward(self, ctx, up):
        # dL_i/dx_ij = -1 if j = y_i else 0
        g = np.zeros(ctx.shape, dtype=ctx.dtype)
        s = _scale(up, (ctx.shape[0],), self.reduction)
        g[np.arange(ctx.shape[0]), self.target] = -s
        return (g,)


class BinaryCrossEntropyOp(Op):
    """L = -(t log p + (1 - t) log(1 - p)); logs clamped at -100 as PyTorch does."""

    name, inputs = "binary_cross_entropy", ("p",)
    derivatives = ("dL/dp = (p - t) / (p (1 - p))",)

    def __init__(self, target: np.ndarray, reduction: str = "mean"):
        self.target, self.reduction = target, reduction

    def forward(self, ctx, p):
        t = self.target
        ctx.save_for_backward(p)
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p), -100)
            log_1mp = np.maximum(np.log1p(-p), -100)
        return _reduce(-(t * log_p + (1 - t) * log_1mp), self.reduction)

    def backward(self, ctx, up):
        # dL/dp = -t/p + (1-t)/(1-p) = (p - t) / (p (1 - p))
        (p,) = ctx.saved_tensors
        g = (p - self.target) / np.maximum(p * (1 - p), 1e-12)
        return ((g * _scale(up, p.shape, self.reduction)).astype(p.dtype, copy=False),)


class SVMLossOp(Op):
    """CS231n's multiclass hinge: L_i = sum_{j != y_i} max(0, s_j - s_y_i + margin)."""

    name, inputs = "svm_loss", ("s",)
    derivatives = ("dL_i/ds_j = 1[s_j - s_y + margin > 0] (j != y);  dL_i/ds_y = -(number of violated margins)",)

    def __init__(self, target: np.ndarray, margin: float):
        self.target, self.margin = target, margin

    def forward(self, ctx, s):
        rows = np.arange(s.shape[0])
        m = np.maximum(0, s - s[rows, self.target][:, None] + s.dtype.type(self.margin))
        m[rows, self.target] = 0
        ctx.save_for_backward(m)
        return np.asarray(m.sum() / s.dtype.type(max(s.shape[0], 1)), dtype=s.dtype)

    def backward(self, ctx, up):
        # each violated margin adds +1 to s_j and -1 to s_y
        (margins,) = ctx.saved_tensors
        active = (margins > 0).astype(margins.dtype)
        active[np.arange(margins.shape[0]), self.target] = -active.sum(axis=1)
        return (active * (up / margins.dtype.type(max(margins.shape[0], 1))),)


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits (N, C) against integer classes (N,): log-softmax + NLL in one op."""
    t = _class_targets(target, logits, "cross_entropy")
    return Tensor.apply(CrossEntropyOp(t, _check_reduction(reduction, "cross_entropy")), logits)


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) (e.g. from log_softmax) at classes (N,)."""
    t = _class_targets(target, log_probs, "nll_loss")
    return Tensor.apply(NLLLossOp(t, _check_reduction(reduction, "nll_loss")), log_probs)


def binary_cross_entropy(probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities in [0, 1] against targets of the same shape."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=probs.dtype)
    if t.shape != probs.shape:
        raise ValueError(f"binary_cross_entropy: target shape {t.shape} differs from input shape {probs.shape}")
    p = probs.data
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"binary_cross_entropy: input must be probabilities in [0, 1], "
                         f"got values in [{p.min():.4g}, {p.max():.4g}] (apply sigmoid first)")
    return Tensor.apply(BinaryCrossEntropyOp(t, _check_reduction(reduction, "binary_cross_entropy")), probs)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (input - target)^2, composed from tensor ops."""
    _check_reduction(reduction, "mse_loss")
    target = target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: target shape {target.shape} differs from input shape {input.shape}")
    diff = input - target
    sq = diff * diff
    return sq if reduction == "none" else (sq.mean() if reduction == "mean" else sq.sum())


def svm_loss(scores: Tensor, target: Any, margin: float = 1.0) -> Tensor:
    """Multiclass SVM loss: mean over i of sum over j != y_i of max(0, s_j - s_y_i + margin)."""
    t = _class_targets(target, scores, "svm_loss")
    return Tensor.apply(SVMLossOp(t, float(margin)), scores)
