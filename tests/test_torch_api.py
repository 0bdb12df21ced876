"""The PyTorch-facing API outside the programs: datasets, save/load, nn containers, init, dims, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import nn


def _write_cifar(path, n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    pixels = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    np.concatenate([labels[:, None], pixels], 1).tofile(path)
    return labels, pixels.reshape(n, 3, 32, 32)


def test_cifar10_reads_the_binary_batches_the_test_writes(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    written = [_write_cifar(folder / f"data_batch_{k}.bin", 7, k) for k in range(1, 6)]
    test_labels, test_pixels = _write_cifar(folder / "test_batch.bin", 5, 9)
    train = tg.data.CIFAR10(tmp_path, train=True)
    assert len(train) == 35 and train.data.shape == (35, 32, 32, 3) and train.classes[0] == "airplane"
    image, label = train[8]                                  # the second record of data_batch_2
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    np.testing.assert_allclose(image, written[1][1][1] / 255.0, rtol=1e-6)
    assert label == written[1][0][1]
    test = tg.data.CIFAR10(folder, train=False, transform=lambda im: im * 2)
    assert len(test) == 5 and test[0][1] == test_labels[0]
    np.testing.assert_allclose(test[0][0], test_pixels[0] / 255.0 * 2, rtol=1e-6)
    xb, yb = next(iter(tg.data.DataLoader(train, batch_size=4, shuffle=True, seed=0, drop_last=True)))
    assert xb.shape == (4, 3, 32, 32) and xb.dtype == tg.float32 and yb.dtype == tg.int64
    assert len(tg.data.DataLoader(train, batch_size=4, drop_last=True)) == 8


def test_cifar10_refuses_broken_or_pickled_files(tmp_path):
    (tmp_path / "data_batch_1.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="3073 bytes each"):
        tg.data.CIFAR10(tmp_path)
    other = tmp_path / "py"
    (other / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(ValueError, match="binary version"):
        tg.data.CIFAR10(other)
    with pytest.raises(FileNotFoundError, match="data_batch_1.bin"):
        tg.data.CIFAR10(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="downloads nothing"):
        tg.data.CIFAR10(tmp_path, download=True)


def test_mnist_dataset_is_the_shipped_split_by_default():
    train, test = tg.data.MNIST(), tg.data.MNIST(train=False)
    assert (len(train), len(test)) == (8000, 2000)
    image, label = train[0]
    assert image.shape == (1, 28, 28) and 0.0 <= image.min() and image.max() <= 1.0
    assert label == int(train.targets[0])
    xb, yb = next(iter(tg.data.DataLoader(test, batch_size=16)))
    assert xb.shape == (16, 1, 28, 28) and yb.shape == (16,)
    ds = tg.data.TensorDataset(tg.randn(6, 2), tg.arange(6))
    assert [x.shape[0] for x, _ in tg.data.DataLoader(ds, batch_size=4)] == [4, 2]


def test_save_and_load_a_state_dict(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    path = tmp_path / "model.npz"
    tg.save(model.state_dict(), path)
    state = tg.load(path)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    other.load_state_dict(state)
    x = tg.randn(5, 3)
    np.testing.assert_array_equal(other(x).numpy(), model(x).numpy())
    assert "0.bias" in np.load(path, allow_pickle=False).files         # plain .npz, no pickle


def test_containers_and_module_methods():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    holder = nn.Module()
    holder.layers = layers
    holder.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.Linear(2, 3)})
    assert len(list(holder.parameters())) == 10
    assert [n for n, _ in holder.named_modules()][:3] == ["", "layers", "layers.0"]
    assert len(list(holder.children())) == 2 and "b" in holder.heads and len(layers[1:]) == 2
    seq = nn.Sequential(nn.Linear(2, 3)).append(nn.Tanh())
    assert len(seq) == 2 and isinstance(seq[-1], nn.Tanh)
    seq.to(tg.float64).to("cpu")
    assert seq[0].weight.dtype == tg.float64 and seq(tg.ones(1, 2, dtype=tg.float64)).dtype == tg.float64
    with pytest.raises(ValueError, match="device 'cuda'"):
        seq.to("cuda")
    seen = []
    seq.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Tanh", "Sequential"]
    p = nn.Parameter(tg.tensor([1.0, 2.0], dtype=tg.float64))
    assert p.requires_grad and p.dtype == tg.float64
    flat = nn.Flatten(0, 1)(tg.zeros(2, 3, 4))
    assert flat.shape == (6, 4)


@pytest.mark.parametrize("name, std", [
    ("kaiming_normal_", lambda fi, fo: math.sqrt(2 / (1 + 0.0)) / math.sqrt(fi)),
    ("xavier_normal_", lambda fi, fo: math.sqrt(2 / (fi + fo))),
    ("kaiming_uniform_", lambda fi, fo: math.sqrt(2.0) * math.sqrt(3 / fi) / math.sqrt(3)),
    ("xavier_uniform_", lambda fi, fo: math.sqrt(6 / (fi + fo)) / math.sqrt(3)),
])
def test_init_follows_torchs_formulas(name, std):
    w = tg.zeros(400, 300)
    getattr(nn.init, name)(w)
    assert abs(float(w.std()) - std(300, 400)) < 0.02 * std(300, 400)
    assert nn.init.calculate_gain("relu") == math.sqrt(2) and nn.init.calculate_gain("tanh") == 5 / 3
    nn.init.constant_(w, 0.5)
    nn.init.normal_(w, 1.0, 0.1)
    nn.init.uniform_(w, -1, 1)
    assert float(w.abs().max()) <= 1


@pytest.mark.parametrize("call", [
    lambda: tg.cat([tg.zeros(2, 2), tg.zeros(2, 2)], dim=5),
    lambda: tg.stack([tg.zeros(2, 2)], dim=4),
    lambda: tg.zeros(2, 3).permute(0, 2),
    lambda: tg.zeros(2, 3).flatten(0, 3),
    lambda: tg.zeros(2, 3).transpose(0, -3),
    lambda: tg.zeros(2, 3).sum(dim=2),
    lambda: tg.zeros(2, 3).softmax(dim=-3),
    lambda: tg.zeros(2, 3).unsqueeze(4),
    lambda: tg.zeros(2, 3).max(dim=2),
])
def test_out_of_range_dims_raise_index_error_naming_dim_and_ndim(call):
    with pytest.raises(IndexError, match=r"dim -?\d is out of range for a tensor with 2 dims"):
        call()


def test_axis_and_dim_are_one_path_and_cannot_both_be_given():
    x = tg.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert x.sum(axis=1).tolist() == x.sum(dim=1).tolist() == [6.0, 5.0]
    assert x.mean(axis=0, keepdims=True).shape == x.mean(dim=0, keepdim=True).shape == (1, 2)
    assert tg.nn.functional.softmax(x, axis=1).tolist() == tg.nn.functional.softmax(x, dim=1).tolist()
    with pytest.raises(TypeError, match="both dim= and axis="):
        x.sum(dim=0, axis=0)


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w -= 1
    with pytest.raises(RuntimeError, match="no_grad"):
        w.zero_()
    with tg.no_grad():
        w.mul_(3).add_(1)
    assert w.tolist() == [4.0, 4.0, 4.0]
    h = w * 2
    h += 1                                     # a recorded tensor: a new node, as t = t + 1
    h.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0] and w.grad.grad_fn is None


def test_numpy_on_the_left_and_conversions():
    t = tg.tensor([1.0, 2.0])
    out = np.ones(2) + t
    assert isinstance(out, tg.Tensor) and out.tolist() == [2.0, 3.0]
    assert np.asarray(t).dtype == np.float32 and float(tg.tensor(2.5)) == 2.5 and int(tg.tensor(3)) == 3
    a = np.zeros(2, np.float32)
    a -= t                                     # writing into an array stays an array
    assert type(a) is np.ndarray and a.tolist() == [-1.0, -2.0]
    assert (2 ** t).tolist() == [2.0, 4.0] and f"{tg.tensor(0.25):.2f}" == "0.25"
    assert tg.tensor([True, False]).dtype == tg.bool and tg.tensor([1, 2]).dtype == tg.long
    assert tg.from_numpy(np.zeros(2)).dtype == tg.float64 and tg.tensor(np.zeros(2)).dtype == tg.float64
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t > 0)


def _learnable_cifar(folder, seed=0):
    """CIFAR-10-format batches of a learnable task: each class a fixed picture plus noise."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(40, 216, (10, 3072))
    for name, n in [(f"data_batch_{k}.bin", 500) for k in range(1, 6)] + [("test_batch.bin", 500)]:
        y = rng.integers(0, 10, n)
        x = np.clip(protos[y] + rng.integers(-60, 61, (n, 3072)), 0, 255)
        np.concatenate([y[:, None], x], 1).astype(np.uint8).tofile(folder / name)


