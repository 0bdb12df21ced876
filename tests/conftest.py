import os

import numpy as np
import pytest

os.environ.setdefault("NO_COLOR", "1")


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts on the default backend with the library's generator reseeded."""
    import tinygrad_cv as tg
    from tinygrad_cv import backends

    tg.manual_seed(0)
    saved = backends._selected
    yield
    backends._selected = saved


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def run_cli(capsys):
    """Run ``tgcv ARGS...`` in this process: returns (exit code, stdout, stderr)."""
    def run(*args):
        from tinygrad_cv.cli import main

        code = 0
        try:
            main(list(args))
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return run
