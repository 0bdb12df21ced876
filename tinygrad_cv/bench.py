"""Fair benchmarks: each engine timed alone, in its own process, in the default environment.

For every group of cases (the conv and pool kernels, a LeNet-5 epoch, a ResNet-18
training step) the driver starts one fresh Python process per engine and round,
alternating the engines (tinygrad_cv, torch, the NumPy reference) and rotating who
goes first, so no engine shares a process, a thread pool or a warm cache with
another, and a neighbour's load on the machine falls on all of them alike. Each
worker warms up, times its repetitions and prints one JSON line; the driver takes
the median over every repetition of every round.

Every engine gets the same thread count (``--threads``, default: all cores): numba's
pool for ours, ``torch.set_num_threads`` for torch. The workers run in the default
environment: thread variables (OMP_*, OPENBLAS_*, MKL_*, NUMBA_*THREAD*, ...) are
removed, so the figures are what a user gets without tuning anything.

The same model, weights (ours, seeded, copied into torch key for key) and batches
go to both engines. Memory: each LeNet worker's high-water mark (ru_maxrss).

``--device cuda`` runs the same cases on the GPU: ours on the numba.cuda backend (NumPy
arrays in and out, so every kernel call copies its operands to the GPU and its results
back, and those copies are in our times), torch with its tensors on the GPU, each timed
call ending in ``torch.cuda.synchronize()``. There is no NumPy column there.

    python -m tinygrad_cv.bench [--quick] [--only kernels,lenet5,resnet18] [--markdown] [--device cuda]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

# -- the cases ---------------------------------------------------------------------------------

CONV_ROWS: list[dict[str, Any]] = [
    dict(name="conv2d 64x1x28x28 * 6 5x5 pad 2", x=(64, 1, 28, 28), w=(6, 1, 5, 5), stride=1, padding=2),
    dict(name="conv2d 64x6x14x14 * 16 5x5", x=(64, 6, 14, 14), w=(16, 6, 5, 5), stride=1, padding=0),
    dict(name="conv2d 8x64x56x56 * 64 3x3 pad 1", x=(8, 64, 56, 56), w=(64, 64, 3, 3), stride=1, padding=1),
    dict(name="conv2d 32x3x32x32 * 32 3x3", x=(32, 3, 32, 32), w=(32, 3, 3, 3), stride=1, padding=0),
    dict(name="conv2d 32x64x16x16 * 128 3x3 s2", x=(32, 64, 16, 16), w=(128, 64, 3, 3), stride=2, padding=1),
    dict(name="conv2d 16x256x4x4 * 512 1x1 s2", x=(16, 256, 4, 4), w=(512, 256, 1, 1), stride=2, padding=0),
]
POOL_ROW = dict(name="max_pool2d 2x2 on 64x6x28x28", x=(64, 6, 28, 28), k=2)
GROUPS = ("kernels", "lenet5", "resnet18")
DEVICES = ("cpu", "cuda")
ENGINES = {"kernels": ("tinygrad_cv", "torch", "numpy"), "lenet5": ("tinygrad_cv", "torch"),
           "resnet18": ("tinygrad_cv", "torch")}
LENET_BATCH, LENET_LR, LENET_MOMENTUM = 64, 0.05, 0.9
RESNET_BATCH, RESNET_CLASSES = 16, 10

# variables that change how a library threads; a user who never heard of them has none set
_THREAD_VARS = ("OMP_", "OPENBLAS_", "MKL_", "GOTO_", "GOMP_", "KMP_", "BLIS_", "VECLIB_", "NUMEXPR_",
                "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "TGCV_BACKEND")


def default_env() -> dict[str, str]:
    """This process's environment without any thread-tuning variable, plus the package on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_THREAD_VARS)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# -- workers: one engine, one group, in this process ------------------------------------------------


