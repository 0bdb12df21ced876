"""The model zoo against torch modules written out by hand (no torchvision); skipped without torch."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import nn
from tinygrad_cv.nn import AdaptiveAvgPool2d
from tinygrad_cv.models import inception_module, mobilenet_v1, resnet18
from tinygrad_cv.models.resnet import Bottleneck

# -- parity with torch (modules written out by hand: no torchvision) -----------------------------------

torch = pytest.importorskip("torch")      # the whole file needs torch
tnn = torch.nn


class TBasicBlock(tnn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TBottleneck(tnn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = tnn.BatchNorm2d(planes * 4)
        self.relu = tnn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(out)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TResNet18(tnn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, planes in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if i == 1 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes))
            setattr(self, f"layer{i}", tnn.Sequential(TBasicBlock(inplanes, planes, stride, down),
                                                      TBasicBlock(planes, planes)))
            inplanes = planes
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def copy_into_torch(ours, theirs):
    """Our state_dict into the torch module: strict, so every key and shape must match."""
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}, strict=True)


def randomize_bn_stats(model):
    r = np.random.default_rng(5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.data[...] = r.normal(0, 0.1, m.num_features)
            m.running_var.data[...] = r.uniform(0.5, 1.5, m.num_features)
            m.weight.data[...] = r.uniform(0.5, 1.5, m.num_features)
            m.bias.data[...] = r.normal(0, 0.1, m.num_features)


def to_float64(model):
    for _, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.data.dtype == np.float32:
            t.data = t.data.astype(np.float64)


def test_resnet18_matches_torch_eval_and_train():
    tg.set_backend("numba")
    ours, theirs = resnet18(num_classes=10), TResNet18(10)
    randomize_bn_stats(ours)
    copy_into_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(ours(tg.Tensor(x)).data, expected, rtol=1e-3, atol=1e-4)
    # training mode (batch statistics) and every gradient, in float64: with two examples, BN over
    # layer4's 2x2 values amplifies float32 rounding, so float32 gradients differ by a few percent
    to_float64(ours)
    theirs.double()
    ours.train(), theirs.train()
    target = np.array([1, 8])
    loss = F.cross_entropy(ours(tg.Tensor(x, dtype=np.float64)), target)
    loss.backward()
    tloss = tnn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(target))
    tloss.backward()
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-9)
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        their_grad = their_params[name].grad.numpy()
        assert np.abs(p.grad - their_grad).max() <= 1e-6 * (np.abs(their_grad).max() + 1e-12), name
    their_buffers = dict(theirs.named_buffers())
    np.testing.assert_allclose(ours.layer4[1].bn2.running_var.data, their_buffers["layer4.1.bn2.running_var"].numpy(),
                               rtol=1e-9)


def test_bottleneck_block_matches_torch():
    tg.set_backend("numba")
    down = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
    ours = Bottleneck(16, 8, stride=2, downsample=down).eval()
    randomize_bn_stats(ours)
    tdown = tnn.Sequential(tnn.Conv2d(16, 32, 1, 2, bias=False), tnn.BatchNorm2d(32))
    theirs = TBottleneck(16, 8, 2, tdown).eval()
    copy_into_torch(ours, theirs)
    x = np.random.default_rng(1).standard_normal((2, 16, 9, 9)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(tg.Tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reductions", [(None, None, None), (3, 2, 5)])
def test_inception_module_matches_torch(reductions):
    tg.set_backend("numba")
    r3, r5, proj = reductions
    ours = inception_module(8, 4, 6, 2, r3, r5, proj)

    def conv_relu(i, o, k):
        return [tnn.Conv2d(i, o, k, padding=k // 2), tnn.ReLU()]

    theirs = tnn.Module()
    theirs.branch1 = tnn.Sequential(*conv_relu(8, 4, 1))
    theirs.branch2 = tnn.Sequential(*(conv_relu(8, r3, 1) if r3 else []), *conv_relu(r3 or 8, 6, 3))
    theirs.branch3 = tnn.Sequential(*(conv_relu(8, r5, 1) if r5 else []), *conv_relu(r5 or 8, 2, 5))
    theirs.branch4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1), *(conv_relu(8, proj, 1) if proj else []))
    copy_into_torch(ours, theirs)
    x = np.random.default_rng(2).standard_normal((2, 8, 7, 7)).astype(np.float32)
    tx = torch.from_numpy(x)
    with torch.no_grad():
        expected = torch.cat([theirs.branch1(tx), theirs.branch2(tx), theirs.branch3(tx), theirs.branch4(tx)], 1)
    out = ours(tg.Tensor(x))
    assert out.shape == (2, ours.out_channels, 7, 7) == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_mobilenet_v1_matches_torch():
    tg.set_backend("numba")
    ours = mobilenet_v1(num_classes=5, width_mult=0.25).eval()
    randomize_bn_stats(ours)

    def ds(i, o, s):
        return tnn.Sequential(OrderedDict([
            ("depthwise", tnn.Conv2d(i, i, 3, s, 1, groups=i, bias=False)), ("bn1", tnn.BatchNorm2d(i)),
            ("relu1", tnn.ReLU()), ("pointwise", tnn.Conv2d(i, o, 1, bias=False)), ("bn2", tnn.BatchNorm2d(o)),
            ("relu2", tnn.ReLU())]))

    widths = [8, 16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256]
    strides = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]
    layers = [tnn.Sequential(tnn.Conv2d(3, 8, 3, 2, 1, bias=False), tnn.BatchNorm2d(8), tnn.ReLU())]
    layers += [ds(widths[i], widths[i + 1], strides[i]) for i in range(13)]
    theirs = tnn.Module()
    theirs.features = tnn.Sequential(*layers)
    theirs.fc = tnn.Linear(256, 5)
    theirs.eval()
    copy_into_torch(ours, theirs)
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = theirs.fc(theirs.features(torch.from_numpy(x)).mean((2, 3))).numpy()
    np.testing.assert_allclose(ours(tg.Tensor(x)).data, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("size, out", [((7, 5), (3, 2)), ((6, 6), (3, 3)), ((3, 3), (5, 4)), ((4, 4), 1)])
def test_adaptive_avg_pool_matches_torch(size, out):
    x = np.random.default_rng(4).standard_normal((2, 3, *size)).astype(np.float32)
    t = tg.Tensor(x, requires_grad=True)
    y = AdaptiveAvgPool2d(out)(t)
    tx = torch.from_numpy(x).requires_grad_()
    ty = tnn.functional.adaptive_avg_pool2d(tx, out)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = np.random.default_rng(5).standard_normal(ty.shape).astype(np.float32)
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# -- DenseNet's dense block and the Wide ResNet block ---------------------------------------------------

class TDenseLayer(tnn.Module):
    def __init__(self, cin, k, bn_size=4):
        super().__init__()
        self.norm1, self.relu1 = tnn.BatchNorm2d(cin), tnn.ReLU()
        self.conv1 = tnn.Conv2d(cin, bn_size * k, 1, bias=False)
        self.norm2, self.relu2 = tnn.BatchNorm2d(bn_size * k), tnn.ReLU()
        self.conv2 = tnn.Conv2d(bn_size * k, k, 3, 1, 1, bias=False)

    def forward(self, features):                   # torchvision's form: the list of all earlier maps
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class TDenseBlock(tnn.Module):
    def __init__(self, n, cin, k):
        super().__init__()
        for i in range(n):
            self.add_module(f"denselayer{i + 1}", TDenseLayer(cin + i * k, k))

    def forward(self, x):
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return torch.cat(features, 1)


class TWideBasic(tnn.Module):
    def __init__(self, cin, w, stride):
        super().__init__()
        self.bn1, self.relu1 = tnn.BatchNorm2d(cin), tnn.ReLU()
        self.conv1 = tnn.Conv2d(cin, w, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = tnn.BatchNorm2d(w), tnn.ReLU()
        self.conv2 = tnn.Conv2d(w, w, 3, 1, 1, bias=False)
        self.shortcut = tnn.Conv2d(cin, w, 1, stride, bias=False) if stride != 1 or cin != w else None

    def forward(self, x):
        o = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(o))))
        return out + (x if self.shortcut is None else self.shortcut(o))


def _parity(ours, theirs, x, train):
    randomize_bn_stats(ours)
    copy_into_torch(ours, theirs)
    ours.train(train), theirs.train(train)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    got = ours(tg.Tensor(x)).data
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    return got


@pytest.mark.parametrize("train", [False, True])
def test_dense_block_matches_torch(train):
    from tinygrad_cv.models import DenseBlock
    tg.set_backend("numba")
    ours, theirs = DenseBlock(3, 6, 4), TDenseBlock(3, 6, 4)
    x = np.random.default_rng(6).standard_normal((2, 6, 7, 7)).astype(np.float32)
    got = _parity(ours, theirs, x, train)
    assert got.shape == (2, 6 + 3 * 4, 7, 7)
    np.testing.assert_array_equal(got[:, :6], x)                 # the block's input passes through unchanged


@pytest.mark.parametrize("cin, w, stride", [(8, 8, 1), (4, 8, 1), (8, 16, 2)])
def test_wide_block_matches_torch(cin, w, stride):
    from tinygrad_cv.models import WideBasic
    tg.set_backend("numba")
    x = np.random.default_rng(7).standard_normal((2, cin, 8, 8)).astype(np.float32)
    for train in (False, True):
        _parity(WideBasic(cin, w, stride), TWideBasic(cin, w, stride), x, train)
