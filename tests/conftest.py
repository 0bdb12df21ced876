import importlib.util
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("NO_COLOR", "1")

# What .ci/run installs. On CI (CI=true) a test skipped for want of one of these is a
# failure: a missing install step must not pass as a skip.
REQUIRED_TOOLS = ("dot", "tmux", "chromium")
REQUIRED_MODULES = ("torch", "matplotlib", "micrograd", "sklearn", "nbclient", "nbformat", "ipykernel")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_requirements() -> list[str]:
    return ([t for t in REQUIRED_TOOLS if shutil.which(t) is None]
            + [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None])


def pytest_sessionstart(session):
    if _in_ci() and missing_requirements():
        pytest.exit(f"CI needs {', '.join(missing_requirements())}, which .ci/run installs: "
                    "a test would skip instead of running", returncode=3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if any(name in reason for name in REQUIRED_TOOLS + REQUIRED_MODULES):
            report.outcome = "failed"
            report.longrepr = f"skipped on CI for want of a required tool: {reason}"


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
