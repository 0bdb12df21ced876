"""Optimizers step by step against torch.optim, plus groups, zero_grad, state_dict and errors."""
import numpy as np
import pytest

from tinygrad_cv import Tensor, nn, optim

R = np.random.default_rng(0)
W0 = [R.normal(size=(4, 3)).astype(np.float32), R.normal(size=3).astype(np.float32)]
GRADS = [[R.normal(size=w.shape).astype(np.float32) for w in W0] for _ in range(6)]

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
]


@pytest.mark.parametrize("name, kw", CASES)
def test_steps_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    ours = [nn.Parameter(w.copy()) for w in W0]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in W0]
    opt, topt = getattr(optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    for grads in GRADS:
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step(), topt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-6, atol=1e-6)
            assert p.data.dtype == np.float32


def test_param_groups_with_their_own_lr_and_skipping_params_without_grad():
    a, b = nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    a.grad = np.ones(2, np.float32)
    data_b = b.data
    opt.step()
    assert np.allclose(a.data, 0.9) and np.allclose(b.data, 1.0)
    a.grad = b.grad = np.ones(2, np.float32)
    opt.step()
    assert np.allclose(a.data, 0.8) and np.allclose(b.data, 0.0)
    assert b.data is data_b                                    # updated in place
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_model_parameters_and_state_dict_roundtrip():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 1 and sd["param_groups"][0]["params"] == [0, 1]
    other = optim.Adam(model.parameters(), lr=0.5)
    other.load_state_dict(sd)
    assert other.param_groups[0]["lr"] == 0.01
    np.testing.assert_array_equal(other.state_dict()["state"][1]["exp_avg"], sd["state"][1]["exp_avg"])


def test_errors():
    p = nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="invalid learning rate: -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="optimizes Tensors"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="unknown option"):
        optim.SGD([{"params": [p], "lrr": 0.1}], lr=0.1)


def test_sgd_descends_a_quadratic():
    w = nn.Parameter(np.array([3.0, -2.0], np.float32))
    opt = optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    for _ in range(200):
        loss = (w * w).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert np.abs(w.data).max() < 1e-3
