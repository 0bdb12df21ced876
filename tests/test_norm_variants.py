"""Layer, group and instance norm: gradcheck of every input and torch parity on every backend
(numpy, numba, cuda on numba's simulator), state_dict names, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import backends, nn
from tinygrad_cv.tensors import Tensor
from tests.test_conv_transpose import on_backend  # noqa: F401  (a fixture: each backend selected)
from tests.test_kernels import BACKENDS, load_backend
from tests.test_rownorm_kernels import quick_simulator  # noqa: F401  (a fixture: a quicker simulator)

R = np.random.default_rng(0)


def t64(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


GRADCHECKS = [
    ("layer_norm last axis", lambda x, w, b: F.layer_norm(x, 5, w, b), [(3, 5), (5,), (5,)]),
    ("layer_norm two axes", lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [(2, 2, 3, 4), (3, 4), (3, 4)]),
    ("layer_norm no affine", lambda x: F.layer_norm(x, (2, 3)), [(4, 2, 3)]),
    ("layer_norm weight only", lambda x, w: F.layer_norm(x, 4, w), [(3, 4), (4,)]),
    ("layer_norm bias only", lambda x, b: F.layer_norm(x, 4, None, b), [(3, 4), (4,)]),
    ("group_norm 4d", lambda x, w, b: F.group_norm(x, 2, w, b), [(2, 4, 3, 3), (4,), (4,)]),
    ("group_norm 3d", lambda x, w, b: F.group_norm(x, 3, w, b), [(2, 6, 5), (6,), (6,)]),
    ("group_norm one group", lambda x, w, b: F.group_norm(x, 1, w, b), [(3, 2, 2, 2), (2,), (2,)]),
    ("group_norm no affine", lambda x: F.group_norm(x, 2), [(1, 4, 2, 3)]),
    ("instance_norm affine", lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [(2, 3, 3, 4), (3,), (3,)]),
    ("instance_norm no affine", lambda x: F.instance_norm(x), [(2, 3, 5)]),
]


# The simulator runs each block's threads in Python (a few ms a row), and a gradcheck runs the
# forward twice per input value: on cuda, one case of each kind and both affine and none.
ON_SIMULATOR = {"layer_norm last axis", "layer_norm bias only", "group_norm one group", "group_norm no affine",
                "instance_norm no affine"}
GRADCHECK_RUNS = [pytest.param(b, *g, id=f"{b}-{g[0]}") for b in BACKENDS for g in GRADCHECKS
                  if b != "cuda" or g[0] in ON_SIMULATOR]


@pytest.fixture
def every_backend(on_backend, quick_simulator):
    """Each backend in turn selected for the ops; its name."""
    return on_backend


@pytest.mark.parametrize("backend, name, fn, shapes", GRADCHECK_RUNS)
def test_gradcheck_every_input(backend, name, fn, shapes, quick_simulator):
    load_backend(backend)
    backends._selected = backend                        # conftest restores the choice
    inputs = [t64(R.normal(size=s) * 2 + 0.5) for s in shapes]
    assert tg.gradcheck(fn, *inputs, raise_exception=True), name


def test_float32_in_float32_out_and_stats_over_the_right_axes(every_backend):
    x = Tensor((R.normal(size=(4, 6, 5, 5)) * 3 + 2).astype(np.float32))
    for y, axes in ((F.layer_norm(x, (6, 5, 5)), (1, 2, 3)), (F.instance_norm(x), (2, 3))):
        assert y.data.dtype == np.float32
        np.testing.assert_allclose(y.data.mean(axis=axes), 0, atol=1e-5)
        np.testing.assert_allclose(y.data.std(axis=axes), 1, atol=1e-3)
    g = F.group_norm(x, 3).data.reshape(4, 3, -1)
    np.testing.assert_allclose(g.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(g.std(-1), 1, atol=1e-3)


def test_op_names_and_derivatives_as_data():
    x = Tensor(R.normal(size=(2, 4, 3)), requires_grad=True)
    w = Tensor(np.ones(4), requires_grad=True)
    for y, name in ((F.group_norm(x, 2, w), "group_norm"), (F.instance_norm(x, bias=w), "instance_norm"),
                    (F.layer_norm(x, 3), "layer_norm")):
        op = y.op
        assert op.name == name and len(op.inputs) == len(op.derivatives)
    assert F.group_norm(x, 2, w).op.inputs == ("x", "gamma")
    assert F.instance_norm(x, bias=w).op.inputs == ("x", "beta")


# ---------------------------------------------------------------- torch parity

def _torch_pair(make_tg, make_torch, shape, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    ours, theirs = make_tg(), make_torch(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for p in ours.parameters():                          # random weights, loaded into torch by name
        p.data[...] = rng.normal(size=p.shape).astype(np.float32)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    x = (rng.normal(size=shape) * 2 + 1).astype(np.float32)
    up = rng.normal(size=shape).astype(np.float32)
    xt = Tensor(x, requires_grad=True)
    yt = ours(xt)
    (yt * Tensor(up)).sum().backward()
    xr = torch.tensor(x, requires_grad=True)
    yr = theirs(xr)
    (yr * torch.from_numpy(up)).sum().backward()
    np.testing.assert_allclose(yt.numpy(), yr.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(xt.grad), xr.grad.numpy(), atol=1e-4)
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(np.asarray(p.grad), named[name].grad.numpy(), atol=1e-4, err_msg=name)


LAYERS = [
    ("LayerNorm(8)", lambda: nn.LayerNorm(8), lambda t: t.nn.LayerNorm(8), (4, 3, 8)),
    ("LayerNorm((4, 5, 5))", lambda: nn.LayerNorm((4, 5, 5), eps=1e-3),
     lambda t: t.nn.LayerNorm((4, 5, 5), eps=1e-3), (3, 4, 5, 5)),
    ("LayerNorm no affine", lambda: nn.LayerNorm(6, elementwise_affine=False),
     lambda t: t.nn.LayerNorm(6, elementwise_affine=False), (5, 6)),
    ("LayerNorm no bias", lambda: nn.LayerNorm(6, bias=False), lambda t: t.nn.LayerNorm(6, bias=False), (5, 6)),
    ("GroupNorm(2, 6)", lambda: nn.GroupNorm(2, 6), lambda t: t.nn.GroupNorm(2, 6), (3, 6, 4, 4)),
    ("GroupNorm(3, 6) 3d", lambda: nn.GroupNorm(3, 6), lambda t: t.nn.GroupNorm(3, 6), (2, 6, 7)),
    ("GroupNorm batch 1", lambda: nn.GroupNorm(4, 8, eps=1e-4), lambda t: t.nn.GroupNorm(4, 8, eps=1e-4), (1, 8, 3, 3)),
    ("GroupNorm no affine", lambda: nn.GroupNorm(1, 4, affine=False),
     lambda t: t.nn.GroupNorm(1, 4, affine=False), (2, 4, 3, 3)),
    ("InstanceNorm2d(3)", lambda: nn.InstanceNorm2d(3), lambda t: t.nn.InstanceNorm2d(3), (2, 3, 5, 5)),
    ("InstanceNorm2d affine", lambda: nn.InstanceNorm2d(4, affine=True),
     lambda t: t.nn.InstanceNorm2d(4, affine=True), (3, 4, 4, 6)),
]


@pytest.mark.parametrize("name, make_tg, make_torch, shape", LAYERS, ids=[row[0] for row in LAYERS])
def test_layer_matches_torch_forward_and_backward(every_backend, name, make_tg, make_torch, shape):
    _torch_pair(make_tg, make_torch, shape, seed=len(name))


@pytest.mark.parametrize("ours, theirs", [
    (lambda: nn.LayerNorm((3, 4)), lambda t: t.nn.LayerNorm((3, 4))),
    (lambda: nn.GroupNorm(2, 4), lambda t: t.nn.GroupNorm(2, 4)),
    (lambda: nn.InstanceNorm2d(4), lambda t: t.nn.InstanceNorm2d(4)),
    (lambda: nn.InstanceNorm2d(4, affine=True), lambda t: t.nn.InstanceNorm2d(4, affine=True)),
    (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.ReLU(), nn.InstanceNorm2d(4, affine=True)),
     lambda t: t.nn.Sequential(t.nn.Conv2d(1, 4, 3), t.nn.GroupNorm(2, 4), t.nn.ReLU(),
                               t.nn.InstanceNorm2d(4, affine=True))),
])
def test_state_dict_keys_and_shapes_equal_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    a, b = ours().state_dict(), theirs(torch).state_dict()
    assert list(a) == list(b)
    assert [tuple(v.shape) for v in a.values()] == [tuple(v.shape) for v in b.values()]


def test_default_parameters_are_ones_and_zeros():
    ln = nn.LayerNorm((2, 3))
    assert ln.weight.shape == (2, 3) and np.all(ln.weight.numpy() == 1) and np.all(ln.bias.numpy() == 0)
    gn = nn.GroupNorm(2, 4)
    assert gn.weight.shape == (4,) and gn.bias.shape == (4,)
    assert nn.InstanceNorm2d(3).weight is None and list(nn.InstanceNorm2d(3).parameters()) == []


def test_functional_matches_torch_functional(every_backend):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x, w, b = (R.normal(size=s).astype(np.float32) for s in ((2, 6, 3, 4), 6, 6))
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    np.testing.assert_allclose(F.group_norm(Tensor(x), 3, Tensor(w), Tensor(b), eps=1e-3).numpy(),
                               tF.group_norm(tx, 3, tw, tb, eps=1e-3).numpy(), atol=1e-5)
    np.testing.assert_allclose(F.instance_norm(Tensor(x), weight=Tensor(w), bias=Tensor(b)).numpy(),
                               tF.instance_norm(tx, weight=tw, bias=tb).numpy(), atol=1e-5)
    np.testing.assert_allclose(F.layer_norm(Tensor(x), (3, 4)).numpy(), tF.layer_norm(tx, (3, 4)).numpy(), atol=1e-5)


# ---------------------------------------------------------------- errors

def test_bad_shapes_are_named():
    x = Tensor(np.zeros((2, 6, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"num_groups \(4\) must divide the number of channels \(6\).*\(2, 6, 4, 4\)"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match=r"num_groups \(4\) must divide num_channels \(6\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"weight must have shape \(6,\).*got \(3,\)"):
        F.group_norm(x, 3, Tensor(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match=r"normalized_shape \(5,\) must match the last axes.*\(2, 6, 4, 4\)"):
        F.layer_norm(x, 5)
    with pytest.raises(ValueError, match=r"normalized_shape \(6, 4, 5\)"):
        nn.LayerNorm((6, 4, 5))(x)
    with pytest.raises(ValueError, match=r"bias must have shape \(4, 4\)"):
        F.layer_norm(x, (4, 4), None, Tensor(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\) expects input of shape \(N, 4, \.\.\.\), "
                                         r"got \(2, 6, 4, 4\)"):
        nn.GroupNorm(2, 4)(x)
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(6\) expects input of shape \(N, 6, H, W\), got \(6, 4, 4\)"):
        nn.InstanceNorm2d(6)(Tensor(np.zeros((6, 4, 4), np.float32)))
    with pytest.raises(ValueError, match=r"more than 1 spatial element.*\(2, 6, 1, 1\)"):
        F.instance_norm(Tensor(np.zeros((2, 6, 1, 1), np.float32)))
    with pytest.raises(ValueError, match=r"input must be \(N, C, \.\.\.\)"):
        F.group_norm(Tensor(np.zeros(6, np.float32)), 2)
    with pytest.raises(ValueError, match="running statistics"):
        F.instance_norm(x, np.zeros(6), np.ones(6))
    with pytest.raises(ValueError, match="track_running_stats"):
        nn.InstanceNorm2d(6, track_running_stats=True)


def test_integer_input_and_empty_groups_are_refused_and_empty_batches_pass():
    with pytest.raises(TypeError, match="layer_norm: input must be floating point, got int64"):
        F.layer_norm(Tensor(np.arange(12).reshape(2, 6)), 6)
    with pytest.raises(ValueError, match=r"group_norm: every group needs at least one value.*\(2, 4, 0\)"):
        F.group_norm(Tensor(np.zeros((2, 4, 0), np.float32)), 2)
    x = Tensor(np.zeros((0, 4, 3), np.float32), requires_grad=True)
    w = Tensor(np.ones(4, np.float32), requires_grad=True)
    y = F.group_norm(x, 2, w)
    y.sum().backward()
    assert y.shape == (0, 4, 3) and x.grad.shape == (0, 4, 3) and np.all(np.asarray(w.grad) == 0)


def test_per_example_norms_ignore_the_rest_of_the_batch(every_backend):
    x = R.normal(size=(8, 4, 3, 3))
    for fn in (lambda a: F.layer_norm(a, (4, 3, 3)), F.instance_norm, lambda a: F.group_norm(a, 2)):
        whole = fn(Tensor(x)).numpy()[:1]
        alone = fn(Tensor(x[:1])).numpy()
        np.testing.assert_allclose(whole, alone, atol=1e-12)
