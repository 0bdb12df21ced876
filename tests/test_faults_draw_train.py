"""Issue 15, drawing and training: bounded layouts, dot never left running; no trained model lost."""
import importlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import faults_util as F
import tinygrad_cv as tg
import viz
from tinygrad_cv import checkpoint, models
from tinygrad_cv.expr import parse
from tinygrad_cv.step import Stepper
from tinygrad_cv.train import TrainConfig, fit

D = importlib.import_module("viz.draw")


def _chain(n):
    x = tg.Value(1.0, label="x")
    h = x
    for _ in range(n):
        h = h * 1.0001 + x
    return h


def test_a_value_used_many_times_is_drawn_beside_each_use():
    e = parse("+".join(["x"] * 100), {"x": 1.0})
    e.root.backward()
    src = viz.draw(e.root).source
    assert src.count("(use ") == 99                                  # x is used 100 times: drawn 1 + 99 times
    assert max(src.count(f"\tn{i} ->") for i in range(3)) <= 1       # no hub of 100 edges for dot to untangle


@pytest.mark.skipif(not viz.has_dot(), reason="needs Graphviz")
def test_a_100_term_sum_renders_in_seconds(tmp_path):
    e = parse("+".join(["x"] * 100), {"x": 1.0})
    e.root.backward()
    start = time.perf_counter()
    viz.render(e.root, tmp_path / "g.svg")
    assert time.perf_counter() - start < 30


def test_huge_graphs_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="max_nodes=.*smaller graph"):
        viz.draw(_chain(3000))
    assert viz.draw(_chain(3000), max_nodes=20_000) is not None


def test_frames_are_bounded(tmp_path):
    e = parse("+".join(["x"] * 100), {"x": 1.0})
    with pytest.raises(ValueError, match="frames of .* boxes"):
        viz.write_frames(Stepper(e.root), tmp_path / "f")
    assert not (tmp_path / "f").exists()


@pytest.mark.skipif(not viz.has_dot(), reason="needs Graphviz")
def test_dot_is_killed_on_timeout():
    dig = viz.draw(_chain(1500), max_fanout=10_000)
    start = time.perf_counter()
    try:
        D.pipe(dig, "svg", timeout=0.5)
    except viz.GraphvizTimeout as e:
        assert "stopped" in str(e)
    assert time.perf_counter() - start < 10
    time.sleep(0.2)
    assert not [d for d in _children_named(os.getpid(), "dot") if _alive(d)]


@pytest.mark.skipif(not viz.has_dot(), reason="needs Graphviz")
def test_killing_tgcv_kills_its_dot(tmp_path):
    code = ("import sys; sys.path.insert(0, '.'); import tinygrad_cv as tg, viz, importlib; "
            "x = tg.Value(1.0, label='x'); h = x\n"
            "for _ in range(3000): h = h * 1.0001 + x\n"
            "print('go', flush=True); importlib.import_module('viz.draw').pipe("
            "viz.draw(h, max_fanout=10**6, max_nodes=10**6), 'svg', timeout=None)")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=F.ROOT, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert p.stdout.readline().strip() == b"go"
        deadline = time.time() + 20
        while not _children_named(p.pid, "dot") and time.time() < deadline:
            time.sleep(0.05)
        dots = _children_named(p.pid, "dot")
        assert dots, "dot never started"
        p.kill()
        p.wait()
        deadline = time.time() + 5
        while any(_alive(d) for d in dots) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(_alive(d) for d in dots), "dot outlived tgcv"
    finally:
        try:
            os.killpg(p.pid, 9)
        except ProcessLookupError:
            pass


def _children_named(pid, name):
    from pathlib import Path
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid and (p / "comm").read_text().strip() == name:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _alive(pid):
    from pathlib import Path
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("extra,words", [
    (["--save", "/nonexistent/m.npz"], "directory /nonexistent does not exist"),
    (["--plot", "curves.xyz"], "cannot tell the format"),
    (["--lr", "inf"], "finite"),
])
def test_output_targets_and_values_are_checked_before_training(tmp_path, extra, words):
    r = F.run_tgcv(["train", "lenet5", "--quiet", *extra], timeout=60, cwd=F.ROOT)
    assert r["rc"] == 2 and words in r["err"] and r["out"] == ""      # no epoch ran
    assert r["seconds"] < 30


def test_no_training_digits_is_an_error(tmp_path):
    d = F.mnist_dir(tmp_path / "empty", n_train=0, n_test=0)
    r = F.run_tgcv(["train", "lenet5", "--data", str(d), "--quiet"], timeout=60)
    assert r["rc"] == 2 and "no images" in r["err"] and "accuracy" not in r["out"]


def test_fit_interrupted_keeps_the_last_finished_epoch(monkeypatch):
    import tinygrad_cv.train as T
    real = T.train_epoch
    calls = []

    def stop_in_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "train_epoch", stop_in_second)
    result = fit(TrainConfig(epochs=3, limit=256, backend="numpy"), progress=False, log=lambda s: None)
    assert result.interrupted and len(result.history) == 1
    acc = T.evaluate(result.model, T.prepare(T.load_mnist("test")[0]), T.load_mnist("test")[1])
    assert acc == result.history[0].accuracy                      # the weights of epoch 1, as reported


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_training_saves_the_last_finished_epoch(tmp_path, sig):
    ck = tmp_path / "m.npz"
    p = subprocess.Popen([sys.executable, "-m", "tinygrad_cv", "train", "lenet5", "--epochs", "6", "--limit", "600",
                          "--backend", "numpy", "--save", str(ck)], cwd=F.ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert p.stdout.readline().startswith("epoch 1/6")
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "batch" not in ln]
    assert p.returncode == 130 and "Traceback" not in err
    assert len(lines) == 1 and "interrupted during epoch" in lines[0] and "saved epoch" in lines[0], lines
    meta = checkpoint.load(models.lenet5(), ck).meta
    assert meta["interrupted"] is True and meta["epochs"] >= 1
    assert F.leftover_temps(tmp_path) == []
