"""The training recipe and `tgcv train`: a quick LeNet run on a subset, and one-line CLI errors."""
import gzip
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import checkpoint, models
from tinygrad_cv.train import EpochStats, TrainConfig, evaluate, fit, load_mnist, prepare


def tgcv(*args):
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], capture_output=True, text=True)


def _one_line_error(out, *words):
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_lenet_learns_on_2000_digits_in_one_epoch():
    lines = []
    result = fit(TrainConfig(epochs=1, limit=2000, seed=0), progress=False, log=lines.append)
    (stats,) = result.history
    assert isinstance(stats, EpochStats) and lines == [stats.line(1)]
    assert "acc " in lines[0] and "%" in lines[0]
    assert stats.accuracy > 0.85, lines[0]
    assert stats.loss < 1.5 and len(result.step_losses) == 63
    assert result.step_losses[-1] < result.step_losses[0]
    # the reported accuracy, recomputed without the library's prepare/evaluate: normalise by hand,
    # one forward pass in eval mode, argmax against the labels
    test_x, test_y = load_mnist("test")
    assert len(test_y) == 2000
    by_hand = ((test_x.astype(np.float64) / 255.0 - 0.1307) / 0.3081).astype(np.float32)[:, None]
    result.model.eval()
    with tg.no_grad():
        logits = np.concatenate([np.asarray(result.model(tg.Tensor(by_hand[i:i + 400])).data)
                                 for i in range(0, 2000, 400)])
    assert logits.shape == (2000, 10)
    assert stats.accuracy == pytest.approx(float((logits.argmax(1) == test_y).mean()), abs=1e-12)
    result.model.train()
    assert evaluate(result.model, prepare(test_x), test_y) == pytest.approx(stats.accuracy, abs=1e-12)
    assert result.model.training                                  # evaluate restores the mode


class _FixedScores(tg.nn.Module):
    """A 'model' whose class scores are given: row i scores SCORES[i]; records each batch size and mode."""

    def __init__(self, scores):
        super().__init__()
        self.scores, self.seen = np.asarray(scores, dtype=np.float32), []

    def forward(self, x):
        idx = np.asarray(x.data).reshape(len(x.data), -1)[:, 0].astype(int)
        self.seen.append((len(idx), self.training))
        return tg.Tensor(self.scores[idx])


def test_evaluate_counts_correct_rows_over_uneven_batches():
    scores = np.eye(10)[[3, 1, 4, 1, 5, 9, 2]]                   # predictions 3 1 4 1 5 9 2
    labels = np.array([3, 1, 4, 0, 5, 0, 0])                     # 4 of 7 right
    model = _FixedScores(scores)
    images = np.arange(7, dtype=np.float32)[:, None]
    assert evaluate(model, images, labels, batch_size=3) == pytest.approx(4 / 7, abs=1e-12)
    assert model.seen == [(3, False), (3, False), (1, False)]    # every row once, in eval mode
    assert model.training                                        # and the mode is back
    assert evaluate(model.eval(), images, labels, batch_size=500) == pytest.approx(4 / 7, abs=1e-12)
    assert not model.training
    assert evaluate(model, images[:0], labels[:0]) == 0.0


def test_config_errors_name_the_choices():
    with pytest.raises(ValueError, match="unknown model 'vgg1'; choose one of lenet5"):
        TrainConfig(model="vgg1")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainConfig(epochs=0)


def test_lenet5_shapes_and_names():
    m = models.lenet5()
    assert list(m.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
        "classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias",
        "classifier.4.weight", "classifier.4.bias"]
    assert sum(p.size for p in m.parameters()) == 61706
    assert m(tg.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        m(tg.zeros(2, 1, 32, 32))
    classic = models.lenet5(activation="tanh", pool="avg")
    assert "Tanh" in repr(classic) and "AvgPool2d" in repr(classic)


def test_cli_trains_saves_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    ck, png = tmp_path / "m.npz", tmp_path / "curves.png"
    out = tgcv("train", "lenet5", "--epochs", "1", "--limit", "500", "--batch-size", "64", "--save", str(ck),
               "--plot", str(png), "--seed", "3")
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("epoch 1/1") and "loss" in first and "acc" in first and first.endswith("s")
    assert ck.exists() and png.stat().st_size > 1000
    loaded = checkpoint.load(models.lenet5(), ck)
    assert loaded.meta["model"] == "lenet5" and loaded.meta["seed"] == 3


def test_cli_errors_are_one_line(tmp_path):
    _one_line_error(tgcv("train", "alexnet9"), "unknown model", "lenet5")
    _one_line_error(tgcv("train", "lenet5", "--optimizer", "lbfgs"), "unknown optimizer", "adam")
    _one_line_error(tgcv("train", "lenet5", "--data", str(tmp_path / "missing")), "--data", "missing")
    _one_line_error(tgcv("train", "lenet5", "--data", str(tmp_path)), "train-images-idx3-ubyte")
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03garbage")
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")
    _one_line_error(tgcv("train", "lenet5", "--data", str(tmp_path)), "cannot read the digits")


def test_weight_average_follows_its_formula_and_swaps_back():
    from tinygrad_cv import nn
    from tinygrad_cv.train import WeightAverage
    lin = nn.Linear(2, 1)
    w0 = lin.weight.data.copy()
    avg = WeightAverage(lin, decay=0.9)
    lin.weight.data[...] = w0 + 1
    avg.update()                                   # d = min(0.9, 2/11)
    d = 2 / 11
    np.testing.assert_allclose(avg.average[0], d * w0 + (1 - d) * (w0 + 1), rtol=1e-6)
    raw = lin.weight.data
    avg.swap()
    assert lin.weight.data is not raw
    avg.swap()
    assert lin.weight.data is raw
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(lin, decay=1.0)
