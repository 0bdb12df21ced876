"""Gradient flow of the zoo and the deep toy nets: blocks, inputs, comparisons on one scale,
sheets that fit a slide, flow over training and the ``tgcv flow`` / ``tgcv train --flow`` commands."""
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import nn, optim
from tinygrad_cv.models import registry
from tinygrad_cv.models.deep import deep_cnn, deep_mlp
from viz import flow

matplotlib = pytest.importorskip("matplotlib")
from viz import flowsheet  # noqa: E402


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


ROOT = Path(__file__).resolve().parents[1]


def tgcv(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=300, env=env)


@pytest.fixture(scope="module")
def digits28():
    return flow.input_batch((1, 28, 28), 32)


@pytest.fixture(scope="module")
def plain_and_residual(digits28):
    x, y = digits28
    out = {}
    for residual in (False, True):
        tg.manual_seed(0)
        out[residual] = flow.measure(deep_cnn(20, 16, residual), x, y)[0]
    return out[False], out[True]


def test_input_batch_resizes_pads_and_repeats():
    x, y = flow.input_batch((3, 28, 40), 5)
    assert x.shape == (5, 3, 28, 40) and x.dtype == np.float32 and y.tolist() == [7, 2, 1, 0, 4]
    assert np.array_equal(x[:, 0], x[:, 2])                                # the digit on every channel
    background = x.min()
    assert np.all(x[:, :, :, :6] == background) and np.all(x[:, :, :, -6:] == background)
    plain, _ = flow.input_batch((1, 28, 28), 5)
    assert np.array_equal(x[:, :1, :, 6:34], plain)                         # 28 -> 28: the digits untouched
    big, _ = flow.input_batch((1, 56, 56), 2)
    assert big.shape == (2, 1, 56, 56)
    assert abs(float(big.mean()) - float(plain[:2].mean())) < 0.05          # a resize keeps the brightness
    noise, labels = flow.input_batch((3, 8, 8), 400, synthetic=True)
    assert abs(float(noise.std()) - 1.0) < 0.05 and set(labels.tolist()) <= set(range(10))
    with pytest.raises(ValueError, match="784"):
        flow.input_batch((100,), 2)


def test_collapse_pools_a_block_and_keeps_the_numbers():
    tg.manual_seed(0)
    model = registry.get("resnet18").build()
    x, y = flow.input_batch((3, 32, 32), 2)
    rows, loss = flow.measure(model, x, y, collapse=2)
    names = [r["name"] for r in rows]
    assert names == ["conv1", "bn1"] + [f"layer{s}.{b}" for s in range(1, 5) for b in (0, 1)] + ["fc"]
    assert math.isfinite(loss) and loss > 0
    block = rows[names.index("layer2.0")]
    assert block["type"] == "BasicBlock" and block["layers"] == 6 and block["shape"] == ()  # 2 conv, 2 bn, downsample 2
    weights = [p for n, p in model.named_parameters() if n.startswith("layer2.0.") and n.endswith("weight")]
    w = np.concatenate([p.data.ravel() for p in weights]).astype(np.float64)
    g = np.concatenate([np.asarray(p.grad).ravel() for p in weights]).astype(np.float64)
    assert block["ratio"] == pytest.approx(np.linalg.norm(g) / np.linalg.norm(w), rel=1e-9)
    assert block["max_grad"] == pytest.approx(np.abs(g).max(), rel=1e-9)
    assert block["out_grad"] is not None and block["out_grad"] > 0          # the block's output was hooked
    full = flow.layer_stats(model)
    assert len(full) == 41 and full[0]["name"] == "conv1" and full[0]["ratio"] == rows[0]["ratio"]


def test_a_gradient_kept_as_a_tensor_reads_the_same():
    tg.manual_seed(0)
    model = deep_mlp(2, 8, "relu", "he")
    x, y = flow.input_batch((784,), 16)
    before = flow.measure(model, x, y)[0]
    for p in model.parameters():
        p.grad = tg.Tensor(np.asarray(p.grad))
    after = flow.layer_stats(model)
    assert [r["ratio"] for r in after] == [r["ratio"] for r in before]


