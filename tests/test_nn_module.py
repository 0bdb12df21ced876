"""nn.Module: registration, names, state_dict, modes, repr, scopes and input-shape errors."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import Tensor, nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.drop(self.features(x).flatten(1)))


def test_names_follow_pytorch():
    net = Net()
    assert [k for k, _ in net.named_parameters()] == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias", "fc.weight", "fc.bias"]
    assert list(net.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
        "fc.weight", "fc.bias"]
    assert [k for k, _ in net.named_buffers()] == [
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert [k for k, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "features.3", "drop", "fc"]
    assert [type(c).__name__ for c in net.children()] == ["Sequential", "Dropout", "Linear"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert net.state_dict()["features.1.num_batches_tracked"].dtype == np.int64


def test_parameters_are_float32_and_shared_ones_count_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert lin.weight.dtype == np.float32 and lin.weight.shape == (3, 3)
    assert nn.Linear(3, 2, bias=False).bias is None
    assert list(nn.Linear(3, 2, bias=False).state_dict()) == ["weight"]


def test_state_dict_roundtrip_and_errors():
    a, b = Net(), Net()
    x = Tensor(np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32))
    a(x)                                               # moves running statistics
    b.load_state_dict(a.state_dict())
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert np.array_equal(va, vb), k
    a.eval(), b.eval()
    assert np.allclose(a(x).data, b(x).data)
    sd = a.state_dict()
    sd["fc.weight"][...] = 7                           # a copy: the model is untouched
    assert not np.any(a.fc.weight.data == 7)
    bad = OrderedDict(sd)
    del bad["fc.bias"]
    bad["extra.weight"] = np.zeros(1)
    bad["features.0.weight"] = np.zeros((4, 1, 5, 5))
    with pytest.raises(ValueError) as e:
        b.load_state_dict(bad)
    msg = str(e.value)
    assert "missing keys ['fc.bias']" in msg and "unexpected keys ['extra.weight']" in msg
    assert "features.0.weight: expected (4, 1, 3, 3), got (4, 1, 5, 5)" in msg
    del bad["features.0.weight"]
    res = b.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["features.0.weight", "fc.bias"] and res.unexpected_keys == ["extra.weight"]


def test_train_eval_and_zero_grad():
    net = Net()
    assert net.training and net.features[1].training
    net.eval()
    assert not net.training and not net.drop.training and not net.features[1].training
    net.train()
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    seen = []
    net.fc.register_forward_hook(lambda m, inputs, out: seen.append(np.array(inputs[0].data)))
    net(x).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    (h,) = seen                                                  # what fc saw (after dropout), (2, 64)
    # d(sum of outputs)/d fc.bias = the batch size; d/d fc.weight[j] = the sum of fc's inputs
    np.testing.assert_allclose(net.fc.bias.grad, [2.0, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(net.fc.weight.grad, np.tile(h.sum(0), (3, 1)), rtol=1e-5, atol=1e-6)
    assert np.abs(net.features[0].weight.grad).max() > 0            # the signal reaches the first layer
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_forward_runs_in_the_module_name_scope():
    net = Net()
    out = net(Tensor(np.ones((2, 1, 8, 8), np.float32)))
    assert out.scope == "fc"
    g = tg.trace(out)
    scopes = {n.scope for n in g.nodes if n.op is not None}
    assert {"features.0", "features.1", "features.2", "features.3", "fc"} <= scopes


def test_sequential_indexing_len_iteration_and_repr():
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert len(seq) == 3 and seq[0].weight.shape == (3, 4) and seq[-1].weight.shape == (2, 3)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert len(seq[1:]) == 2
    with pytest.raises(IndexError, match="out of range"):
        seq[5]
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.Tanh()))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    assert repr(seq) == ("Sequential(\n  (0): Linear(in_features=4, out_features=3, bias=True)\n"
                         "  (1): ReLU()\n  (2): Linear(in_features=3, out_features=2, bias=True)\n)")
    assert repr(nn.Conv2d(1, 6, 5, padding=2)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    assert "BatchNorm2d(4, eps=1e-05, momentum=0.1" in repr(Net())


def test_wrong_input_shapes_raise_value_errors_naming_both_shapes():
    with pytest.raises(ValueError, match=r"\(N, 4\), got \(2, 5\)"):
        nn.Linear(4, 3)(Tensor(np.zeros((2, 5), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(2, 1, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(Tensor(np.zeros((2, 1, 8, 8), np.float32)))
    with pytest.raises(ValueError, match=r"\(N, 4, H, W\), got \(2, 4\)"):
        nn.BatchNorm2d(4)(Tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    for pool, fn in ((nn.MaxPool2d(2), "max_pool2d"), (nn.AvgPool2d(2), "avg_pool2d")):   # checked by F once
        with pytest.raises(ValueError, match=fn + r": input must be 4-D \(N, C, H, W\), got shape \(2, 3, 4\)"):
            pool(Tensor(np.zeros((2, 3, 4), np.float32)))


def test_default_init_is_pytorch_uniform():
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.weight.data).max() > 0.95 * bound
    assert np.abs(lin.bias.data).max() <= bound
    conv = nn.Conv2d(6, 16, 5)
    assert np.abs(conv.weight.data).max() <= 1 / np.sqrt(150)


def test_init_statistics():
    t = Tensor(np.zeros((1000, 500), np.float32))
    assert nn.init.xavier_(t) is t
    assert abs(t.data.std() / (1 / np.sqrt(500)) - 1) < 0.02 and abs(t.data.mean()) < 1e-3
    nn.init.he_(t)
    assert abs(t.data.std() / np.sqrt(2 / 500) - 1) < 0.02
    nn.init.small_random_(t)
    assert abs(t.data.std() / 0.01 - 1) < 0.02
    conv = Tensor(np.zeros((64, 32, 3, 3), np.float32))
    nn.init.he_(conv)
    assert abs(conv.data.std() / np.sqrt(2 / (32 * 9)) - 1) < 0.03
    nn.init.zeros_(conv)
    assert not conv.data.any() and conv.dtype == np.float32


def test_maxout_picks_the_best_piece():
    m = nn.Maxout(3, 2, pieces=4)
    assert m.weight.shape == (8, 3) and list(m.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    z = x @ m.weight.data.T + m.bias.data
    assert np.allclose(m(Tensor(x)).data, z.reshape(5, 2, 4).max(axis=-1), atol=1e-6)


def test_module_without_super_init_or_forward_says_so():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()
    with pytest.raises(TypeError, match="no forward"):
        nn.Module()(Tensor([1.0]))
