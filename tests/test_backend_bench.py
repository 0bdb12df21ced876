"""The fair-benchmark harness: table layout and the worker environment (no timing asserts)."""
from __future__ import annotations

from click.testing import CliRunner

from tinygrad_cv import bench
from tinygrad_cv.cli import cli

FAKE = {"rows": [{"name": "conv2d 64x1x28x28 * 6 5x5 pad 2", "tinygrad_cv": 1.5, "torch": 4.5, "numpy": 21.0},
                 {"name": "lenet5 epoch", "tinygrad_cv": 400.0, "torch": 410.0}],
        "extra": {"lenet5_rss_mb": {"tinygrad_cv": 250.0, "torch": 400.0},
                  "lenet5_first_s": {"tinygrad_cv": 1.2, "torch": 0.6}},
        "threads": 2, "rounds": 3}


def test_table_columns_align():
    lines = bench.format_table(FAKE).splitlines()
    table = [lines[0]] + lines[2:4]
    assert len({len(line) for line in table}) == 1, table
    assert "0.33x" in lines[2] and "14.0" in lines[2]
    assert "-" in lines[3].split()[-1]           # no NumPy figure for the epoch
    assert "peak memory" in bench.format_table(FAKE) and "0.62x" in bench.format_table(FAKE)


def test_markdown_table():
    md = bench.format_table(FAKE, markdown=True).splitlines()
    assert md[0].startswith("| case (float32") and md[1].startswith("|---")
    assert md[2].count("|") == md[0].count("|")


def test_workers_get_the_default_environment(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    env = bench.default_env()
    assert "OPENBLAS_NUM_THREADS" not in env and "OMP_WAIT_POLICY" not in env
    assert "PYTHONPATH" in env


def test_cli_bench_help_and_bad_group():
    r = CliRunner().invoke(cli, ["bench", "--help"])
    assert r.exit_code == 0 and "--only" in r.output
    r = CliRunner().invoke(cli, ["bench", "--only", "vgg"])
    assert r.exit_code != 0 and "unknown group" in r.output


def test_kernel_profile_names_the_kernels_of_a_lenet_step():
    """benchmarks/kernel_profile.py times each kernel of a training step; LeNet-5's step runs
    its two convolutions (direct kernels), two 2x2 pools and the ReLUs, and the kernels' share
    can be no more than the step."""
    import re
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "kernel_profile.py"
    out = subprocess.run([sys.executable, str(script), "lenet5", "--steps", "3"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    head = re.match(r"lenet5, \d+ threads: ([\d.]+) ms a step, ([\d.]+) in kernels and BLAS, ([-\d.]+) elsewhere", out)
    assert head, out
    total, inside, rest = map(float, head.groups())
    assert 0 < inside <= total and abs(total - inside - rest) < 0.02
    for kernel in ("_max_pool_2x2", "_max_unpool", "_relu", "_relu_grad", "_weight_grad_chunks"):
        assert re.search(rf"^  {kernel} +[\d.]+ ms +[\d.]+ calls", out, re.M), (kernel, out)
