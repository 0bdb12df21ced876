"""The model zoo against the course's figures, torchvision's published totals and torch itself."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import nn
from tinygrad_cv.nn import AdaptiveAvgPool2d
from tinygrad_cv.models import (alexnet, inception_module, mobilenet_v1, resnet18, resnet34,
                                resnet50, skip_init, summary, vgg16, vgg19)
from tinygrad_cv.models.resnet import Bottleneck


def n_params(model):
    return sum(p.size for p in model.parameters())


def build(factory, *args, **kwargs):
    with skip_init():                      # counting parameters needs shapes, not values
        return factory(*args, **kwargs)


# -- AlexNet: the course's simplified listing --------------------------------------------------------

def test_alexnet_follows_the_course_listing():
    s = summary(build(alexnet), (3, 227, 227))
    main = [r for r in s.rows if r["type"] in ("Conv2d", "MaxPool2d", "Linear")]
    assert [r["output_shape"] for r in main] == [
        (96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13), (384, 13, 13),
        (256, 13, 13), (256, 6, 6), (4096,), (4096,), (1000,)]
    conv1, pool1 = main[0], main[1]
    assert conv1["name"] == "features.0"
    assert conv1["params"] == (11 * 11 * 3) * 96 + 96 == 34_944          # "(11x11x3)x96 = 35K" + biases
    assert pool1["name"] == "features.2" and pool1["params"] == 0        # "Parameters: 0!"
    assert s.total_params == 62_378_344


def test_alexnet_names_like_torchvision():
    m = build(alexnet, num_classes=10)
    assert m.features[0].weight.shape == (96, 3, 11, 11)
    sd = m.state_dict()
    assert list(sd)[:2] == ["features.0.weight", "features.0.bias"]
    assert list(sd)[-2:] == ["classifier.6.weight", "classifier.6.bias"]
    assert sd["classifier.1.weight"].shape == (4096, 6 * 6 * 256) and sd["classifier.6.bias"].shape == (10,)


# -- VGG: the course's table -----------------------------------------------------------------------

# (type, output (C, H, W), memory as the seed writes it, weights "not counting biases")
VGG16_SEED = [
    ("Conv2d", (64, 224, 224), 224 * 224 * 64, (3 * 3 * 3) * 64),
    ("Conv2d", (64, 224, 224), 224 * 224 * 64, (3 * 3 * 64) * 64),
    ("MaxPool2d", (64, 112, 112), 112 * 112 * 64, 0),
    ("Conv2d", (128, 112, 112), 112 * 112 * 128, (3 * 3 * 64) * 128),
    ("Conv2d", (128, 112, 112), 112 * 112 * 128, (3 * 3 * 128) * 128),
    ("MaxPool2d", (128, 56, 56), 56 * 56 * 128, 0),
    ("Conv2d", (256, 56, 56), 56 * 56 * 256, (3 * 3 * 128) * 256),
    ("Conv2d", (256, 56, 56), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("Conv2d", (256, 56, 56), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("MaxPool2d", (256, 28, 28), 28 * 28 * 256, 0),
    ("Conv2d", (512, 28, 28), 28 * 28 * 512, (3 * 3 * 256) * 512),
    ("Conv2d", (512, 28, 28), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("Conv2d", (512, 28, 28), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("MaxPool2d", (512, 14, 14), 14 * 14 * 512, 0),
    ("Conv2d", (512, 14, 14), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("Conv2d", (512, 14, 14), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("Conv2d", (512, 14, 14), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("MaxPool2d", (512, 7, 7), 7 * 7 * 512, 0),
    ("Linear", (4096,), 4096, 7 * 7 * 512 * 4096),
    ("Linear", (4096,), 4096, 4096 * 4096),
    ("Linear", (1000,), 1000, 4096 * 1000),
]
SEED_INPUT_MEMORY = 224 * 224 * 3        # "INPUT: [224x224x3] memory: 224*224*3=150K"


@pytest.fixture(scope="module")
def vgg16_summary():
    return summary(build(vgg16), (3, 224, 224))


def test_vgg16_rows_match_the_seed_table(vgg16_summary):
    rows = [r for r in vgg16_summary.rows if r["type"] in ("Conv2d", "MaxPool2d", "Linear")]
    assert len(rows) == len(VGG16_SEED)
    for r, (kind, shape, memory, weights) in zip(rows, VGG16_SEED):
        biases = shape[0] if kind != "MaxPool2d" else 0
        assert (r["type"], r["output_shape"], r["memory"], r["params"]) == (kind, shape, memory, weights + biases)
    assert rows[0]["memory"] == 3_211_264 and rows[0]["params"] - 64 == 1_728
    assert rows[-3]["params"] - 4096 == 102_760_448


def test_vgg16_totals_are_the_true_sums_of_the_seed_lines(vgg16_summary):
    s = vgg16_summary
    seed_memory = SEED_INPUT_MEMORY + sum(m for _, _, m, _ in VGG16_SEED)
    seed_weights = sum(w for *_, w in VGG16_SEED)
    assert seed_weights == 138_344_128                     # "TOTAL params: 138M parameters" agrees
    assert s.total_params == 138_357_544 == seed_weights + 13_416     # torchvision's total, with biases
    # the seed prints "TOTAL memory: 24M * 4 bytes ~= 96MB / image"; its own lines sum to 15.2M
    assert s.total_memory == seed_memory == 15_237_608
    assert s.total_memory_bytes == 60_950_432                # ~61 MB, not ~96 MB
    assert abs(s.total_memory - 24e6) > 8e6
    assert s.total_macs == 15_470_264_320                  # ~15.5 G multiply-adds


def test_vgg19_and_batch_norm_totals():
    assert summary(build(vgg19), (3, 224, 224)).total_params == 143_667_240
    m = build(vgg16, batch_norm=True, num_classes=10)
    assert n_params(m) == 138_365_992 - 4096 * 990 - 990            # torchvision vgg16_bn, 10 classes
    assert "features.1.running_var" in dict(m.named_buffers())
    assert "classifier.6.weight" in dict(m.named_parameters())


# -- ResNet, MobileNet: torchvision's / the paper's totals ---------------------------------------------

@pytest.mark.parametrize("factory, params, macs", [
    (resnet18, 11_689_512, 1_814_073_344),      # paper: 1.8 x 10^9 FLOPs (multiply-adds)
    (resnet34, 21_797_672, 3_663_761_408),      # 3.6 x 10^9
    (resnet50, 25_557_032, 4_089_184_256),      # 4.1 G in torchvision's stride-on-3x3 variant
])
def test_resnet_totals(factory, params, macs):
    s = summary(build(factory), (3, 224, 224))
    assert s.total_params == params and s.total_macs == macs
    assert s.rows[-1]["name"] == "fc" and s.rows[-1]["output_shape"] == (1000,)


def test_resnet18_state_dict_keys_like_torchvision():
    sd = build(resnet18).state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                "layer4.1.bn2.running_var", "fc.weight", "fc.bias"):
        assert key in sd, key
    assert "layer1.0.downsample.0.weight" not in sd          # same shape: identity shortcut
    assert "conv1.bias" not in sd                             # convs before BN have no bias
    assert len(sd) == 122


def test_mobilenet_v1_paper_figures():
    s = summary(build(mobilenet_v1), (3, 224, 224))
    assert s.total_params == 4_231_976                        # "4.2 Million parameters"
    assert round(s.total_macs / 1e6) == 569                   # "569 Million Mult-Adds"
    dw = next(r for r in s.rows if r["name"] == "features.1.depthwise")
    assert dw["params"] == 3 * 3 * 32 and dw["macs"] == 112 * 112 * 32 * 3 * 3
    assert [r["output_shape"] for r in s.rows if r["name"] == "features.13.pointwise"] == [(1024, 7, 7)]
    half = build(mobilenet_v1, num_classes=10, width_mult=0.5)
    assert half.fc.in_features == 512 and half.features[1].depthwise.groups == 16


# -- inception: the course's GoogLeNet example ------------------------------------------------------

NAIVE_OPS = [28 * 28 * 128 * 1 * 1 * 256, 28 * 28 * 192 * 3 * 3 * 256, 28 * 28 * 96 * 5 * 5 * 256]
BOTTLENECK_OPS = [28 * 28 * 64 * 1 * 1 * 256, 28 * 28 * 64 * 1 * 1 * 256, 28 * 28 * 128 * 1 * 1 * 256,
                  28 * 28 * 192 * 3 * 3 * 64, 28 * 28 * 96 * 5 * 5 * 64, 28 * 28 * 64 * 1 * 1 * 256]


def test_naive_inception_depth_and_ops():
    s = summary(inception_module(256, 128, 192, 96), (256, 28, 28))
    assert s.rows[-1]["output_shape"] == (672, 28, 28)        # 28x28x(128 + 192 + 96 + 256)
    convs = [r["macs"] for r in s.rows if r["type"] == "Conv2d"]
    assert sorted(convs) == sorted(NAIVE_OPS)
    assert s.total_macs == sum(NAIVE_OPS) == 854_196_224      # "Total: 854M ops"


def test_bottleneck_inception_ops_true_sum():
    m = inception_module(256, 128, 192, 96, reduce3x3=64, reduce5x5=64, pool_proj=64)
    s = summary(m, (256, 28, 28))
    assert s.rows[-1]["output_shape"] == (480, 28, 28) and m.out_channels == 480
    assert sorted(r["macs"] for r in s.rows if r["type"] == "Conv2d") == sorted(BOTTLENECK_OPS)
    # the slide prints "Total: 358M ops"; its own six lines sum to 271M
    assert s.total_macs == sum(BOTTLENECK_OPS) == 271_351_808
    assert abs(s.total_macs - 358e6) > 80e6


def test_inception_rejects_bad_sizes():
    with pytest.raises(ValueError, match="ch3x3"):
        inception_module(256, 128, 0, 96)
    with pytest.raises(ValueError, match=r"\(N, 256, H, W\)"):
        inception_module(256, 8, 8, 8)(tg.zeros(1, 3, 8, 8))


# -- real forward and backward ------------------------------------------------------------------------

def test_resnet18_trains_on_numba():
    tg.set_backend("numba")
    m = resnet18(num_classes=10)
    x = tg.randn(2, 3, 32, 32)
    out = m(x)
    assert out.shape == (2, 10)
    F.cross_entropy(out, np.array([3, 7])).backward()
    assert np.abs(m.conv1.weight.grad).sum() > 0 and np.abs(m.fc.weight.grad).sum() > 0
    assert m.bn1.num_batches_tracked.data == 1


def test_adaptive_avg_pool_shapes():
    x = tg.randn(2, 3, 7, 5)
    assert AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert AdaptiveAvgPool2d((7, 5))(x) is x
    assert AdaptiveAvgPool2d((3, 2))(x).shape == (2, 3, 3, 2)
    np.testing.assert_allclose(AdaptiveAvgPool2d(1)(x).data[..., 0, 0], x.data.mean(axis=(2, 3)), rtol=1e-6)
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAvgPool2d(0)


# -- parity with torch (modules written out by hand: no torchvision) -----------------------------------

torch = pytest.importorskip("torch")
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