def test_residual_first_layer_gets_ten_times_the_plain_one_at_he_init(plain_and_residual):
    plain, residual = plain_and_residual
    assert [r["status"] for r in plain] == ["healthy"] * 22               # He init: nothing vanishes
    assert residual[0]["mean_grad"] >= 10 * plain[0]["mean_grad"]
    assert residual[0]["ratio"] >= 10 * plain[0]["ratio"]
    assert residual[0]["out_grad"] >= 10 * plain[0]["out_grad"]


def test_batch_norm_brings_the_sigmoid_net_into_the_healthy_band():
    x, y = flow.input_batch((784,), 100)
    rows = {}
    for bn in (False, True):
        tg.manual_seed(0)
        rows[bn] = flow.measure(deep_mlp(6, 100, "sigmoid", "small", bn), x, y)[0]
    assert [r["status"] for r in rows[False]][:4] == ["vanishing"] * 4 and rows[False][0]["ratio"] < 1e-6
    assert {r["status"] for r in rows[True]} == {"healthy"} and len(rows[True]) == 13


def test_compare_sheet_shares_one_scale(tmp_path, plain_and_residual):
    plain, residual = plain_and_residual
    made = flowsheet.sheet([("plain", plain), ("residual", residual)], tmp_path / "pair.png")
    assert png_size(made.path) == made.size_px
    assert len(made.panel_xlims) == 2 and made.panel_xlims[0] == made.panel_xlims[1] == made.xlim
    lo, hi = made.xlim
    every = [r["ratio"] for r in plain + residual]
    assert lo <= min(every) and hi >= max(every) and lo <= flow.VANISHING and hi >= flow.EXPLODING
    alone = flowsheet.sheet([("plain", plain)], tmp_path / "plain.png")
    assert alone.xlim != made.xlim                                     # alone it would have a narrower scale


@pytest.mark.parametrize("n, columns", [(20, 1), (107, 2), (250, 3)])
def test_deep_sheets_fit_1600_px(tmp_path, n, columns):
    rows = [dict(name=f"layer{i // 7}.{i % 7}.conv", type="Conv2d", shape=(64, 64, 3, 3), layers=1, mean_grad=10.0 ** -i,
                 max_grad=1e-2, ratio=10.0 ** (-(i % 9)), out_grad=1e-3, status=flow.status_of(10.0 ** (-(i % 9))))
            for i in range(n)]
    made = flowsheet.sheet([("deep", rows)], tmp_path / "deep.png")
    w, h = png_size(made.path)
    assert (w, h) == made.size_px and h <= 1600 and len(made.panels) == columns
    assert w <= 1600 or n > 2 * ((1600 - flowsheet.HEAD_PX - flowsheet.FOOT_PX) // flowsheet.ROW_PX)  # > 168 lines: wider
    assert sum(k for _, k in made.panels) == n
    assert h >= flowsheet.ROW_PX * (n / columns)                       # at least 17 px a line: legible


def test_resnet50_flow_fits_a_slide(tmp_path):
    tg.manual_seed(0)
    x, y = flow.input_batch((3, 32, 32), 2)
    rows, _ = flow.measure(registry.get("resnet50").build(), x, y)
    assert len(rows) == 107
    made = flowsheet.sheet([("resnet50", rows)], tmp_path / "r50.png")
    assert max(png_size(made.path)) <= 1600 and len(made.panels) == 2


def test_recorder_update_ratio_is_lr_times_rho_for_plain_sgd():
    tg.manual_seed(0)
    model = deep_mlp(2, 16, "relu", "he")
    x, y = flow.input_batch((784,), 64)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.0)
    rec = flowsheet.FlowRecorder(every=2)
    for _ in range(5):
        loss = F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(y))
        opt.zero_grad()
        loss.backward()
        rec.after_backward(model, opt)
        opt.step()
        rec.after_step(model, opt)
    rho, upd = rec.arrays()
    assert rec.steps == [1, 3, 5] and rho.shape == upd.shape == (3, 3) and rec.layers == ["0", "2", "4"]
    np.testing.assert_allclose(upd, 0.05 * rho, rtol=1e-4)              # ||lr g|| / ||W||, weights only


