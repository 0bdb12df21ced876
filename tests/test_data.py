"""Tests for tinygrad_cv.data: IDX, MNIST, loaders, transforms, synthetic sets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cv.data as D
from tinygrad_cv.data import DataError, DataLoader, TensorDataset, mnist, read_idx, write_idx
from tinygrad_cv.data.mnist import SHIPPED_DIR, stratified_split
from tinygrad_cv.tensors import Tensor

README_COUNTS = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


# ---------------------------------------------------------------- IDX


def _idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-5, 0, 70000], dtype=np.int32),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([1e300, -1.0], dtype=np.float64),
    ],
)
def test_idx_roundtrip(tmp_path: Path, arr: np.ndarray, gz: bool) -> None:
    p = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), arr)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == gz
    out = read_idx(p)
    assert out.shape == arr.shape and out.dtype == arr.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_idx_header_is_big_endian_and_gzip_detected_by_magic(tmp_path: Path) -> None:
    # 2 x 3 uint8, dims written by hand big-endian; gzipped but named without .gz
    raw = _idx_bytes(0x08, (2, 3), bytes(range(6)))
    (tmp_path / "plain").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    # raw bytes named .gz still read
    (tmp_path / "fake.gz").write_bytes(raw)
    assert read_idx(tmp_path / "fake.gz").shape == (2, 3)
    # int32 payload is big-endian: 0x00000102 == 258
    (tmp_path / "i4").write_bytes(_idx_bytes(0x0C, (1,), b"\x00\x00\x01\x02"))
    assert read_idx(tmp_path / "i4").tolist() == [258]


def test_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        read_idx(tmp_path / "nope.idx")

    bad = tmp_path / "bad_magic.idx"
    bad.write_bytes(b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match=r"bad_magic\.idx.*magic"):
        read_idx(bad)

    code = tmp_path / "bad_code.idx"
    code.write_bytes(_idx_bytes(0x07, (3,), b"abc"))
    with pytest.raises(DataError, match="0x07"):
        read_idx(code)

    full = _idx_bytes(0x08, (10, 28, 28), bytes(10 * 784))
    trunc = tmp_path / "trunc.idx"
    trunc.write_bytes(full[:-100])
    with pytest.raises(DataError, match=r"trunc\.idx.*7740 bytes.*\(10, 28, 28\).*7840.*truncated"):
        read_idx(trunc)
    trunc_gz = tmp_path / "trunc2.gz"
    trunc_gz.write_bytes(gzip.compress(full[:-1]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(trunc_gz)

    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(short)
    assert issubclass(DataError, ValueError)


# ---------------------------------------------------------------- shipped MNIST


def test_shipped_files_match_readme() -> None:
    images = read_idx(SHIPPED_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(SHIPPED_DIR / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), README_COUNTS)
    assert (SHIPPED_DIR / "README.md").read_text().count("LeCun") >= 1


def test_shipped_split_sizes_strata_and_determinism() -> None:
    xtr, ytr = mnist("train")
    xte, yte = mnist("test")
    assert xtr.shape == (8000, 28, 28) and xte.shape == (2000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64 and ytr.shape == (8000,) and yte.shape == (2000,)
    ctr, cte = np.bincount(ytr, minlength=10), np.bincount(yte, minlength=10)
    np.testing.assert_array_equal(ctr + cte, README_COUNTS)
    assert np.all(np.abs(ctr - 0.8 * README_COUNTS) <= 1), ctr
    assert ctr.tolist() == [784, 908, 826, 808, 786, 714, 766, 822, 779, 807]

    # same result on every call; returned arrays are private copies
    xtr2, ytr2 = mnist("train")
    np.testing.assert_array_equal(xtr, xtr2)
    np.testing.assert_array_equal(ytr, ytr2)
    xtr2[0] = 255
    assert not np.array_equal(mnist("train")[0][0], xtr2[0])


def test_shipped_split_is_disjoint_and_complete() -> None:
    labels = read_idx(SHIPPED_DIR / "t10k-labels-idx1-ubyte.gz")
    images = read_idx(SHIPPED_DIR / "t10k-images-idx3-ubyte.gz")
    tr, te = stratified_split(labels, 8000, seed=0)
    assert len(np.intersect1d(tr, te)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(10000))
    xtr, ytr = mnist("train")
    xte, yte = mnist("test")
    np.testing.assert_array_equal(xtr, images[tr])
    np.testing.assert_array_equal(yte, labels[te])
    # as a multiset of (image, label) rows, train + test is exactly the 10,000
    def rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.sort(np.c_[x.reshape(len(x), -1), y].view(f"V{785 * 8}").ravel())

    both = rows(np.concatenate([xtr, xte]).astype(np.int64), np.concatenate([ytr, yte]))
    np.testing.assert_array_equal(both, rows(images.astype(np.int64), labels.astype(np.int64)))


def test_mnist_bad_split() -> None:
    with pytest.raises(ValueError, match=r"'valid'.*'train'.*'test'"):
        mnist("valid")


def _fake_mnist_dir(d: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    out = {}
    for prefix, n, gz in (("train", 12, True), ("t10k", 5, False)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(d / f"{prefix}-images-idx3-ubyte{suffix}", x)
        write_idx(d / f"{prefix}-labels-idx1-ubyte{suffix}", y)
        out["train" if prefix == "train" else "test"] = (x, y)
    return out


def test_mnist_from_directory(tmp_path: Path) -> None:
    fake = _fake_mnist_dir(tmp_path)
    for split in ("train", "test"):
        x, y = mnist(split, path=tmp_path)
        np.testing.assert_array_equal(x, fake[split][0])
        np.testing.assert_array_equal(y, fake[split][1])
        assert x.dtype == np.uint8 and y.dtype == np.int64
    assert mnist("train", path=str(tmp_path))[0].shape == (12, 28, 28)


def test_mnist_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"not a directory.*train-images-idx3-ubyte\[\.gz\]"):
        mnist("train", path=tmp_path / "missing")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError) as e:
        mnist("test", path=tmp_path)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte[.gz]" in msg and "t10k-labels-idx1-ubyte[.gz]" in msg
    assert msg.endswith("missing: t10k-labels-idx1-ubyte")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3 images but 4 labels"):
        mnist("test", path=tmp_path)


# ---------------------------------------------------------------- loader


def test_tensor_dataset() -> None:
    ds = TensorDataset(np.zeros((5, 2)), np.arange(5))
    assert len(ds) == 5
    x, y = ds[3]
    assert x.shape == (2,) and y == 3
    xb, yb = ds[np.array([4, 0])]
    assert xb.shape == (2, 2) and yb.tolist() == [4, 0]
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(4,\)"):
        TensorDataset(np.zeros((5, 2)), np.arange(4))


@pytest.mark.parametrize("n,bs,drop_last,sizes", [(10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]),
                                                  (9, 3, False, [3, 3, 3]), (2, 5, True, [])])
def test_loader_batch_counts(n: int, bs: int, drop_last: bool, sizes: list[int]) -> None:
    dl = DataLoader(TensorDataset(np.zeros((n, 4)), np.arange(n)), batch_size=bs, drop_last=drop_last)
    assert len(dl) == len(sizes)
    got = [xb.shape[0] for xb, _ in dl]
    assert got == sizes
    if not drop_last:
        assert np.concatenate([yb.data for _, yb in dl]).tolist() == list(range(n))


def test_loader_dtypes_and_uint8_images() -> None:
    x = np.full((6, 28, 28), 255, np.uint8)
    y = np.arange(6, dtype=np.uint8)
    xb, yb = next(iter(DataLoader(TensorDataset(x, y), batch_size=4)))
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.data.dtype == np.float32 and xb.data.shape == (4, 1, 28, 28) and float(xb.data.max()) == 1.0
    assert yb.data.dtype == np.int64 and yb.data.tolist() == [0, 1, 2, 3]
    xb, _ = next(iter(DataLoader((np.ones((3, 2), np.float64), np.zeros(3, np.int32)), batch_size=3)))
    assert xb.data.dtype == np.float32


def test_loader_shuffle_reproducible() -> None:
    n = 50
    ds = TensorDataset(np.zeros((n, 1), np.float32), np.arange(n))

    def epochs(seed: int | None) -> list[list[int]]:
        dl = DataLoader(ds, batch_size=8, shuffle=True, seed=seed)
        return [np.concatenate([yb.data for _, yb in dl]).tolist() for _ in range(3)]

    a, b, c = epochs(7), epochs(7), epochs(8)
    assert a == b
    assert a != c
    assert a[0] != a[1] != a[2]  # a fresh permutation each epoch
    assert all(sorted(e) == list(range(n)) for e in a)
    assert a[0] != list(range(n))


def test_loader_transform() -> None:
    x, y = mnist("train")
    aug = D.Compose([D.RandomShift(2), D.Normalize()])
    dl = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0, transform=aug)
    assert len(dl) == 125
    batches = list(dl)
    xb, yb = batches[0]
    assert xb.data.shape == (64, 1, 28, 28) and xb.data.dtype == np.float32
    # normalized background pixels: (0 - 0.1307) / 0.3081
    assert np.isclose(xb.data.min(), -0.1307 / 0.3081, atol=1e-6)
    # the shuffle order does not depend on whether a transform is used
    plain = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0)
    np.testing.assert_array_equal(next(iter(plain))[1].data, yb.data)


# ---------------------------------------------------------------- transforms


def test_to_float_and_normalize() -> None:
    imgs = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    f = D.to_float(imgs)
    assert f.shape == (1, 1, 2, 2) and f.dtype == np.float32
    np.testing.assert_allclose(f.ravel(), [0.0, 1.0, 0.2, 0.4], rtol=1e-6)
    n = D.normalize(f)
    np.testing.assert_allclose(n.ravel(), (np.array([0.0, 1.0, 0.2, 0.4]) - 0.1307) / 0.3081, rtol=1e-5)
    rgb = np.ones((2, 3, 4, 4), np.float32)
    out = D.normalize(rgb, mean=[0.0, 0.5, 1.0], std=[1.0, 0.5, 0.25])
    assert out[:, 0].max() == 1.0 and out[:, 1].max() == 1.0 and out[:, 2].max() == 0.0
    with pytest.raises(ValueError, match="3 per-channel.*1"):
        D.normalize(f, mean=[0.1, 0.2, 0.3], std=1.0)


def _center_of_mass(batch: np.ndarray) -> np.ndarray:
    h, w = batch.shape[-2:]
    ys, xs = np.mgrid[0:h, 0:w]
    m = batch.reshape(len(batch), -1, h, w).sum(axis=1)
    tot = m.sum(axis=(1, 2))
    return np.c_[(m * ys).sum(axis=(1, 2)) / tot, (m * xs).sum(axis=(1, 2)) / tot]


def test_shift_moves_mass_by_offset() -> None:
    x, _ = mnist("test")
    batch = D.to_float(x[:16])  # digits sit in the middle 20x20 box, so 3 px shifts lose nothing
    dy = np.array([3, -3, 0, 2] * 4)
    dx = np.array([-3, 1, 3, 0] * 4)
    out = D.shift(batch, dy, dx)
    assert out.shape == batch.shape
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), batch.sum(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(_center_of_mass(out) - _center_of_mass(batch), np.c_[dy, dx], atol=1e-4)
    # exact definition on a single pixel, (N, H, W) layout
    one = np.zeros((1, 5, 5), np.float32)
    one[0, 1, 1] = 1
    assert np.argwhere(D.shift(one, 2, 3)[0]).tolist() == [[3, 4]]
    assert D.shift(one, -2, 0).sum() == 0  # pushed out of the frame


def test_random_shift_matches_its_draws() -> None:
    batch = D.to_float(mnist("test")[0][:32])
    out = D.random_shift(batch, 2, np.random.default_rng(3))
    r = np.random.default_rng(3)
    dy, dx = r.integers(-2, 3, size=32), r.integers(-2, 3, size=32)
    np.testing.assert_array_equal(out, D.shift(batch, dy, dx))
    assert {int(v) for v in dy} <= {-2, -1, 0, 1, 2} and len(set(dy.tolist())) > 1
    np.testing.assert_allclose(_center_of_mass(out) - _center_of_mass(batch), np.c_[dy, dx], atol=1e-4)


def test_random_crop() -> None:
    rng = np.random.default_rng(0)
    batch = rng.random((8, 3, 32, 32)).astype(np.float32)
    out = D.random_crop(batch, 32, 4, rng)
    assert out.shape == (8, 3, 32, 32)
    # every crop equals the zero-padded image at some offset in [0, 8]^2
    padded = np.pad(batch, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for i in range(8):
        assert any(np.array_equal(out[i], padded[i, :, a:a + 32, b:b + 32]) for a in range(9) for b in range(9))
    assert D.random_crop(batch, (24, 20), 0, rng).shape == (8, 3, 24, 20)
    np.testing.assert_array_equal(D.random_crop(batch, 32, 0, rng), batch)
    with pytest.raises(ValueError, match="40x40.*36x36"):
        D.random_crop(batch, 40, 2, rng)


def test_random_flip() -> None:
    batch = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    np.testing.assert_array_equal(D.random_flip(batch, np.random.default_rng(0), p=1.0), batch[:, :, ::-1])
    np.testing.assert_array_equal(D.random_flip(batch, np.random.default_rng(0), axis=-2, p=1.0), batch[:, ::-1])
    np.testing.assert_array_equal(D.random_flip(batch, np.random.default_rng(0), p=0.0), batch)
    out = D.random_flip(np.repeat(batch[:1], 200, 0), np.random.default_rng(0))
    flipped = (out[:, 0, 0] == 2).sum()
    assert 70 < flipped < 130 and flipped + (out[:, 0, 0] == 0).sum() == 200


def test_compose_order() -> None:
    x = np.full((2, 1, 4, 4), 0.5, np.float32)
    seen = []
    t = D.Compose([lambda b, r: (seen.append("a"), b * 2)[1], D.Normalize(0.5, 0.5)])
    np.testing.assert_allclose(t(x, np.random.default_rng(0)), 1.0)
    assert seen == ["a"]


# ---------------------------------------------------------------- synthetic


@pytest.mark.parametrize(
    "fn,kwargs,n,k",
    [
        (D.spiral, {}, 300, 3),
        (D.spiral, {"n_per_class": 50, "classes": 5}, 250, 5),
        (D.moons, {"n": 201}, 201, 2),
        (D.circles, {}, 200, 2),
        (D.xor, {}, 200, 2),
        (D.blobs, {"n": 100, "centers": 4}, 100, 4),
    ],
)
def test_synthetic_shapes(fn, kwargs: dict, n: int, k: int) -> None:
    X, y = fn(**kwargs)
    assert X.shape == (n, 2) and X.dtype == np.float32 and y.shape == (n,) and y.dtype == np.int64
    assert sorted(set(y.tolist())) == list(range(k))
    counts = np.bincount(y)
    assert counts.max() - counts.min() <= (1 if fn is not D.xor else n)
    X2, y2 = fn(**kwargs)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(fn(**kwargs, seed=1)[0], X)


def test_synthetic_geometry() -> None:
    X, _ = D.spiral(noise=0.0)
    assert np.linalg.norm(X, axis=1).max() <= 1.0 + 1e-6
    X, y = D.circles(noise=0.0, factor=0.3)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), np.where(y == 0, 1.0, 0.3), rtol=1e-6)
    X, y = D.xor(noise=0.0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))
    X, y = D.blobs(n=300, centers=[[0, 0], [10, 10]], std=0.1)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [10, 10], atol=0.05)
    with pytest.raises(ValueError, match="factor"):
        D.circles(factor=1.5)
