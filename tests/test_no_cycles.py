"""A recorded graph is freed by reference counting as soon as its last user lets go.

No node, context or optimizer state may sit in a reference cycle: a cycle keeps a whole
graph (for tensors: every saved activation) alive until Python's cycle collector happens to
run, so memory grows between steps and the collector's full scans cost time in a later one.
(micrograd's nodes are cycles, through the ``_backward`` closure each of them holds; that is
most of its time in benchmarks/scalar_engine.py.) Each test warms up, then runs steps with
the collector off and asks it how many unreachable objects those steps left behind.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import nn


def cyclic_garbage(run, times: int = 3) -> list:
    """The objects that ``times`` calls of ``run`` leave for the cycle collector."""
    run()                                   # first calls fill caches (compiled kernels, buffers)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)          # keep what the collector finds, to name it
    try:
        for _ in range(times):
            run()
        gc.collect()
        found = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    return found


def names(objs: list) -> list[str]:
    return sorted({type(o).__name__ for o in objs})


def test_value_graph_is_freed_when_its_root_goes():
    gc.disable()
    try:
        x, y = tg.Value(2.0, label="x"), tg.Value(-3.0, label="y")
        f = (x * y + x.relu()).tanh() ** 2
        f.backward()
        made = [weakref.ref(n) for n in tg.trace(f).nodes if n.op is not None]    # every gate's output
        assert len(made) == 5
        del f
        alive = [r() for r in made if r() is not None]
        assert not alive, f"{len(alive)} nodes outlived the root: something holds them in a cycle"
        assert x.grad != 0.0 and y.grad != 0.0      # the leaves keep their gradients
    finally:
        gc.enable()


def test_scalar_training_step_leaves_no_cycles():
    ws = [tg.Value(float(w)) for w in np.linspace(-1, 1, 12)]

    def step():
        loss = sum(((w * x - 0.5).relu() for w, x in zip(ws, np.linspace(0, 2, 12))), tg.Value(0.0))
        for w in ws:
            w.grad = 0.0
        loss.backward()
        for w in ws:
            w.data -= 0.1 * w.grad

    garbage = cyclic_garbage(step)
    assert not garbage, f"{len(garbage)} objects in cycles: {names(garbage)}"


@pytest.mark.parametrize("make_opt", [
    lambda ps: tg.optim.SGD(ps, lr=0.01, momentum=0.9),
    lambda ps: tg.optim.Adam(ps, lr=1e-3),
], ids=["sgd-momentum", "adam"])
def test_cnn_training_step_leaves_no_cycles(make_opt):
    """Conv, batch norm, pooling, the loss and the optimizer: one training step of a small
    CNN in train mode leaves nothing for the collector."""
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    opt = make_opt(net.parameters())
    x = tg.tensor(rng.standard_normal((6, 1, 8, 8)).astype(np.float32))
    y = tg.tensor(np.arange(6) % 10)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    garbage = cyclic_garbage(step)
    assert not garbage, f"{len(garbage)} objects in cycles: {names(garbage)}"


def test_tensor_graph_with_saved_activations_is_freed():
    """What an op saves for backward (ctx.saved_tensors) goes with the graph."""
    gc.disable()
    try:
        x = tg.tensor(np.ones((2, 3, 6, 6), np.float32), requires_grad=True)
        w = tg.tensor(np.full((4, 3, 3, 3), 0.1, np.float32), requires_grad=True)
        out = nn.functional.conv2d(x, w, padding=1).relu().sum()
        out.backward()
        made = [weakref.ref(n) for n in tg.trace(out).nodes if n.op is not None]
        assert len(made) == 3
        del out
        alive = [r() for r in made if r() is not None]
        assert not alive, f"{len(alive)} tensors outlived the root: something holds them in a cycle"
        assert w.grad is not None and float(np.abs(np.asarray(w.grad)).sum()) > 0
    finally:
        gc.enable()
