"""Every layer and loss against torch: our state_dict loaded key for key, outputs and gradients compared."""
import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import Tensor, nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def _pair(ours, theirs, x, atol=1e-5, train=True):
    """Run both modules on x, backprop the same random weighting, compare everything."""
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    ours.train(train), theirs.train(train)
    xo = Tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    assert yo.shape == tuple(yt.shape)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), atol=atol, rtol=1e-4)
    w = np.random.default_rng(1).normal(size=yo.shape).astype(np.float32)
    (yo * Tensor(w)).sum().backward()
    (yt * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), atol=atol, rtol=1e-4)
    grads = dict(theirs.named_parameters())
    for k, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, grads[k].grad.numpy(), atol=atol, rtol=1e-4, err_msg=k)
    for k, v in theirs.state_dict().items():             # running statistics too
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), atol=1e-6, rtol=1e-5, err_msg=k)


R = np.random.default_rng(0)
IMG = R.normal(size=(4, 3, 9, 9)).astype(np.float32)
VEC = R.normal(size=(6, 5)).astype(np.float32)


@pytest.mark.parametrize("make, x", [
    (lambda m: m.Linear(5, 3), VEC),
    (lambda m: m.Linear(5, 3, bias=False), VEC),
    (lambda m: m.Conv2d(3, 4, 3), IMG),
    (lambda m: m.Conv2d(3, 6, (3, 2), stride=2, padding=1, groups=3), IMG),
    (lambda m: m.Conv2d(3, 2, 5, padding=2, bias=False), IMG),
    (lambda m: m.MaxPool2d(2), IMG),
    (lambda m: m.MaxPool2d(3, stride=2, padding=1), IMG),
    (lambda m: m.AvgPool2d(3, stride=3), IMG),
    (lambda m: m.ReLU(), VEC), (lambda m: m.LeakyReLU(0.2), VEC), (lambda m: m.ELU(0.7), VEC),
    (lambda m: m.Sigmoid(), VEC), (lambda m: m.Tanh(), VEC), (lambda m: m.Flatten(), IMG),
    (lambda m: m.Softmax(dim=1), VEC), (lambda m: m.LogSoftmax(dim=1), VEC),
    (lambda m: m.BatchNorm1d(5), VEC),
    (lambda m: m.BatchNorm1d(3), R.normal(size=(4, 3, 7)).astype(np.float32)),
    (lambda m: m.BatchNorm2d(3), IMG),
    (lambda m: m.BatchNorm2d(3, momentum=None), IMG),
    (lambda m: m.BatchNorm2d(3, affine=False), IMG),
    (lambda m: m.BatchNorm2d(3, track_running_stats=False), IMG),
    (lambda m: m.Dropout(0.0), VEC),
    (lambda m: m.Sequential(m.Conv2d(3, 4, 3, padding=1), m.BatchNorm2d(4), m.ReLU(), m.MaxPool2d(2),
                            m.Flatten(), m.Linear(64, 7)), IMG),
])
@pytest.mark.parametrize("train", [True, False])
def test_layer_matches_torch(make, x, train):
    tg.manual_seed(0)
    _pair(make(nn), make(tnn), x, train=train)


def test_batchnorm_running_stats_over_several_steps_and_eval():
    ours, theirs = nn.BatchNorm2d(3, momentum=0.3), tnn.BatchNorm2d(3, momentum=0.3)
    for i in range(4):
        x = R.normal(i, 1 + i, size=(5, 3, 4, 4)).astype(np.float32)
        ours(Tensor(x)), theirs(torch.from_numpy(x))
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-5, err_msg=k)
    assert int(ours.num_batches_tracked.data) == 4
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(Tensor(IMG)).data, theirs(torch.from_numpy(IMG)).detach().numpy(), atol=1e-5)


def test_dropout_in_eval_is_identity_like_torch():
    d = nn.Dropout(0.5).eval()
    x = Tensor(VEC)
    assert d(x) is x


def test_maxout_matches_a_torch_composition():
    tg.manual_seed(0)
    ours = nn.Maxout(5, 3, pieces=4)
    lin = tnn.Linear(5, 12)
    lin.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    xo, xt = Tensor(VEC, requires_grad=True), torch.tensor(VEC, requires_grad=True)
    yo, yt = ours(xo), lin(xt).view(6, 3, 4).max(dim=-1).values
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), atol=1e-6)
    yo.sum().backward(), yt.sum().backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.weight.grad, lin.weight.grad.numpy(), atol=1e-6)


LOGITS = (R.normal(size=(8, 5)) * 3).astype(np.float32)
TARGET = R.integers(0, 5, 8)


@pytest.mark.parametrize("ours, theirs, x", [
    (lambda x: F.cross_entropy(x, TARGET), lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(TARGET)), LOGITS),
    (lambda x: F.cross_entropy(x, TARGET, reduction="sum"),
     lambda x: torch.nn.functional.cross_entropy(x, torch.from_numpy(TARGET), reduction="sum"), LOGITS),
    (lambda x: F.nll_loss(F.log_softmax(x), TARGET),
     lambda x: torch.nn.functional.nll_loss(torch.log_softmax(x, -1), torch.from_numpy(TARGET)), LOGITS),
    (lambda x: F.binary_cross_entropy(x.sigmoid(), (LOGITS > 0).astype(np.float32)),
     lambda x: torch.nn.functional.binary_cross_entropy(x.sigmoid(), torch.from_numpy((LOGITS > 0).astype(np.float32))),
     LOGITS),
    (lambda x: F.mse_loss(x, LOGITS[::-1].copy()),
     lambda x: torch.nn.functional.mse_loss(x, torch.from_numpy(LOGITS[::-1].copy())), LOGITS),
    (lambda x: F.mse_loss(x, LOGITS[::-1].copy(), reduction="none"),
     lambda x: torch.nn.functional.mse_loss(x, torch.from_numpy(LOGITS[::-1].copy()), reduction="none"), LOGITS),
    (lambda x: F.softmax(x, dim=0), lambda x: torch.softmax(x, 0), LOGITS),
    (lambda x: F.log_softmax(x * 100), lambda x: torch.log_softmax(x * 100, -1), LOGITS),
    (lambda x: F.batch_norm(x, None, None, training=True),
     lambda x: torch.nn.functional.batch_norm(x, None, None, training=True), LOGITS),
])
def test_functional_matches_torch(ours, theirs, x):
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    w = np.random.default_rng(2).uniform(0.5, 1.5, yo.shape).astype(np.float32)
    (yo * Tensor(w)).sum().backward()
    (yt * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_svm_loss_matches_the_cs231n_formula_with_torch_autograd():
    s = torch.tensor(LOGITS, requires_grad=True)
    correct = s[torch.arange(8), torch.from_numpy(TARGET)][:, None]
    margins = torch.clamp(s - correct + 1.0, min=0)
    margins = margins * (1 - torch.nn.functional.one_hot(torch.from_numpy(TARGET), 5))
    ref = margins.sum() / 8
    ref.backward()
    xo = Tensor(LOGITS, requires_grad=True)
    out = F.svm_loss(xo, TARGET)
    out.backward()
    assert np.isclose(out.item(), ref.item(), rtol=1e-6)
    np.testing.assert_allclose(xo.grad, s.grad.numpy(), atol=1e-6)