@pytest.mark.parametrize("lesson", ["01_knn", "02_linear_classifier"])
def test_lessons_01_and_02_take_cifar10_with_data(lesson, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    _learnable_cifar(tmp_path)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "lessons" / f"{lesson}.py"), "--quick", "--data", str(tmp_path)],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "CIFAR-10" in proc.stdout or "3072" in proc.stdout


@pytest.mark.parametrize("fn", [
    lambda a: a.sin() * a.cos(),
    lambda a: a.clamp(-0.3, 0.4) * 3,
    lambda a: (2 ** a) + a.pow(3),
    lambda a: a.prod(dim=1) + a[0].prod(),
    lambda a: a.cumsum(dim=0) * a,
    lambda a: a[:, :1].expand(3, 4) * a,
    lambda a: a.clone() * 2,
    lambda a: a.min(dim=1).values.sum() + a.min() + a.max(dim=0, keepdim=True).values.sum(),
    lambda a: a.var(dim=1) + a.std() + a.norm(dim=0).sum() + a.norm(p=1),
    lambda a: a.masked_fill(a > 0.2, -1.0) + tgt_where(a),
    lambda a: a[0] @ a[1] + (a[:, :3].t() @ a[:, 0]).sum(),
    lambda a: a.softmax(dim=0) * a.log_softmax(dim=1),
])
def test_new_ops_pass_gradcheck(fn):
    a = tg.tensor(np.random.default_rng(3).uniform(-1, 1, (3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda t: fn(t).sum(), a, raise_exception=True)


def tgt_where(a):
    return tg.where(a < 0, a * a, 1.0)


def test_a_cast_passes_the_gradient_back_in_the_inputs_dtype():
    a = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    (a.float() * 3).sum().backward()
    assert a.grad.dtype == tg.float64 and a.grad.tolist() == [3.0, 3.0]
    assert a.long().requires_grad is False and a.to(tg.float64) is a
