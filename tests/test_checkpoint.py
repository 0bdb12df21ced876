"""Checkpoints: .npz + JSON header, atomic, no pickle, mismatches named."""
import json
import os
import zipfile

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import Tensor, checkpoint, models, nn


def _net():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def test_roundtrip_with_meta(tmp_path):
    a = _net()
    a(Tensor(np.random.default_rng(0).normal(size=(3, 1, 4, 4)).astype(np.float32)))
    path = checkpoint.save(a, tmp_path / "net.npz", model_name="tiny", epoch=3, acc=0.97)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["net.npz"]   # no temp file left
    tg.manual_seed(1)
    b = _net()
    ck = checkpoint.load(b, path)
    assert ck.meta == {"epoch": 3, "acc": 0.97, "model": "tiny"}
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
        assert va.dtype == vb.dtype
    only = checkpoint.load(None, path)
    assert set(only.state) == set(a.state_dict())


def test_file_is_plain_npz_with_a_json_header(tmp_path):
    path = checkpoint.save(models.lenet5(), tmp_path / "lenet.npz", epoch=1)
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(z[checkpoint.HEADER_KEY].tobytes())
        assert z[checkpoint.HEADER_KEY].dtype == np.uint8
        assert header["format"] == checkpoint.FORMAT and header["model"] == "LeNet5"
        assert header["shapes"]["features.0.weight"] == [6, 1, 5, 5]
        assert header["meta"] == {"epoch": 1}
        assert "classifier.4.bias" in z.files


def test_mismatches_are_named(tmp_path):
    path = checkpoint.save(_net(), tmp_path / "net.npz")
    other = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError) as e:
        checkpoint.load(other, path)
    msg = str(e.value)
    assert "missing keys ['4.weight', '4.bias']" not in msg          # ReLU has none; Linear is 5
    assert "missing keys ['5.weight', '5.bias']" in msg
    assert "0.weight: model (4, 1, 3, 3), file (2, 1, 3, 3)" in msg
    assert "3.weight: model (3, 16), file (3, 8)" in msg
    smaller = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match=r"unexpected keys \['1.weight'"):
        checkpoint.load(smaller, path)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.load(None, tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        checkpoint.load(None, junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(ValueError, match="not a tinygrad_cv checkpoint"):
        checkpoint.load(None, plain)
    pickled = tmp_path / "pickled.npz"
    header = np.frombuffer(json.dumps({"format": checkpoint.FORMAT}).encode(), np.uint8)
    np.savez(pickled, **{checkpoint.HEADER_KEY: header, "w": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError, match="not a readable checkpoint"):    # object arrays need pickle: refused
        checkpoint.load(None, pickled)
    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save(_net(), tmp_path / "x.npz", when=object())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.save(_net(), tmp_path / "missing_dir" / "x.npz")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = checkpoint.save(_net(), tmp_path / "net.npz", epoch=1)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(_net(), path, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]
    assert zipfile.is_zipfile(path) and os.stat(path).st_mode & 0o044
