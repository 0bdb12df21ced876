"""Learning-rate schedules: torch's sequences, and the warmup / inverse-sqrt / 1/t forms."""
import math

import numpy as np
import pytest

from tinygrad_cv import nn, optim
from tinygrad_cv.optim import lr_scheduler as S


def _opt(lr=0.1, groups=1):
    ps = [nn.Parameter(np.zeros(1, np.float32)) for _ in range(groups)]
    return optim.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(ps)], lr=lr)


def _sequence(sched, opt, n):
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("name, kw", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("CosineAnnealingLR", dict(T_max=5)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.5, total_iters=8)),
    ("LambdaLR", dict(lr_lambda=lambda t: 1 / (1 + 0.3 * t))),
])
def test_sequences_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    opt = _opt(groups=2)
    tp = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(tp)], lr=0.1)
    ours = _sequence(getattr(S, name)(opt, **kw), opt, 20)
    theirs = _sequence(getattr(torch.optim.lr_scheduler, name)(topt, **kw), topt, 20)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12)


def test_warmup_then_constant_or_decay():
    opt = _opt(1.0)
    seq = _sequence(S.WarmupLR(opt, warmup_steps=4), opt, 7)[:, 0]
    np.testing.assert_allclose(seq, [0.25, 0.5, 0.75, 1, 1, 1, 1])
    opt = _opt(1.0)
    seq = _sequence(S.WarmupLR(opt, 2, decay=lambda t: 0.5 ** t), opt, 5)[:, 0]
    np.testing.assert_allclose(seq, [0.5, 1, 1, 0.5, 0.25])


def test_warmup_cosine():
    opt = _opt(1.0)
    sched = S.WarmupCosineLR(opt, warmup_steps=2, total_steps=6)
    seq = _sequence(sched, opt, 8)[:, 0]
    np.testing.assert_allclose(seq[:3], [0.5, 1.0, 1.0])
    np.testing.assert_allclose(seq[3], (1 + math.cos(math.pi / 4)) / 2)
    np.testing.assert_allclose(seq[6:], 0, atol=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_inverse_sqrt_and_inverse_time():
    opt = _opt(1.0)
    np.testing.assert_allclose(_sequence(S.InverseSqrtLR(opt), opt, 4)[:, 0], 1 / np.sqrt([1, 2, 3, 4]))
    opt = _opt(1.0)
    np.testing.assert_allclose(_sequence(S.InverseSqrtLR(opt, warmup_steps=2), opt, 4)[:, 0],
                               [0.5, 1.0, math.sqrt(2 / 3), math.sqrt(2 / 4)])
    opt = _opt(0.5)
    np.testing.assert_allclose(_sequence(S.InverseTimeLR(opt, k=0.5), opt, 4)[:, 0],
                               0.5 / (1 + 0.5 * np.arange(4)))


def test_state_dict_and_errors():
    opt = _opt()
    sched = S.StepLR(opt, 2)
    for _ in range(3):
        sched.step()
    assert sched.state_dict()["last_epoch"] == 3
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(_opt(), 0)
    with pytest.raises(TypeError, match="needs an Optimizer"):
        S.ExponentialLR([1], 0.9)
    with pytest.raises(ValueError, match="total_steps"):
        S.WarmupCosineLR(_opt(), 5, 5)
