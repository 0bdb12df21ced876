"""tg.models.summary: the shape pass, its arithmetic conventions, the table and `tgcv summary`."""
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import backends, nn
from tinygrad_cv.nn import AdaptiveAvgPool2d
from tinygrad_cv.models import lenet5, resnet18, skip_init, summary, vgg16
from tinygrad_cv.nn.module import Module


def by_name(s):
    return {r["name"]: r for r in s.rows}


def test_conv_linear_and_zero_mac_layers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, groups=4, bias=False), nn.Flatten(), nn.Linear(8 * 2 * 2, 5))
    s = summary(model, (3, 8, 8))
    rows = by_name(s)
    assert [r["name"] for r in s.rows] == [str(i) for i in range(7)]
    assert rows["0"] == {"name": "0", "type": "Conv2d", "output_shape": (8, 8, 8), "params": 3 * 9 * 8 + 8,
                         "macs": 8 * 8 * 8 * 3 * 3 * 3, "memory": 512, "inplace": False}
    assert rows["1"]["params"] == 16 and rows["1"]["macs"] == 0               # BN: gamma, beta; no MACs
    assert rows["2"]["macs"] == 0 and rows["2"]["inplace"]                    # ReLU
    assert rows["3"]["output_shape"] == (8, 4, 4) and rows["3"]["macs"] == 0  # pool
    assert rows["4"]["macs"] == 2 * 2 * 8 * (8 // 4) * 3 * 3                  # in_c / groups
    assert rows["4"]["params"] == 8 * 2 * 3 * 3
    assert rows["5"]["output_shape"] == (32,) and rows["5"]["inplace"]        # Flatten is a view
    assert rows["6"]["macs"] == 32 * 5
    assert s.total_params == sum(p.size for p in model.parameters()) == sum(r["params"] for r in s.rows)
    assert s.total_macs == sum(r["macs"] for r in s.rows)
    assert s.total_memory == 3 * 8 * 8 + 512 + 512 + 128 + 32 + 5            # input + counted outputs
    assert s.total_memory_bytes == 4 * s.total_memory


def test_linear_counts_every_position():
    s = summary(nn.Linear(6, 4), (10, 6))               # (N, L=10, in=6)
    assert s.rows[0]["output_shape"] == (10, 4) and s.rows[0]["macs"] == 10 * 6 * 4
    assert s.rows[0]["name"] == "Linear"                # a root leaf is named by its type


def test_shared_parameters_are_counted_once():
    fc = nn.Linear(4, 4)
    twin = nn.Linear(4, 4)
    twin.weight = fc.weight                             # a second layer sharing the first one's weight
    model = nn.Sequential(fc, nn.ReLU(), fc, twin)      # the same module called twice as well
    s = summary(model, (4,))
    assert [r["name"] for r in s.rows] == ["0", "1", "0", "3"]
    assert [r["params"] for r in s.rows] == [20, 0, 0, 4]
    assert s.total_params == 24 == sum(r["params"] for r in s.rows)
    assert s.total_macs == 3 * 16


class Scale(Module):
    """A leaf the summary has no rule for: it runs for real."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1) * 2.0


class Residual(Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return tg.cat([self.conv(x) + x, x], dim=1)


def test_custom_forward_unknown_leaves_and_merges():
    model = nn.Sequential(Residual(), Scale())
    s = summary(model, (4, 5, 5))
    assert [(r["name"], r["type"], r["output_shape"]) for r in s.rows] == [
        ("0.conv", "Conv2d", (4, 5, 5)), ("0", "Residual output", (8, 5, 5)), ("1", "Scale", (200,))]
    assert s.total_memory == 100 + 100 + 200 + 200


def test_shape_pass_runs_the_real_forward_once_and_user_hooks_keep_firing():
    model = resnet18(num_classes=10)
    seen = []
    mine = model.fc.register_forward_hook(lambda m, inputs, out: seen.append((inputs[0].shape, out.shape,
                                                                             out.requires_grad)))
    doubled = model.avgpool.register_forward_hook(lambda m, inputs, out: out * 2.0)
    s = summary(model, (3, 64, 64))
    assert seen == [((1, 512), (1, 10), False)]              # one zero example, under no_grad
    assert s.rows[-1]["name"] == "fc" and s.rows[-1]["output_shape"] == (10,)
    assert by_name(s)["avgpool"]["output_shape"] == (512, 1, 1)
    # the summary's hooks are gone, the user's stay
    assert list(model.fc._forward_hooks) == [mine.id] and list(model.avgpool._forward_hooks) == [doubled.id]
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_hooks_are_removed_and_modes_restored_after_an_error():
    model = small_net()
    model.eval()
    model[1].train()                                         # a mixed state, one module in training mode
    with pytest.raises(ValueError, match="does not fit"):
        summary(model, (3, 4, 4))
    assert [m.training for m in model.modules()] == [False, False, True, False, False]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_vgg16_summary_leaves_the_model_as_it_was():
    with skip_init():
        model = vgg16()
    model.train()
    s = summary(model, (3, 224, 224))
    assert s.total_params == 138_357_544
    assert all(m.training for m in model.modules())
    assert Module.__call__.__qualname__ == "Module.__call__"      # the shape hook is gone


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3))


def test_errors_name_the_layer_and_the_values():
    with pytest.raises(ValueError, match=r"'0' \(Conv2d\) on input 1x32x32.*\(N, 3, H, W\)"):
        summary(small_net(), (1, 32, 32))
    with pytest.raises(ValueError, match=r"'3' \(Conv2d\) on input 4x2x2.*does not fit.*\(2 - 3 \+ 0\)/1 \+ 1"):
        summary(small_net(), (3, 4, 4))
    for bad in [(3, 0, 4), (), "3x4", (3.5, 4), None, (True, 3)]:
        with pytest.raises(ValueError, match="input_shape"):
            summary(nn.ReLU(), bad)
    with pytest.raises(TypeError, match="Module"):
        summary(lambda x: x, (3,))


class Picky(Module):
    """A leaf without a rule that refuses odd widths."""

    def forward(self, x):
        if x.shape[-1] % 2:
            raise ValueError(f"Picky needs an even width, got {x.shape[-1]}")
        return x


def test_the_layer_that_refuses_its_input_is_named_rule_or_not():
    with pytest.raises(ValueError, match=r"^summary: layer '1' \(Picky\) on input 5x3: "
                                         r"Picky needs an even width, got 3$"):
        summary(nn.Sequential(nn.Linear(4, 3), Picky()), (5, 4))
    with pytest.raises(ValueError, match=r"^summary: layer 'BatchNorm2d' \(BatchNorm2d\) on input 4: "
                                         r"BatchNorm2d\(4\) expects input of shape \(N, 4, H, W\), got \(1, 4\)$"):
        summary(nn.BatchNorm2d(4), (4,))
    with pytest.raises(ValueError, match=r"'1' \(MaxPool2d\) on input 3x1x1: max_pool2d: a 2x2 filter .* does not fit"):
        summary(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.MaxPool2d(2)), (3, 4, 4))


def test_adaptive_pool_rows():
    s = summary(nn.Sequential(AdaptiveAvgPool2d((2, 2)), AdaptiveAvgPool2d(2)), (3, 6, 6))
    assert [(r["output_shape"], r["inplace"]) for r in s.rows] == [((3, 2, 2), False), ((3, 2, 2), True)]


def test_table_text():
    s = summary(lenet5(), (1, 28, 28))
    text = str(s)
    assert text.splitlines()[0].startswith("LeNet5 on input 1x28x28")
    assert "(input)" in text and "features.0" in text and "Conv2d" in text
    row = next(line for line in text.splitlines() if line.split()[:1] == ["features.0"])
    assert "Conv2d" in row and "6x28x28" in row and "156" in row                 # shape and 6*(5*5+1)
    assert "117,600" in row                                    # MACs: 6*28*28 outputs * 25 each
    fc = next(line for line in text.splitlines() if line.split()[:1] == ["classifier.0"])
    assert "120" in fc and "48,120" in fc                        # 400*120 + 120 parameters, 48,000 MACs
    assert s.total_params == 61_706 and s.total_macs == 117_600 + 240_000 + 48_000 + 10_080 + 840
    assert f"Total params: {s.total_params:,}" in text and f"Total MACs:   {s.total_macs:,}" in text
    assert f"Total memory: {s.total_memory:,} values" in text
    assert repr(s) == text                                  # a notebook shows the table, as torchinfo does
    assert s._repr_html_() == f"<pre>{text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</pre>"


def test_batch_dimension_is_refused_with_the_shape_to_pass():
    with pytest.raises(ValueError, match=r"seems to include the batch.*\(3, 224, 224\)"):
        summary(vgg16(), (1, 3, 224, 224))
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1, 28, 28\), got \(1, 3, 28, 28\)"):
        summary(lenet5(), (3, 28, 28))


def test_skip_init_draws_no_weights_and_then_draws_again():
    tg.manual_seed(0)
    with skip_init():
        skipped = nn.Linear(3, 2)
        with skip_init():                                    # nests
            nn.init.normal_(skipped.bias, 5.0, 1.0)
        nn.init.uniform_(skipped.bias, 1.0, 2.0)
    assert not skipped.weight.data.any() and not skipped.bias.data.any()       # zeros, as allocated
    after = nn.Linear(3, 2)                                  # outside the block: drawn again
    assert 0 < np.abs(after.weight.data).max() <= 1 / np.sqrt(3)
    tg.manual_seed(0)
    fresh = nn.Linear(3, 2)
    np.testing.assert_array_equal(after.weight.data, fresh.weight.data)        # nothing was drawn inside
    with skip_init():
        assert not resnet18(num_classes=2).conv1.weight.data.any()            # the models' own init too


# -- the command line ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, first", [
    ("lenet5", "1x28x28"), ("alexnet", "3x227x227"), ("vgg16", "3x224x224"), ("vgg19", "3x224x224"),
    ("resnet18", "3x224x224"), ("resnet34", "3x224x224"), ("resnet50", "3x224x224"),
    ("densenet121", "3x224x224"), ("wrn28_10", "3x32x32"), ("wrn16_8", "3x32x32"),
    ("mobilenet_v1", "3x224x224"), ("inception_naive", "256x28x28"), ("inception", "256x28x28")])
def test_cli_every_zoo_name(run_cli, name, first):
    from tinygrad_cv.models import registry
    code, out, err = run_cli("summary", name)
    assert code == 0 and err == ""
    assert f"on input {first}" in out
    with skip_init():
        model = registry.MODELS[name].build()
    n_params = sum(p.size for p in model.parameters())           # counted here, not by the summary
    assert f"Total params: {n_params:,}" in out, out[-300:]


def test_cli_input_option(run_cli):
    code, out, _ = run_cli("summary", "resnet18", "--input", "3x32x32")
    assert code == 0 and "on input 3x32x32" in out and "Total params: 11,689,512" in out
    code, out, _ = run_cli("summary", "inception_naive")
    assert "672x28x28" in out and "854,196,224" in out


@pytest.mark.parametrize("args, words", [
    (("summary", "lenet6"), "unknown model 'lenet6'"),
    (("summary", "vgg16", "--input", "3x224"), "features.0"),
    (("summary", "vgg16", "--input", "3xaxb"), "'3xaxb'"),
    (("summary", "vgg16", "--input", "0x224x224"), "'0x224x224'"),
    (("summary", "alexnet", "--input", "3x32x32"), "does not fit"),
])
def test_cli_errors_are_one_line(run_cli, args, words):
    code, out, err = run_cli(*args)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_cli_subprocess_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "tinygrad_cv", "summary", "nope"], capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_an_input_too_large_for_one_forward_pass_is_refused_at_once():
    with pytest.raises(ValueError, match=r"27,000,000 values.*at most 3,145,728"):
        summary(vgg16(), (3, 3000, 3000))
