"""Issue 15, files: hostile checkpoints and IDX files are refused by key/size before any big allocation,
and interrupted saves leave neither temp files nor a damaged old checkpoint."""
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

import faults_util as F
from tinygrad_cv import checkpoint, models, nn
from tinygrad_cv.data import DataError, mnist, read_idx, write_idx

W = (6, 1, 5, 5)


@pytest.fixture
def lenet():
    return models.lenet5()


@pytest.mark.parametrize("descr,shape,payload,words", [
    ("<f4", W, np.full(W, np.nan, np.float32).tobytes(), "'features.0.weight' holds 150 NaN or infinite"),
    ("<f8", W, np.full(W, 1e300).tobytes(), "'features.0.weight' holds 1e+300, too large for the model's float32"),
    ("<c8", W, np.ones(W, np.complex64).tobytes(), "'features.0.weight' holds complex numbers"),
    ("<U1", W, "a".encode("utf-32-le") * 150, "'features.0.weight' holds strings"),
    ("|O", W, b"\x80\x04junk", "'features.0.weight' holds objects"),
    ("<f4", (10**12,), bytes(600), "'features.0.weight' declares shape (1000000000000,)"),
    ("<f4", (6, 1, 5, 4), bytes(480), "features.0.weight: model (6, 1, 5, 5), file (6, 1, 5, 4)"),
])
def test_bad_entries_are_refused_with_the_key_named(tmp_path, lenet, descr, shape, payload, words):
    path = F.lenet_checkpoint_with(tmp_path / "bad.npz", "features.0.weight", descr, shape, payload)
    before = lenet.state_dict()
    with pytest.raises(ValueError) as e:
        checkpoint.load(lenet, path)
    assert words in str(e.value)
    for k, v in lenet.state_dict().items():                      # nothing half-loaded
        np.testing.assert_array_equal(v, before[k])


def test_random_bytes_are_not_called_pickled_data(tmp_path):
    path = tmp_path / "r.npz"
    path.write_bytes(os.urandom(3000))
    with pytest.raises(ValueError, match="not a .npz .zip. file") as e:
        checkpoint.load(None, path)
    assert "pickle" not in str(e.value)


def test_deflate_bomb_is_refused_before_decompressing(tmp_path, lenet):
    bomb = F.deflate_bomb(tmp_path / "bomb.npz", 256 << 20)          # a 0.25 MB file holding 256 MB of zeros
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="features.0.weight: model"):
            checkpoint.load(lenet, bomb)
        with pytest.raises(ValueError, match="max_bytes"):
            checkpoint.load(None, bomb, max_bytes=64 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MB"


def test_a_real_large_entry_loads_with_peak_memory_near_its_size(tmp_path):
    a = np.arange(4 << 20, dtype=np.float32)                         # 16 MB
    path = checkpoint.save({"a": a}, tmp_path / "big.npz")
    tracemalloc.start()
    try:
        got = checkpoint.load(None, path).state["a"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, a)
    assert peak < 2.5 * a.nbytes


def test_save_refuses_non_finite_and_non_numeric(tmp_path):
    with pytest.raises(ValueError, match="'w' holds 1 NaN"):
        checkpoint.save({"w": np.array([1.0, np.nan])}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="'w' holds complex"):
        checkpoint.save({"w": np.array([1j])}, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_state_dict_refuses_what_would_turn_into_wrong_numbers():
    m = nn.Linear(2, 1)
    for a, words in [(np.array([[None, 1]], dtype=object), "objects"), (np.array([[1e300, 1]]), "too large"),
                     (np.array([[1 + 2j, 1]]), "complex"), (np.array([["a", "b"]]), "strings"),
                     (np.array([[np.nan, 1]]), "NaN")]:
        with pytest.raises(ValueError, match=f"'weight' holds.*{words}|'weight'.*{words}"):
            m.load_state_dict({"weight": a, "bias": np.zeros(1)})


_SAVER = ("import numpy as np, sys; from tinygrad_cv import checkpoint; print('go', flush=True); "
          "checkpoint.save({'w': np.ones(50_000_000, np.float32)}, sys.argv[1])")


def _interrupted_save(tmp_path, sig):
    target = tmp_path / "m.npz"
    checkpoint.save({"w": np.ones(4)}, target)
    old = target.read_bytes()
    p = subprocess.Popen([sys.executable, "-c", _SAVER, str(target)], cwd=F.ROOT, stdout=subprocess.PIPE)
    try:
        p.stdout.readline()
        deadline = time.time() + 30
        while not F.leftover_temps(tmp_path) and time.time() < deadline:
            time.sleep(0.002)
        assert F.leftover_temps(tmp_path), "the save never started writing"
        p.send_signal(sig)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert target.read_bytes() == old                               # the old checkpoint survives
    return target, p.returncode


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_save_stopped_by_a_signal_removes_its_temp_file(tmp_path, sig):
    _, rc = _interrupted_save(tmp_path, sig)
    assert rc != 0
    assert F.leftover_temps(tmp_path) == []


def test_temp_file_of_a_save_killed_by_sigkill_is_swept_by_the_next_save(tmp_path):
    target, rc = _interrupted_save(tmp_path, signal.SIGKILL)
    assert rc == -9 and F.leftover_temps(tmp_path)                  # nothing can clean up after kill -9 ...
    other = tmp_path / ".other.npz.123.abc.tmp"
    other.write_bytes(b"someone else's")
    checkpoint.save({"w": np.ones(4)}, target)                       # ... so the next save of that file does
    assert F.leftover_temps(tmp_path) == [other.name]
    assert checkpoint.load(None, target).state["w"].shape == (4,)


def test_idx_gzip_bomb_and_forged_dims_are_refused_with_bounded_memory(tmp_path):
    forged = F.gzip_bomb_idx(tmp_path / "forged.gz", (4_000_000_000, 28, 28), real_bytes=1000)
    with pytest.raises(DataError, match="limit"):
        read_idx(forged)
    cannot = F.gzip_bomb_idx(tmp_path / "cannot.gz", (100_000, 28, 28), real_bytes=1000)
    with pytest.raises(DataError, match="cannot hold"):
        read_idx(cannot)
    bomb = F.gzip_bomb_idx(tmp_path / "bomb.gz", (400_000, 28, 28))       # 313 MB of zeros in a 0.3 MB file
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="limit"):
            read_idx(bomb, max_bytes=64 << 20)
        liar = F.gzip_bomb_idx(tmp_path / "liar.gz", (60_000, 28, 28), real_bytes=5_000_000)
        with pytest.raises(DataError, match="truncated"):
            read_idx(liar)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20, f"peak {peak / 2**20:.1f} MB"


def test_mnist_dirs_with_no_digits_or_bad_labels_are_errors(tmp_path):
    with pytest.raises(DataError, match="no images"):
        mnist("train", F.mnist_dir(tmp_path / "empty", n_train=0, n_test=0))
    with pytest.raises(DataError, match="labels must be digits 0..9, found 200"):
        mnist("train", F.mnist_dir(tmp_path / "labels", labels=np.full(64, 200, np.uint8)))
    d = F.mnist_dir(tmp_path / "ok")
    write_idx(d / "train-labels-idx1-ubyte", np.zeros(63, np.uint8))
    with pytest.raises(DataError, match="64 images but 63 labels"):
        mnist("train", d)