def _timeit(fn: Callable[[], Any], reps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _torch_synced(torch: Any, device: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a timed call or a training step), and on the GPU a wait for the work it queued
    (torch's kernels run asynchronously)."""
    if device != "cuda":
        return fn

    def synced(*args):
        out = fn(*args)
        torch.cuda.synchronize()
        return out
    return synced


def _conv_case(row: dict[str, Any], engine: str, torch: Any, device: str = "cpu") -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(row["x"]).astype(np.float32)
    w = rng.standard_normal(row["w"]).astype(np.float32)
    b = rng.standard_normal(row["w"][0]).astype(np.float32)
    s, p = row["stride"], row["padding"]
    if engine == "torch":
        F = torch.nn.functional
        xt, wt, bt = (torch.from_numpy(a).to(device).requires_grad_() for a in (x, w, b))
        dy = torch.randn(F.conv2d(xt, wt, bt, stride=s, padding=p).shape, device=device)

        def run_torch():
            return torch.autograd.grad(F.conv2d(xt, wt, bt, stride=s, padding=p), (xt, wt, bt), dy)
        return _torch_synced(torch, device, run_torch)
    mod = _kernels(engine, device)
    s2, p2 = (s, s), (p, p)
    dy = rng.standard_normal(mod.conv2d_forward(x, w, b, s2, p2, 1).shape).astype(np.float32)

    keep = getattr(mod, "conv2d_forward_keep", None)
    if keep is not None:
        # what Conv2dOp runs when a weight gradient is wanted: the forward keeps the im2col
        # columns of the GEMM route for the backward (torch's autograd keeps its own saved state)
        def run_kept():
            _, kept = keep(x, w, b, s2, p2, 1)
            return mod.conv2d_backward_kept(dy, x, w, s2, p2, 1, True, True, True, kept)
        return run_kept

    def run():
        mod.conv2d_forward(x, w, b, s2, p2, 1)
        return mod.conv2d_backward(dy, x, w, s2, p2, 1)
    return run


def _pool_case(row: dict[str, Any], engine: str, torch: Any, device: str = "cpu") -> Callable[[], Any]:
    x = np.random.default_rng(0).standard_normal(row["x"]).astype(np.float32)
    k = row["k"]
    if engine == "torch":
        xt = torch.from_numpy(x).to(device).requires_grad_()
        dy = torch.randn(torch.nn.functional.max_pool2d(xt, k).shape, device=device)
        return _torch_synced(torch, device,
                             lambda: torch.autograd.grad(torch.nn.functional.max_pool2d(xt, k), (xt,), dy))
    mod = _kernels(engine, device)
    k2 = (k, k)
    dy = np.ones(mod.max_pool2d_forward(x, k2, k2, (0, 0))[0].shape, np.float32)

    def run():
        _, arg = mod.max_pool2d_forward(x, k2, k2, (0, 0))
        return mod.max_pool2d_backward(dy, arg, x.shape, k2, k2, (0, 0))
    return run


def _kernels(engine: str, device: str = "cpu"):
    from . import backends
    if engine == "numpy":
        return backends.load("numpy")
    return backends.load("cuda" if device == "cuda" else "numba")


def _work_kernels(engine: str, torch: Any, reps: int, device: str = "cpu") -> dict[str, Any]:
    out = {}
    for row in CONV_ROWS + [POOL_ROW]:
        big = engine == "numpy" and np.prod(row["x"]) * np.prod(row.get("w", (1,))[1:]) > 2e6
        fn = (_pool_case if "k" in row else _conv_case)(row, engine, torch, device)
        out[row["name"]] = _timeit(fn, 1 if big else reps, 0 if big else 2)
    return out


def torch_lenet(torch: Any, state: dict[str, np.ndarray]):
    """torch's LeNet-5 with our parameter names, loaded with our weights."""
    nn = torch.nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                            nn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    net = LeNet()
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return net


def torch_resnet18(torch: Any, state: dict[str, np.ndarray], num_classes: int):
    """torchvision's ResNet-18 structure and names (torchvision itself is not needed), our weights."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            chans, cin = (64, 128, 256, 512), 64
            for i, c in enumerate(chans):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, c, stride), Block(c, c, 1)))
                cin = c
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    net = ResNet()
    net.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in state.items()})
    return net


def lenet_batches(epoch: int):
    """The shipped 8,000 digits, normalized, in epoch ``epoch``'s shuffled order, batches of 64."""
    from .train import load_mnist, prepare
    images, labels = load_mnist("train")
    images = prepare(images)
    order = np.random.default_rng(epoch).permutation(len(labels))
    return [(np.ascontiguousarray(images[order[i:i + LENET_BATCH]]), labels[order[i:i + LENET_BATCH]])
            for i in range(0, len(labels), LENET_BATCH)]


def _trainer(group: str, engine: str, torch: Any, device: str = "cpu"):
    """(step(x, y), batches for the timed repetitions) for one engine."""
    import tinygrad_cv as tg
    from tinygrad_cv import models, optim
    from tinygrad_cv.nn import functional as F

    tg.manual_seed(0)
    ours = models.lenet5() if group == "lenet5" else models.resnet18(num_classes=RESNET_CLASSES)
    ours.train()
    lr, mom = (LENET_LR, LENET_MOMENTUM) if group == "lenet5" else (0.01, 0.9)
    if engine == "torch":
        net = (torch_lenet(torch, ours.state_dict()) if group == "lenet5"
               else torch_resnet18(torch, ours.state_dict(), RESNET_CLASSES))
        net.to(device).train()
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=mom)

        def step(x, y):
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return _torch_synced(torch, device, step)
    opt_ours = optim.SGD(ours.parameters(), lr=lr, momentum=mom)

    def step_ours(x, y):
        loss = F.cross_entropy(ours(tg.Tensor(x)), y)
        opt_ours.zero_grad()
        loss.backward()
        opt_ours.step()
    return step_ours


def _work_training(group: str, engine: str, torch: Any, reps: int, device: str = "cpu") -> dict[str, Any]:
    step = _trainer(group, engine, torch, device)
    t0 = time.perf_counter()
    if group == "lenet5":
        times = []
        for epoch in range(reps + 1):               # epoch 0 warms up (compile or cache load)
            data = lenet_batches(epoch)
            t = time.perf_counter()
            for xb, yb in data:
                step(xb, yb)
            if epoch:
                times.append(time.perf_counter() - t)
            else:
                first = time.perf_counter() - t0
        return {"lenet5 epoch": times, "_first_s": first}
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((RESNET_BATCH, 3, 32, 32)).astype(np.float32) for _ in range(4)]
    ys = [rng.integers(0, RESNET_CLASSES, RESNET_BATCH) for _ in range(4)]
    k = iter(range(10 ** 9))

    def one():
        i = next(k) % 4
        step(xs[i], ys[i])
    one()
    first = time.perf_counter() - t0
    return {"resnet18 step": _timeit(one, reps, 2), "_first_s": first}


