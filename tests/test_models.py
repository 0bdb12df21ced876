"""The model zoo against the course's figures, torchvision's published totals and torch itself."""

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv.nn import AdaptiveAvgPool2d
from tinygrad_cv.models import (alexnet, inception_module, mobilenet_v1, resnet18, resnet34,
                                resnet50, skip_init, summary, vgg16, vgg19)


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
    seen = []
    m.fc.register_forward_hook(lambda mod, inputs, out: seen.append(np.array(inputs[0].data, np.float64)))
    out = m(x)
    assert out.shape == (2, 10)
    F.cross_entropy(out, np.array([3, 7])).backward()
    # fc's gradient in closed form: (softmax - one_hot)^T h / N, from the features fc saw
    (h,) = seen
    z = out.data.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[[0, 1], [3, 7]] -= 1
    np.testing.assert_allclose(m.fc.weight.grad, p.T @ h / 2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m.fc.bias.grad, p.sum(0) / 2, rtol=1e-4, atol=1e-7)
    assert np.isfinite(m.conv1.weight.grad).all() and np.abs(m.conv1.weight.grad).max() > 0
    assert m.bn1.num_batches_tracked.data == 1


def test_adaptive_avg_pool_shapes():
    x = tg.randn(2, 3, 7, 5)
    assert AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert AdaptiveAvgPool2d((7, 5))(x) is x
    assert AdaptiveAvgPool2d((3, 2))(x).shape == (2, 3, 3, 2)
    np.testing.assert_allclose(AdaptiveAvgPool2d(1)(x).data[..., 0, 0], x.data.mean(axis=(2, 3)), rtol=1e-6)
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAvgPool2d(0)


# -- DenseNet-121 and Wide ResNets: torchvision's and the paper's totals ------------------------------

def test_densenet121_torchvision_total_and_shapes():
    from tinygrad_cv.models import densenet121
    s = summary(build(densenet121), (3, 224, 224))
    assert s.total_params == 7_978_856                          # torchvision's densenet121
    assert round(s.total_macs / 1e7) == 283                     # torchvision: 2.83 GFLOPS (multiply-adds)
    out = {r["name"]: r["output_shape"] for r in s.rows}
    # block outputs: c0 + L * k with k = 32; transitions halve channels (theta = 0.5) and the size
    assert [out[f"features.denseblock{i}"] for i in range(1, 5)] == [
        (64 + 6 * 32, 56, 56), (128 + 12 * 32, 28, 28), (256 + 24 * 32, 14, 14), (512 + 16 * 32, 7, 7)]
    assert [out[f"features.transition{i}.pool"] for i in range(1, 4)] == [(128, 28, 28), (256, 14, 14), (512, 7, 7)]
    # the bottleneck: 1x1 conv to 4k = 128 channels, 3x3 conv to k = 32, from all maps before
    assert out["features.denseblock2.denselayer12.conv1"] == (128, 28, 28)
    assert out["features.denseblock2.denselayer12.conv2"] == (32, 28, 28)
    conv1 = next(r for r in s.rows if r["name"] == "features.denseblock2.denselayer12.conv1")
    assert conv1["params"] == (128 + 11 * 32) * 128
    convs = [r for r in s.rows if r["type"] == "Conv2d"]
    assert len(convs) + 1 == 121                                 # 120 convs + the classifier
    assert s.rows[-1]["name"] == "classifier" and s.rows[-1]["output_shape"] == (1000,)


def test_densenet121_names_like_torchvision():
    from tinygrad_cv.models import densenet121
    sd = build(densenet121, num_classes=10).state_dict()
    for key in ("features.conv0.weight", "features.norm0.running_mean", "features.denseblock1.denselayer1.norm1.weight",
                "features.denseblock1.denselayer6.conv2.weight", "features.transition3.conv.weight",
                "features.denseblock4.denselayer16.norm2.num_batches_tracked", "features.norm5.bias",
                "classifier.weight"):
        assert key in sd, key
    assert sd["features.denseblock3.denselayer24.conv1.weight"].shape == (128, 256 + 23 * 32, 1, 1)
    assert sd["classifier.weight"].shape == (10, 1024)
    assert not any(k.endswith("conv0.bias") or ".conv1.bias" in k for k in sd)   # BN follows: no conv biases


