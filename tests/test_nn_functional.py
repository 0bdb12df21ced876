"""nn.functional: gradcheck of every op, numerical stability, errors, and batch-norm statistics."""
import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import Tensor


def t64(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


R = np.random.default_rng(7)
X = R.normal(size=(5, 4))
Y = np.array([0, 3, 1, 3, 2])
SOFT = R.uniform(0, 1, (3, 2)).round(2)


@pytest.mark.parametrize("name, fn, inputs", [
    ("softmax", lambda x: F.softmax(x, dim=-1), [X]),
    ("softmax dim0", lambda x: F.softmax(x, dim=0), [X]),
    ("log_softmax", lambda x: F.log_softmax(x), [X]),
    ("log_softmax 3d dim1", lambda x: F.log_softmax(x, dim=1), [R.normal(size=(2, 3, 4))]),
    ("cross_entropy", lambda x: F.cross_entropy(x, Y), [X]),
    ("cross_entropy sum", lambda x: F.cross_entropy(x, Tensor(Y), reduction="sum"), [X]),
    ("cross_entropy none", lambda x: F.cross_entropy(x, Y, reduction="none"), [X]),
    ("nll_loss", lambda x: F.nll_loss(F.log_softmax(x), Y), [X]),
    ("nll_loss none", lambda x: F.nll_loss(x, Y, reduction="none"), [X]),
    ("binary_cross_entropy", lambda p: F.binary_cross_entropy(p, (X > 0).astype(float)), [R.uniform(0.1, 0.9, X.shape)]),
    ("bce soft targets", lambda p: F.binary_cross_entropy(p.sigmoid(), SOFT), [R.normal(size=(3, 2))]),
    ("mse_loss", lambda a, b: F.mse_loss(a, b), [X, R.normal(size=X.shape)]),
    ("svm_loss", lambda s: F.svm_loss(s, Y), [X]),
    ("svm_loss margin", lambda s: F.svm_loss(s, Y, margin=0.5), [X]),
    ("linear", lambda x, w, b: F.linear(x, w, b), [X, R.normal(size=(3, 4)), R.normal(size=3)]),
    ("linear no bias 3d", lambda x, w: F.linear(x, w), [R.normal(size=(2, 3, 4)), R.normal(size=(5, 4))]),
    ("maxout", lambda x, w, b: F.maxout(x, w, b, pieces=3), [X, R.normal(size=(6, 4)), R.normal(size=6)]),
    ("batch_norm train 2d", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     [X, R.uniform(0.5, 1.5, 4), R.normal(size=4)]),
    ("batch_norm train 4d", lambda x, w, b: F.batch_norm(x, np.zeros(3), np.ones(3), w, b, training=True),
     [R.normal(size=(2, 3, 2, 2)), R.uniform(0.5, 1.5, 3), R.normal(size=3)]),
    ("batch_norm train no affine", lambda x: F.batch_norm(x, None, None, training=True), [R.normal(size=(4, 3, 2))]),
    ("batch_norm eval", lambda x, w, b: F.batch_norm(x, np.array([0.1, -0.2, 0.3]), np.array([1.5, 0.5, 2.0]), w, b),
     [R.normal(size=(3, 3, 2, 2)), R.uniform(0.5, 1.5, 3), R.normal(size=3)]),
])
def test_gradcheck(name, fn, inputs):
    assert tg.gradcheck(fn, *[t64(a) for a in inputs], raise_exception=True), name


def test_dropout_gradcheck_with_a_fixed_mask():
    def fn(x):
        tg.manual_seed(3)                 # the same mask on every call
        return F.dropout(x, p=0.4, training=True)
    assert tg.gradcheck(fn, t64(R.normal(size=(6, 5))), raise_exception=True)


def test_dropout_is_inverted_and_identity_in_eval():
    x = Tensor(np.ones((200, 500), dtype=np.float32))
    y = F.dropout(x, p=0.3).data
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    assert np.allclose(y[kept], 1 / 0.7)
    assert abs(y.mean() - 1.0) < 0.02                      # expectation preserved
    assert F.dropout(x, p=0.3, training=False) is x
    assert np.all(F.dropout(x, p=1.0).data == 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, p=1.5)


def test_softmax_and_cross_entropy_are_stable_for_huge_logits():
    logits = Tensor(np.array([[1000.0, 0.0, -1000.0], [300.0, 300.0, 0.0]], dtype=np.float32), requires_grad=True)
    s = F.softmax(logits).data
    assert np.all(np.isfinite(s)) and np.allclose(s.sum(axis=1), 1)
    assert np.allclose(s[1, :2], 0.5)
    ls = F.log_softmax(logits).data
    assert np.all(np.isfinite(ls)) and np.isclose(ls[0, 2], -2000.0)
    loss = F.cross_entropy(logits, np.array([2, 0]))
    assert np.isclose(loss.item(), (2000 + np.log(2)) / 2, rtol=1e-5)
    loss.backward()
    assert np.all(np.isfinite(logits.grad))
    assert np.allclose(logits.grad, np.array([[1, 0, -1], [-0.5, 0.5, 0]]) / 2, atol=1e-6)


def test_losses_have_known_values():
    x = np.log(np.array([[0.5, 0.25, 0.25]], dtype=np.float32))
    assert np.isclose(F.cross_entropy(Tensor(x), [0]).item(), np.log(2), rtol=1e-6)
    assert np.isclose(F.nll_loss(Tensor(x), [1]).item(), np.log(4), rtol=1e-6)
    # CS231n's SVM example: scores for cat/car/frog, true class cat -> loss 2.9
    s = Tensor(np.array([[3.2, 5.1, -1.7]], dtype=np.float32))
    assert np.isclose(F.svm_loss(s, [0]).item(), 2.9, rtol=1e-6)
    assert np.isclose(F.mse_loss(Tensor([1.0, 3.0]), np.array([0.0, 0.0])).item(), 5.0)
    bce = F.binary_cross_entropy(Tensor([0.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.0]))
    assert np.isclose(bce.item(), (100 + 0 + np.log(2)) / 3, rtol=1e-5)    # log clamped at -100 as torch


def test_float32_stays_float32():
    x = Tensor(R.normal(size=(8, 3, 4, 4)).astype(np.float32), requires_grad=True)
    y = F.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32), training=True)
    loss = F.cross_entropy(F.linear(y.flatten(1), Tensor(np.ones((10, 48), np.float32))), np.arange(8))
    assert y.dtype == np.float32 and loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32


