"""The GEMM route's input gradient by phases of the stride (cpu/phases.py) against the reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_cv.backends import reference as ref
from tinygrad_cv.backends.cpu import gemm, phases

TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _layer(rng, n, c, H, W, o, k, s, p, dtype):
    x = rng.standard_normal((n, c, H, W)).astype(dtype)
    w = rng.standard_normal((o, c, *k)).astype(dtype)
    OH, OW = (H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1
    dy = rng.standard_normal((n, o, OH, OW)).astype(dtype)
    return x, w, dy


def _dx(dy, w, x_shape, s, p):
    """phases.input_grad from dy laid out as the GEMM route hands it over, (O, N*OH*OW)."""
    dY = np.ascontiguousarray(dy.transpose(1, 0, 2, 3).reshape(dy.shape[1], -1))
    return phases.input_grad(dY, w, x_shape, dy.shape[2:], s, p)


def _assert_dx(got, x, w, dy, s, p):
    want = ref.conv2d_backward(dy, x, w, s, p, 1)[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    err = float(np.abs(got - want).max()) / max(1.0, float(np.abs(want).max()))
    assert err < TOL[x.dtype.type], (x.shape, w.shape, s, p, err)


@st.composite
def layer(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    H = draw(st.integers(max(1, kh - 2 * ph), 11))
    W = draw(st.integers(max(1, kw - 2 * pw), 11))
    return (draw(st.integers(1, 3)), draw(st.integers(16, 70)), H, W, draw(st.integers(1, 12)), (kh, kw), (sh, sw),
            (ph, pw), draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer())
def test_input_grad_by_phases_matches_the_reference(case):
    """Any filter, stride and padding (strides above the filter leave phases with no taps,
    paddings above it leave border rows that no tap reaches); channels not a multiple of the tile."""
    *shape, dtype, seed = case
    n, c, H, W, o, k, s, p = shape
    x, w, dy = _layer(np.random.default_rng(seed), n, c, H, W, o, k, s, p, dtype)
    _assert_dx(_dx(dy, w, x.shape, s, p), x, w, dy, s, p)


@pytest.mark.parametrize("case", [
    ((32, 64, 16, 16), (128, 64, 3, 3), (2, 2), (1, 1), 1, True),    # the benchmark's stride-2 row
    ((16, 64, 8, 8), (64, 64, 3, 3), (1, 1), (1, 1), 1, True),       # ResNet-18's first stage at CIFAR size
    ((16, 128, 4, 4), (256, 128, 3, 3), (2, 2), (1, 1), 1, False),   # 1.1 MiB of filters: BLAS + row2im
    ((16, 256, 4, 4), (512, 256, 1, 1), (2, 2), (0, 0), 1, False),   # 64 positions for 512 filters: likewise
    ((2, 32, 6, 6), (8, 16, 3, 3), (2, 2), (1, 1), 2, False),        # grouped: BLAS + row2im per group
], ids=["s2row", "stage1", "big-filters", "shortcut", "grouped"])
def test_the_gemm_route_takes_it_where_it_wins(case, monkeypatch):
    xs, ws, s, p, g, expected = case
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    OH, OW = (xs[2] + 2 * p[0] - ws[2]) // s[0] + 1, (xs[3] + 2 * p[1] - ws[3]) // s[1] + 1
    dy = rng.standard_normal((xs[0], ws[0], OH, OW)).astype(np.float32)
    calls = []
    real = phases.input_grad
    monkeypatch.setattr(phases, "input_grad", lambda *a: calls.append(a) or real(*a))
    dx, dw, db = gemm.backward(dy, x, w, s, p, g, True, True)
    assert bool(calls) is expected
    want = ref.conv2d_backward(dy, x, w, s, p, g)
    for got, exp in zip((dx, dw, db), want):
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-4 * float(np.abs(exp).max()))


def test_every_input_position_is_summed_once_and_each_thread_gets_a_fair_share():
    """The plan's groups (each phase's inner rows and columns, and each border row or column)
    cover every position of dx exactly once, apart from the spare row that takes the tail of
    a group's last tile; and the first and second half of the tile list (what two threads get)
    carry the same number of multiply-adds within 5%."""
    N, C, H, W, O = 32, 64, 16, 16, 128
    p = phases._plan(N, C, H, W, O, 3, 3, 2, 2, 1, 1, 8, 8, 64)
    rows = p.cpos // p.cp
    spare = rows == N * H * W
    assert np.array_equal(np.sort(rows[~spare]), np.arange(N * H * W))
    assert spare.sum() < phases.GQ * 16          # at most a tile's tail per group (4 phases x 4 groups)
    work = p.tiles[:, 2]
    half = len(work) // 2
    assert abs(int(work[:half].sum()) - int(work[half:].sum())) < 0.05 * work.sum()
    # border groups: an inner position of the (1, 1) phase reaches 4 taps, the last row's only 2
    assert set(work.tolist()) >= {1 * O, 2 * O, 4 * O}


def test_it_is_chosen_by_the_filters_size_and_the_positions_per_filter():
    assert phases.wins((128, 64, 3, 3), 32 * 8 * 8, 4, 1)            # the stride-2 row: 288 KiB, 16x
    assert phases.wins((128, 64, 3, 3), 32 * 8 * 8, 8, 1)            # 576 KiB in float64
    assert not phases.wins((256, 128, 3, 3), 16 * 8 * 8, 4, 1)       # 1.1 MiB
    assert not phases.wins((512, 256, 1, 1), 16 * 2 * 2, 4, 1)       # ResNet's shortcut: 64 positions, 512 filters
    assert not phases.wins((8, 8, 3, 3), 1000, 4, 2)                 # groups: the per-group BLAS route
