import subprocess
import sys

import pytest

import tinygrad_cv as tg


def test_default_backend_is_numba_and_env_overrides():
    out = subprocess.run([sys.executable, "-c", "import tinygrad_cv as tg; print(tg.get_backend())"],
                         capture_output=True, text=True, env={"TGCV_BACKEND": "numpy", "PATH": ""}, check=True)
    assert out.stdout.strip() == "numpy"
    out = subprocess.run([sys.executable, "-c", "import tinygrad_cv as tg; print(tg.get_backend())"],
                         capture_output=True, text=True, env={"PATH": ""}, check=True)
    assert out.stdout.strip() == "numba"


def test_set_backend_and_unknown_name():
    tg.set_backend("numpy")
    assert tg.get_backend() == "numpy"
    with pytest.raises(ValueError, match="unknown backend 'tpu'.*numpy, numba, cuda"):
        tg.set_backend("tpu")
    assert tg.get_backend() == "numpy"


def test_import_is_fast_and_compiles_nothing():
    code = ("import sys, time; t = time.perf_counter(); import tinygrad_cv; "
            "print(time.perf_counter() - t, 'numba' in sys.modules, 'viz' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == "False", "importing tinygrad_cv must not import numba"
    assert out[2] == "False", "the engine must not import viz"
    assert float(out[0]) < 2.0  # generous; the benchmark reports the real figure