def test_densenet_forward_backward_small():
    from tinygrad_cv.models import DenseNet
    tg.set_backend("numba")
    m = DenseNet(growth_rate=4, block_config=(2, 3), num_init_features=8, num_classes=3)
    assert m.features.denseblock1.out_channels == 8 + 2 * 4 and m.features.transition1.conv.out_channels == 8
    out = m(tg.randn(2, 3, 32, 32))
    assert out.shape == (2, 3)
    F.cross_entropy(out, np.array([0, 2])).backward()
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in m.parameters())
    assert np.abs(m.features.conv0.weight.grad).max() > 0
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        m.features.denseblock1(tg.zeros(1, 5, 4, 4))
    with pytest.raises(ValueError, match="compression"):
        DenseNet(compression=0)


def wrn_params_by_hand(depth, k, classes=10):
    """Table 1 of the paper, counted conv by conv: 3x3 stem, 3 groups of N pre-activation blocks."""
    n = (depth - 4) // 6
    total, c = 3 * 3 * 3 * 16, 16
    for w in (16 * k, 32 * k, 64 * k):
        for i in range(n):
            cin = c if i == 0 else w
            total += 2 * cin + 9 * cin * w + 2 * w + 9 * w * w     # BN(cin), 3x3, BN(w), 3x3
            total += cin * w if cin != w else 0                  # 1x1 projection where the width changes
        c = w
    return total + 2 * c + c * classes + classes                 # final BN, classifier


@pytest.mark.parametrize("depth, k, paper_millions", [(28, 10, 36.5), (16, 8, 11.0), (40, 4, 8.9)])
def test_wide_resnet_matches_the_paper(depth, k, paper_millions):
    from tinygrad_cv.models import wide_resnet
    m = build(wide_resnet, depth, k)
    total = n_params(m)
    assert total == wrn_params_by_hand(depth, k)
    assert round(total / 1e6, 1) == paper_millions               # the paper's CIFAR tables
    assert m.fc.in_features == 64 * k and len(m.block1) == (depth - 4) // 6


def test_wide_resnet_registry_totals_and_shapes():
    from tinygrad_cv.models import registry
    spec = registry.get("wrn28_10")
    assert spec.input_shape == (3, 32, 32)
    s = summary(build(spec.build), spec.input_shape)
    assert s.total_params == 36_479_194 and s.total_macs == 5_243_328_768
    out = {r["name"]: r["output_shape"] for r in s.rows}
    assert out["block1.3.conv2"] == (160, 32, 32) and out["block2.0.conv1"] == (320, 16, 16)
    assert out["block3.3.conv2"] == (640, 8, 8) and out["fc"] == (10,)
    assert "block1.0.shortcut" in out and "block1.1.shortcut" not in out     # 16 -> 160 needs a projection
    assert n_params(build(registry.get("wrn16_8").build)) == 10_961_370


def test_wide_resnet_forward_backward_and_errors():
    from tinygrad_cv.models import wide_resnet
    tg.set_backend("numba")
    m = wide_resnet(10, 2, num_classes=4, dropout=0.3)
    out = m(tg.randn(2, 3, 16, 16))
    assert out.shape == (2, 4)
    F.cross_entropy(out, np.array([1, 3])).backward()
    assert np.abs(m.conv1.weight.grad).max() > 0 and np.isfinite(m.fc.weight.grad).all()
    with pytest.raises(ValueError, match="6N \\+ 4"):
        wide_resnet(27, 10)
    with pytest.raises(ValueError, match="widen"):
        wide_resnet(28, 0)
