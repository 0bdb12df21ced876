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


def test_import_compiles_nothing_and_loads_no_viz():
    code = "import sys; import tinygrad_cv; print('numba' in sys.modules, 'viz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False", "importing tinygrad_cv must not import numba (kernels compile lazily)"
    assert out[1] == "False", "the engine must not import viz"
