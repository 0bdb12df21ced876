"""The options tgcv commands share (cli/options.py) and the model registry they read."""
import pytest

from tinygrad_cv import backends
from tinygrad_cv.models import registry
from tinygrad_cv.train import MODELS, EpochStats, TrainResult


@pytest.mark.parametrize("args, words", [
    (("summary", "lenet6"), "Invalid value for 'MODEL': unknown model 'lenet6'; choose one of lenet5, alexnet"),
    (("train", "alexnet9"), "Invalid value for 'MODEL': unknown model 'alexnet9'; choose one of lenet5"),
    (("train", "vgg16"), "Invalid value for 'MODEL': model 'vgg16' does not take MNIST digits; choose one of lenet5"),
    (("maps", "resnet18", "-o", "out"), "'MODEL': model 'resnet18' does not take MNIST digits"),
    (("summary", "vgg16", "--input", "3x-1"), "Invalid value for '--input': '3x-1' is not a shape like 3x224x224"),
    (("summary", "vgg16", "--backend", "tpu"), "Invalid value for '--backend': unknown backend 'tpu'; "
                                               "choose one of numpy, numba, cuda"),
    (("train", "lenet5", "--backend", "tpu"), "Invalid value for '--backend': unknown backend 'tpu'"),
    (("maps", "lenet5", "--backend", "gpu", "-o", "out"), "Invalid value for '--backend': unknown backend 'gpu'"),
    (("maps", "lenet5", "--digit", "10", "-o", "out"), "Invalid value for '--digit': '10' is not a digit 0..9"),
    (("maps", "lenet5", "--digit", "seven", "-o", "out"), "'seven' is not a digit 0..9"),
    (("train", "lenet5", "--epochs", "0"), "Invalid value for '--epochs': 0 is not in the range x>=1"),
    (("train", "lenet5", "--optimizer", "lbfgs"), "Invalid value for '--optimizer': unknown optimizer 'lbfgs'; "
                                                  "choose one of adam, sgd"),
])
def test_a_bad_value_names_the_option_and_exits_2(run_cli, args, words):
    code, out, err = run_cli(*args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and words in err, err


def fake_fit(seen):
    def fit(config, progress=True, log=print):
        seen.append((config.backend, backends.get_backend()))
        return TrainResult(model=registry.get("lenet5").build(), history=[EpochStats(1, 0.5, 0.9, 0.1, 0.001)])
    return fit


@pytest.mark.parametrize("env, flag, expected", [
    ("numpy", (), (None, "numpy")),                          # TGCV_BACKEND is respected without --backend
    ("numpy", ("--backend", "numba"), ("numba", "numba")),   # --backend wins over it
    (None, (), (None, backends.DEFAULT)),                    # neither: the library's default
])
def test_train_backend_defaults_to_the_environment(run_cli, monkeypatch, env, flag, expected):
    from tinygrad_cv import train

    if env is None:
        monkeypatch.delenv("TGCV_BACKEND", raising=False)
    else:
        monkeypatch.setenv("TGCV_BACKEND", env)
    monkeypatch.setattr(backends, "_selected", None)         # as in a fresh process: read the environment
    seen = []
    monkeypatch.setattr(train, "fit", fake_fit(seen))
    code, out, err = run_cli("train", "lenet5", "--quiet", *flag)
    assert code == 0, err
    assert seen == [expected] and "held-out accuracy 90.0%" in out


def test_summary_backend_option_selects_the_kernels(run_cli, monkeypatch):
    monkeypatch.setattr(backends, "_selected", None)
    monkeypatch.delenv("TGCV_BACKEND", raising=False)
    code, out, _ = run_cli("summary", "lenet5", "--backend", "numpy")
    assert code == 0 and "Total params: 61,706" in out and backends.get_backend() == "numpy"


def test_one_registry_behind_every_command(run_cli):
    assert list(MODELS) == registry.names(mnist=True) == ["lenet5"]        # train.MODELS is read from it
    assert registry.names()[:3] == ["lenet5", "alexnet", "vgg16"] and len(registry.names()) == 13
    assert registry.get("alexnet").input_shape == (3, 227, 227)
    assert registry.get("inception").build().__class__.__name__ == "InceptionModule"
    with pytest.raises(ValueError, match="unknown model 'vgg1'; choose one of lenet5, alexnet"):
        registry.get("vgg1")
    for command, names in (("summary", registry.names()), ("maps", ["lenet5"]), ("train", ["lenet5"])):
        code, out, _ = run_cli(command, "--help")
        listed = [line.split()[0] for line in out.split("MODEL is one of (input CxHxW):")[1].split("Options:")[0]
                  .strip().splitlines()]
        assert code == 0 and listed == names, command