def worker(group: str, engine: str, reps: int, threads: int, device: str = "cpu") -> dict[str, Any]:
    """Time ``group`` on ``engine`` in this process; {case: [seconds, ...], "_rss_mb": ...}."""
    import resource
    torch = None
    if engine == "torch":
        import torch
        torch.set_num_threads(threads)
    elif engine == "tinygrad_cv":
        import numba
        numba.set_num_threads(threads)
        if device == "cuda":
            from . import backends
            backends.set_backend("cuda")
    if group == "kernels":
        out = _work_kernels(engine, torch, reps, device)
    else:
        out = _work_training(group, engine, torch, reps, device)
    out["_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


# -- the driver ---------------------------------------------------------------------------------


def _spawn(group: str, engine: str, reps: int, threads: int, device: str = "cpu") -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tinygrad_cv.bench", "--worker", group, engine, "--reps", str(reps),
           "--threads", str(threads), "--device", device]
    r = subprocess.run(cmd, env=default_env(), capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"benchmark worker {group}/{engine} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _has_torch() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None


@functools.lru_cache(maxsize=None)
def _torch_has_cuda() -> bool:
    """Whether torch is installed and sees a GPU (asked in a child, so this process stays torch-free)."""
    if not _has_torch():
        return False
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                       env=default_env(), capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip().endswith("True")


def engines_for(group: str, device: str = "cpu") -> list[str]:
    """The engines a group is timed on: on the GPU, ours and torch (if it has CUDA); no NumPy there."""
    if device == "cuda":
        return ["tinygrad_cv"] + (["torch"] if _torch_has_cuda() else [])
    return [e for e in ENGINES[group] if e != "torch" or _has_torch()]


def run(quick: bool = False, only: tuple[str, ...] = GROUPS, rounds: int | None = None,
        threads: int | None = None, progress: Callable[[str], None] | None = None,
        device: str = "cpu") -> dict[str, Any]:
    """Run the groups; returns {"rows": [{name, engine: median ms, ...}], "memory": ..., "threads": n}.
    ``device="cuda"``: on the GPU (RuntimeError, one line, where neither a GPU nor numba's
    simulator is there)."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if device == "cuda":
        from .backends import cuda
        cuda.ensure_available()
    threads = threads or os.cpu_count() or 1
    rounds = rounds or (2 if quick else 3)
    reps = {"kernels": 5 if quick else 10, "lenet5": 1 if quick else 2, "resnet18": 5 if quick else 10}
    engines = {g: engines_for(g, device) for g in only}
    samples: dict[str, dict[str, list[float]]] = {}
    extra: dict[str, dict[str, float]] = {}
    load = [os.getloadavg()[0]] if hasattr(os, "getloadavg") else []
    for r in range(rounds):
        for g in only:
            order = engines[g][r % len(engines[g]):] + engines[g][:r % len(engines[g])]
            for e in order:
                if progress:
                    progress(f"round {r + 1}/{rounds}: {g} on {e}")
                res = _spawn(g, e, reps[g], threads, device)
                for case, ts in res.items():
                    if case.startswith("_"):
                        extra.setdefault(f"{g}{case}", {}).setdefault(e, res[case])
                        extra[f"{g}{case}"][e] = max(extra[f"{g}{case}"][e], res[case])
                    else:
                        samples.setdefault(case, {}).setdefault(e, []).extend(ts)
                if load:
                    load.append(os.getloadavg()[0])
    rows = []
    for case, by_engine in samples.items():
        rows.append({"name": case, **{e: statistics.median(ts) * 1e3 for e, ts in by_engine.items()}})
    return {"rows": rows, "extra": extra, "threads": threads, "rounds": rounds,
            "load": max(load) if load else None, "device": device}


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """Header and one row per case: ours, torch, numpy (ms), ours/torch, numpy/ours."""
    out = [["case (float32; layers: forward + backward)", "ours ms", "torch ms", "numpy ms", "ours / torch", "x numpy"]]
    for r in results["rows"]:
        ours, tor, ref = r.get("tinygrad_cv"), r.get("torch"), r.get("numpy")
        out.append([r["name"], _fmt(ours), _fmt(tor), _fmt(ref, 1),
                    _fmt(ours / tor) + "x" if ours and tor else "-", _fmt(ref / ours, 1) if ours and ref else "-"])
    return out


def format_table(results: dict[str, Any], markdown: bool = False) -> str:
    """The results as an aligned text table (or a Markdown one), then memory and first-run lines."""
    rows = table_rows(results)
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        fmt = lambda r: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
        lines = [fmt(rows[0]), "-" * len(fmt(rows[0]))] + [fmt(r) for r in rows[1:]]
    ex = results["extra"]
    if "lenet5_rss_mb" in ex:
        m = ex["lenet5_rss_mb"]
        ratio = f" ({m['tinygrad_cv'] / m['torch']:.2f}x)" if "torch" in m and "tinygrad_cv" in m else ""
        lines.append("peak memory of a LeNet-5 training process (ru_maxrss): "
                     + ", ".join(f"{e} {v:.0f} MiB" for e, v in m.items()) + ratio)
    for g in ("lenet5", "resnet18"):
        if f"{g}_first_s" in ex:
            lines.append(f"{g} first step/epoch, process start to done (incl. compile or cache load): "
                         + ", ".join(f"{e} {v:.2f} s" for e, v in ex[f'{g}_first_s'].items()))
    where = (f"{results['threads']} threads each" if results.get("device", "cpu") == "cpu" else
             "on the GPU (ours: numba.cuda, arrays copied in and out on every kernel call; torch: tensors on the GPU)")
    lines.append(f"each engine alone in its own process, {where}, default environment; "
                 f"medians over {results['rounds']} alternating rounds")
    if results.get("load") is not None:
        busy = results["load"] > (os.cpu_count() or 1) + 1       # our own worker keeps the cores busy
        lines.append(f"highest 1-minute load average during the run: {results['load']:.1f} on {os.cpu_count()} cores"
                     + (" - the machine was busy: these figures are not comparable; rerun when quiet" if busy else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tinygrad_cv.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and repetitions")
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="threads per engine (default: all cores)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table (the README's)")
    ap.add_argument("--json", action="store_true", help="print the raw results as JSON")
    ap.add_argument("--device", choices=DEVICES, default="cpu", help="where the engines run (default: cpu)")
    ap.add_argument("--worker", nargs=2, metavar=("GROUP", "ENGINE"), help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(a.worker[0], a.worker[1], a.reps, a.threads or os.cpu_count() or 1, a.device)))
        return
    only = tuple(g.strip() for g in a.only.split(",") if g.strip())
    bad = [g for g in only if g not in GROUPS]
    if bad:
        ap.error(f"unknown group(s) {bad}; choose from {', '.join(GROUPS)}")
    if a.device == "cuda":
        from .backends import cuda
        try:
            cuda.ensure_available()
        except RuntimeError as e:
            sys.exit(f"error: {e}")
    res = run(a.quick, only, a.rounds, a.threads, progress=lambda s: print(s, file=sys.stderr, flush=True),
              device=a.device)
    print(json.dumps(res) if a.json else format_table(res, a.markdown))


if __name__ == "__main__":
    main()
