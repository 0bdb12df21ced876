"""Every backend implements the one written interface (backends/interface.py), and the shape
helpers live in one place."""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tinygrad_cv.backends import interface
from tests.test_kernels import BACKENDS, load_backend

ROOT = Path(__file__).resolve().parents[1] / "tinygrad_cv" / "backends"


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_matches_protocol(name):
    mod = load_backend(name)
    assert isinstance(mod, interface.Kernels)
    for kernel in interface.KERNEL_NAMES:
        want = list(inspect.signature(getattr(interface.Kernels, kernel)).parameters)[1:]  # drop self
        got = list(inspect.signature(getattr(mod, kernel)).parameters)
        assert got == want, f"{name}.{kernel}{got} differs from the interface's {want}"


def test_interface_names_all_twelve_kernels():
    assert set(interface.KERNEL_NAMES) == {
        "conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
        "avg_pool2d_forward", "avg_pool2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward",
        "interpolate2d_forward", "interpolate2d_backward", "normalize_rows_forward", "normalize_rows_backward"}


def test_shape_helpers_defined_once():
    sources = {p.relative_to(ROOT).as_posix(): p.read_text() for p in ROOT.rglob("*.py")}
    defs = [f for f, s in sources.items() if "IntPair = " in s]
    assert defs == ["shapes.py"], defs
    assert not [f for f, s in sources.items() if "def _out_hw" in s]