def test_batch_norm_running_stats_follow_torch_rule():
    x = R.normal(2.0, 3.0, size=(16, 3, 4, 4)).astype(np.float32)
    rm0 = np.array([1.0, -2.0, 5.0], np.float32)              # not zero, so the 0.9 * old term shows
    rm, rv = rm0.copy(), np.full(3, 4.0, np.float32)
    F.batch_norm(Tensor(x), rm, rv, training=True, momentum=0.1)
    mean = x.mean(axis=(0, 2, 3))
    var_unbiased = x.var(axis=(0, 2, 3), ddof=1)
    assert np.allclose(rm, 0.9 * rm0 + 0.1 * mean, rtol=1e-5)
    assert np.allclose(rv, 0.9 * 4.0 + 0.1 * var_unbiased, rtol=1e-5)
    # training output uses the biased variance
    y = F.batch_norm(Tensor(x), None, None, training=True, eps=0.0).data
    assert np.allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert np.allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-4)


def test_errors_name_shapes_and_values():
    x = Tensor(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 2\)"):
        F.linear(x, Tensor(np.zeros((5, 2), np.float32)))
    with pytest.raises(ValueError, match="class 7 is out of range for 3 classes"):
        F.cross_entropy(x, [0, 1, 2, 7])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        F.cross_entropy(x, [0, 1])
    with pytest.raises(TypeError, match="integer class"):
        F.nll_loss(x, np.array([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.binary_cross_entropy(Tensor([1.5]), [1.0])
    with pytest.raises(ValueError, match="running_mean must have shape"):
        F.batch_norm(x, np.zeros(4), np.ones(4), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(np.zeros((1, 3), np.float32)), None, None, training=True)
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, x, reduction="avg")