def test_fit_calls_the_recorder_and_the_heat_map_is_drawn(tmp_path):
    from tinygrad_cv.train import TrainConfig, fit

    rec = flowsheet.FlowRecorder(every=4)
    result = fit(TrainConfig(epochs=1, limit=320, batch_size=32, average=0), progress=False, log=lambda s: None,
                 callbacks=[rec])
    assert len(result.step_losses) == 10 and rec.step == 10 and rec.steps == [1, 5, 9]
    rho, upd = rec.arrays()
    assert rho.shape == (5, 3) and np.all(np.isfinite(upd)) and np.all(upd > 0)
    made = rec.plot(tmp_path / "train.png")
    assert png_size(made.path) == made.size_px and max(made.size_px) <= 1600
    lines = flowsheet.flow_summary(rec)
    assert lines[0].startswith("gradient flow: 3 records over 10 steps") and len(lines) == 6


def test_cli_zoo_model_at_a_chosen_size(tmp_path):
    out = tgcv("flow", "resnet18", "--input", "3x32x32", "--batch", "2", "--collapse", "2", "-o",
               str(tmp_path / "r18.png"))
    assert out.returncode == 0, out.stderr
    assert "batch of 2 digits at 3x32x32" in out.stdout
    assert sum(line.startswith("layer") and "BasicBlock" in line for line in out.stdout.splitlines()) == 8
    assert max(png_size(tmp_path / "r18.png")) <= 1600


def test_cli_compare_prints_both_and_draws_one_sheet(tmp_path):
    out = tgcv("flow", "cnn", "--depth", "8", "--compare", "plain,residual", "-o", str(tmp_path / "pair.png"))
    assert out.returncode == 0, out.stderr
    titles = [line for line in out.stdout.splitlines() if "CNN, 8 3x3 convs" in line]
    assert [t.split()[0] for t in titles] == ["plain", "residual"]
    w, h = png_size(tmp_path / "pair.png")
    assert w == 2 * flowsheet.PANEL_PX and h < 800


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_cli_seven_layer_diagram_is_a_narrow_column(tmp_path):
    out = tgcv("flow", "mlp", "--batch", "32", "-o", str(tmp_path / "flow.png"))
    assert out.returncode == 0, out.stderr
    w, h = png_size(tmp_path / "flow.png")
    assert w <= 1300 and h > w                                          # was a 2300 px wide row


def test_cli_checkpoint_changes_the_flow(tmp_path):
    from tinygrad_cv import checkpoint

    tg.manual_seed(5)
    model = registry.get("lenet5").build()
    for p in model.parameters():
        p.data[...] *= 0.01
    checkpoint.save(model, tmp_path / "small.npz", model_name="lenet5")
    fresh = tgcv("flow", "lenet5", "--batch", "16")
    loaded = tgcv("flow", "lenet5", "--batch", "16", "--checkpoint", str(tmp_path / "small.npz"))
    assert fresh.returncode == 0 and loaded.returncode == 0, loaded.stderr
    assert "weights small.npz" in loaded.stdout and "fresh" in fresh.stdout
    assert loaded.stdout.count("vanishing") > fresh.stdout.count("vanishing")


def test_cli_train_flow(tmp_path):
    out = tgcv("train", "lenet5", "--epochs", "1", "--limit", "320", "--quiet", "--flow", "heat.png",
               "--flow-every", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "gradient flow: 4 records over 10 steps (every 3)" in out.stdout
    assert png_size(tmp_path / "heat.png")[0] == 1200
    bad = tgcv("train", "lenet5", "--flow", "heat.bmpx", cwd=tmp_path)
    assert bad.returncode == 2 and "--flow" in bad.stderr and "epoch" not in bad.stdout


@pytest.mark.parametrize("args, words", [
    (["flow", "mlp", "--compare", "plain,residual"], "plain"),
    (["flow", "resnet18", "--compare", "nobn,bn"], "not of resnet18"),
    (["flow", "cnn", "--compare", "relu"], "not 2 to 4"),
    (["flow", "cnn", "--depth", "7"], "even"),
    (["flow", "resnet18", "--depth", "4"], "mlp and cnn only"),
    (["flow", "alexnet", "--input", "3x8x8", "--batch", "1"], "--input"),
    (["flow", "cnn", "--compare", "plain,residual", "-o", "x.dot"], ".dot"),
    (["flow", "nosuchnet"], "nosuchnet"),
    (["flow", "resnet50", "--input", "3x100000x100000"], "at most"),
])
def test_cli_flow_errors_one_line(args, words, tmp_path):
    out = tgcv(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and words in out.stderr and "Traceback" not in out.stderr
