"""On CI, a test that would skip for want of a tool .ci/run installs fails the run instead."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_refuses_to_run_without_a_required_tool(tmp_path):
    bin_dir = tmp_path / "bin"                      # a PATH with python and a shell, but no dot/tmux/chromium
    bin_dir.mkdir()
    for tool in (sys.executable, "/bin/sh", "/bin/bash"):
        (bin_dir / Path(tool).name).symlink_to(tool)
    env = dict(os.environ, CI="true", PATH=str(bin_dir))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_cli.py::test_help_lists_commands"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "CI needs dot, tmux, chromium" in r.stdout + r.stderr


def test_outside_ci_the_same_run_passes(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_cli.py::test_help_lists_commands"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
