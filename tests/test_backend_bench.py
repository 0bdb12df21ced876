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


def test_gpu_bench_runs_ours_on_the_cuda_backend_in_the_simulator():
    """`--device cuda`: a kernels worker times our cases on the numba.cuda backend (here on
    numba's simulator, with the cases cut down to toy sizes so that it takes seconds)."""
    import json
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent('''
        import json
        from tinygrad_cv import bench, backends
        bench.CONV_ROWS[:] = [dict(name="conv 2x2x5x5 * 3 3x3 pad 1", x=(2, 2, 5, 5), w=(3, 2, 3, 3), stride=1, padding=1),
                              dict(name="conv 2x4x6x6 * 4 3x3 s2", x=(2, 4, 6, 6), w=(4, 4, 3, 3), stride=2, padding=1)]
        bench.POOL_ROW.update(name="pool 2x2 on 2x2x4x4", x=(2, 2, 4, 4), k=2)
        import sys
        out = bench.worker("kernels", "tinygrad_cv", 2, 1, "cuda")
        print(json.dumps({"backend": backends.get_backend(), "out": out,
                          "cpu_kernels_loaded": "tinygrad_cv.backends.cpu" in sys.modules}))
    ''')
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(root)}
    env.pop("TGCV_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["backend"] == "cuda" and not res["cpu_kernels_loaded"]     # the cuda kernels ran, not ours on the CPU
    times = {k: v for k, v in res["out"].items() if not k.startswith("_")}
    assert set(times) == {"conv 2x2x5x5 * 3 3x3 pad 1", "conv 2x4x6x6 * 4 3x3 s2", "pool 2x2 on 2x2x4x4"}
    assert all(len(v) == 2 and all(t > 0 for t in v) for v in times.values())


def test_gpu_bench_waits_for_torch_and_names_the_device():
    """On the GPU torch's calls return before the work is done, so each timed call and step
    ends in torch.cuda.synchronize(); on the CPU nothing is added. The table says where it ran."""
    calls = []

    class FakeCuda:
        @staticmethod
        def synchronize():
            calls.append("sync")

    class FakeTorch:
        cuda = FakeCuda

    fn = bench._torch_synced(FakeTorch, "cuda", lambda: calls.append("work") or 7)
    assert fn() == 7 and calls == ["work", "sync"]
    assert bench._torch_synced(FakeTorch, "cpu", len) is len
    calls.clear()
    bench._torch_synced(FakeTorch, "cuda", lambda x, y: calls.append((x, y)))(1, 2)
    assert calls == [(1, 2), "sync"]
    on_gpu = bench.format_table({**FAKE, "device": "cuda"})
    assert "on the GPU" in on_gpu and "threads each" not in on_gpu
    assert "2 threads each" in bench.format_table(FAKE)


def test_gpu_bench_without_a_gpu_is_one_line():
    """No GPU and no simulator: `tgcv bench --device cuda` says so in one line (exit 1), and
    bench.run refuses before it starts a worker. In a child process: numba.cuda decides on the
    simulator when it is first imported."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    code = textwrap.dedent('''
        from numba import cuda
        from tinygrad_cv import bench
        if cuda.is_available():
            print("HAS-GPU")
        else:
            try:
                bench.run(only=("kernels",), device="cuda")
            except RuntimeError as e:
                print("ERR:" + str(e))
            from tinygrad_cv.cli import main
            main(["bench", "--device", "cuda"])
    ''')
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "TGCV_BACKEND")}
    r = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(root)},
                       capture_output=True, text=True, timeout=120)
    if "HAS-GPU" in r.stdout:
        return
    assert r.stdout.startswith("ERR:the cuda backend needs an NVIDIA GPU"), (r.stdout, r.stderr[-2000:])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("tgcv: error: the cuda backend needs") and len(r.stderr.strip().splitlines()) == 1
    bad = CliRunner().invoke(cli, ["bench", "--device", "tpu"])
    assert bad.exit_code != 0 and "cuda" in bad.output
