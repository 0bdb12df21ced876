"""Probe hostile input and faults: every case must end cleanly (issue 15).

    python benchmarks/probe_faults.py            # all cases (about 2-3 minutes on 2 cores)
    python benchmarks/probe_faults.py --quick    # skip the slow ones (training, bombs)

Each case is classified: ``ok`` (worked, right answer), ``refused`` (one line
``tgcv: error: ...`` and exit 2, or a clean library exception), or a failure:
``traceback``, ``hang`` (past its time limit; the process group is killed),
``wrong`` (a silent wrong number), ``lost`` (a trained model lost), ``memory``
(peak RSS over the case's bound), ``noisy`` (warnings or more than one error line),
``code`` (an unexpected exit status). The last line gives the counts; the exit
status is 1 when any case failed.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

import faults_util as F  # noqa: E402

FAILURES = ("traceback", "hang", "wrong", "lost", "memory", "noisy", "code")
results: list[tuple[str, str, str, str]] = []      # (kind, name, outcome, detail)


def record(kind: str, name: str, outcome: str, detail: str = "") -> None:
    results.append((kind, name, outcome, detail))
    if outcome in FAILURES:
        print(f"FAIL [{outcome}] {kind}: {name}: {detail}", flush=True)


def classify_cli(r: dict[str, Any], expect: str, max_rss_mb: float, max_seconds: float | None) -> tuple[str, str]:
    err = r["err"]
    if r["hung"]:
        return "hang", f"killed after {r['seconds']:.0f} s"
    if "Traceback" in err or r["rc"] not in (0, 1, 2, 130):
        return "traceback", (err.strip().splitlines() or [f"rc {r['rc']}"])[-1][:200]
    if r["max_rss_mb"] > max_rss_mb:
        return "memory", f"peak {r['max_rss_mb']:.0f} MB > {max_rss_mb:.0f} MB"
    if max_seconds is not None and r["seconds"] > max_seconds:
        return "hang", f"took {r['seconds']:.1f} s > {max_seconds:g} s"
    if "Warning" in err:
        return "noisy", err.strip().splitlines()[0][:200]
    if r["rc"] == 0:
        return ("ok", "") if expect in ("ok", "either") else ("code", "exit 0 where a refusal was expected")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if len(lines) != 1 or not lines[0].startswith("tgcv: "):
        return "noisy", f"{len(lines)} stderr lines: {err.strip()[:200]!r}"
    if expect == "ok":
        return "code", f"exit {r['rc']}: {lines[0][:200]}"
    if r["rc"] != 2 and expect != "fail1":
        return "code", f"exit {r['rc']} (bad input should be 2): {lines[0][:200]}"
    return "refused", lines[0][:200]


def cli(kind: str, name: str, args: list[str], expect: str = "refused", *, timeout: float = 60,
        max_rss_mb: float = 700, max_seconds: float | None = None, env: dict[str, str] | None = None,
        stdin: Any = None, check: Callable[[dict[str, Any]], str | None] | None = None) -> dict[str, Any]:
    r = F.run_tgcv(args, timeout=timeout, env=env, stdin=stdin)
    outcome, detail = classify_cli(r, expect, max_rss_mb, max_seconds)
    if outcome in ("ok", "refused") and check is not None:
        problem = check(r)
        if problem:
            outcome, detail = problem.split(":", 1)[0], problem
    record(kind, name, outcome, detail)
    return r


def api(kind: str, name: str, fn: Callable[[], str | None], refusals: tuple[type, ...] = (ValueError, TypeError)) -> None:
    """An in-process case: ``fn`` returns None (ok) or "wrong: why"; a refusal type counts as refused."""
    import warnings
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            problem = fn()
    except refusals as e:
        record(kind, name, "refused", f"{type(e).__name__}: {str(e)[:160]}")
        return
    except Exception as e:  # noqa: BLE001
        record(kind, name, "traceback", f"{type(e).__name__}: {e}"[:200])
        return
    if problem:
        record(kind, name, problem.split(":", 1)[0], problem)
    else:
        record(kind, name, "ok")


# --- the cases ------------------------------------------------------------------------------

EXPRESSIONS = [
    # non-finite values: render draws them (inf, nan as PyTorch computes them), step refuses them: both clean
    ("x**0.5", ["x=0"], "either"), ("x**0.5", ["x=-1"], "either"), ("x**0", ["x=0"], "ok"),
    ("x**-1", ["x=0"], "either"), ("x**400", ["x=10"], "either"), ("1/x", ["x=0"], "refused"), ("log(x)", ["x=0"], "refused"),
    ("exp(x)", ["x=1000"], "refused"), ("__import__('os').system('true')", [], "refused"),
    ("x.__class__", ["x=1"], "refused"), ("x[0]", ["x=1"], "refused"), ("lambda: 1", [], "refused"),
    ("(lambda: 1)()", [], "refused"), ("open('/etc/passwd')", [], "refused"), ("1is 2", [], "refused"),
    ("2(3)", [], "refused"), ("x if x else 1", ["x=1"], "refused"), ("[x for x in y]", [], "refused"),
    ("f'{x}'", ["x=1"], "refused"), ("x @ x", ["x=1"], "refused"), ("x ** x", ["x=2"], "refused"),
    ("", [], "refused"), ("   ", [], "refused"), ("\x01", [], "refused"), ("x\x1b[31m", ["x=1"], "refused"),
    ("x", ["x=nan"], "refused"), ("x", ["x=inf"], "refused"), ("x", ["x=1e400"], "refused"),
    ("x", ["x=abc"], "refused"), ("x", ["x"], "refused"), ("x", ["\x1b[2J=1"], "refused"),
    ("x", ["x=1", "y=2"], "refused"), ("y", ["x=1"], "refused"), ("9" * 400, [], "refused"),
    ("1e999", [], "refused"), ("(" * 300 + "x" + ")" * 300, ["x=1"], "refused"),
    ("-" * 1500 + "x", ["x=1"], "either"), ("+".join(["x"] * 999), ["x=1"], "ok"),
    ("*".join(["x"] * 999), ["x=1"], "ok"), ("-".join(["x"] * 999), ["x=1"], "ok"),
    ("/".join(["x"] * 999), ["x=1"], "ok"), ("x+" * 1100 + "x", ["x=1"], "refused"),
    ("max(x)", ["x=1"], "refused"), ("leaky_relu(x, y)", ["x=1", "y=2"], "refused"),
    ("elu(x, alpha=x)", ["x=1"], "refused"), ("tanh(x, x)", ["x=1"], "refused"), ("relu(*x)", ["x=1"], "refused"),
    ("sigmoid(x) * tanh(x) + relu(-x) + elu(x, 0.5) + leaky_relu(x, 0.1) + max(x, 2)", ["x=0.3"], "ok"),
]


def expression_cases(out: Path, quick: bool) -> None:
    for i, (src, sets, expect) in enumerate(EXPRESSIONS):
        args = ["--expr", src] + [a for s in sets for a in ("--set", s)]
        cli("expr-render", repr(src)[:60], ["render", *args, "-o", str(out / f"e{i}.dot")], expect, max_seconds=30)
        if not quick or i % 5 == 0:
            cli("expr-step", repr(src)[:60], ["step", *args, "--no-interactive"], expect, max_seconds=30)
    # a bounded random fuzz of the parser through the CLI (seeded: the same every run)
    rng = random.Random(15)
    atoms = ["x", "y", "1", "0", "-", "+", "*", "/", "**", "(", ")", "exp(", "log(", "max(", ",", ".", "[", "]",
             "'", "lambda", ":", "1e308", "\\", "\x07", "é", " "]
    for j in range(20 if quick else 60):
        src = "".join(rng.choice(atoms) for _ in range(rng.randint(1, 25)))
        cli("expr-fuzz", repr(src)[:60], ["render", "--expr", src, "--set", "x=0.5", "-o", str(out / "fz.dot")],
            "either", max_seconds=30)


def drawing_cases(out: Path, quick: bool) -> None:
    for n in (70, 100, 300, 999):
        src = "+".join(["x"] * n)
        cli("draw", f"render svg of a {n}-term sum", ["render", "--expr", src, "--set", "x=1", "-o",
            str(out / f"sum{n}.svg")], "ok", max_seconds=20)
    cli("draw", "step --frames of a 60-term sum", ["step", "--expr", "+".join(["x"] * 60), "--set", "x=1",
        "--no-interactive", "--frames", str(out / "fr60")], "ok", max_seconds=90, timeout=150)
    cli("draw", "step --frames of a 100-term sum", ["step", "--expr", "+".join(["x"] * 100), "--set", "x=1",
        "--no-interactive", "--frames", str(out / "fr100")], "refused", max_seconds=20)
    cli("draw", "render to a directory", ["render", "--expr", "x", "--set", "x=1", "-o", str(out)], "refused")
    cli("draw", "render to an unknown suffix", ["render", "--expr", "x", "--set", "x=1", "-o", str(out / "a.jpg")])
    cli("draw", "render into a missing directory", ["render", "--expr", "x", "--set", "x=1", "-o",
        "/proc/nonexistent/a.svg"], "either")

    def big_draw() -> str | None:
        import tinygrad_cv as tg
        import viz
        x = tg.Value(1.0, label="x")
        h = x
        for _ in range(10_000):
            h = h * 1.0001 + x
        try:
            viz.draw(h)
        except ValueError as e:
            if "max_nodes" not in str(e):
                return f"wrong: message without the limit: {e}"
            raise
        return "wrong: a 20,000-node graph was drawn"
    api("draw", "viz.draw of a 20,000-node graph", big_draw)

    def dot_killed_on_timeout() -> str | None:
        import tinygrad_cv as tg
        import viz
        import importlib
        D = importlib.import_module("viz.draw")
        x = tg.Value(1.0, label="x")
        h = x
        for _ in range(1500):
            h = h * 1.0001 + x
        before = _dot_processes()
        start = time.perf_counter()
        try:
            D.pipe(viz.draw(h, max_fanout=10_000), "svg", timeout=1.0)
        except viz.GraphvizTimeout:
            pass
        else:
            return None                                  # dot was fast enough on this machine: fine too
        if time.perf_counter() - start > 10:
            return "hang: the timeout did not stop dot"
        time.sleep(0.2)
        left = _dot_processes() - before
        return f"hang: dot still running {sorted(left)}" if left else None
    if shutil.which("dot"):
        api("draw", "dot stopped at its timeout and killed", dot_killed_on_timeout, (RuntimeError,))


def _dot_processes() -> set[int]:
    found = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() == "dot":
                    found.add(int(p.name))
            except OSError:
                pass
    return found


def checkpoint_cases(tmp: Path, out: Path, quick: bool) -> None:
    import tinygrad_cv as tg
    from tinygrad_cv import checkpoint, models
    state = F.lenet_state()
    good = checkpoint.save(models.lenet5(), tmp / "good.npz", model_name="lenet5")
    w = state["features.0.weight"]
    f4 = "<f4"
    bad = {
        "random bytes": lambda p: p.write_bytes(os.urandom(4096)),
        "empty file": lambda p: p.write_bytes(b""),
        "truncated zip": lambda p: p.write_bytes(good.read_bytes()[:3000]),
        "plain npz without header": lambda p: np.savez(p, w=np.ones(3)),
        "NaN weight": lambda p: F.lenet_checkpoint_with(p, "features.0.weight", f4, w.shape,
                                                       np.full(w.shape, np.nan, np.float32).tobytes()),
        "inf bias": lambda p: F.lenet_checkpoint_with(p, "features.0.bias", f4, (6,),
                                                     np.full(6, np.inf, np.float32).tobytes()),
        "1e300 in float64": lambda p: F.lenet_checkpoint_with(p, "features.0.weight", "<f8", w.shape,
                                                             np.full(w.shape, 1e300).tobytes()),
        "complex weight": lambda p: F.lenet_checkpoint_with(p, "features.0.weight", "<c8", w.shape,
                                                           np.ones(w.shape, np.complex64).tobytes()),
        "string array": lambda p: F.lenet_checkpoint_with(p, "features.0.bias", "<U1", (6,), "abcdef".encode("utf-32-le")),
        "object array (pickle)": lambda p: F.lenet_checkpoint_with(p, "features.0.bias", "|O", (6,), b"\x80\x04junk"),
        "declares (10^12,)": lambda p: F.lenet_checkpoint_with(p, "features.0.weight", f4, (10**12,), b"\0" * 600),
        "wrong shape": lambda p: F.lenet_checkpoint_with(p, "features.0.weight", f4, (6, 1, 5, 4), bytes(480)),
        "not JSON header": lambda p: F.write_members(p, {checkpoint.HEADER_KEY: F.npy_header((3,), "|u1") + b"{{{"}),
        "deflate bomb 1 GB": lambda p: F.deflate_bomb(p, 1 << 30),
        "bomb in an unexpected key": lambda p: F.deflate_bomb(p, 1 << 30, key="zzz"),
        "a directory": None,
    }
    for name, make in bad.items():
        path = tmp / ("ckdir" if make is None else f"bad_{abs(hash(name))}.npz")
        if make is None:
            path.mkdir(exist_ok=True)
        else:
            if quick and "bomb" in name:
                continue
            make(path)
        cli("checkpoint", f"maps --checkpoint ({name})", ["maps", "lenet5", "--checkpoint", str(path), "-o",
            str(out / "maps")], "refused", max_rss_mb=400, max_seconds=60,
            check=lambda r, n=name: None if ("random" not in n or "pickle" not in r["err"]) else
            "wrong: random bytes called pickled data")
        if make is not None:
            def direct(p=path) -> str | None:
                checkpoint.load(models.lenet5(), p)
                return "wrong: loaded"
            api("checkpoint", f"checkpoint.load ({name})", direct, (ValueError, FileNotFoundError))

    def load_state_dict_bad() -> str | None:
        m = tg.nn.Linear(2, 1)
        for a in (np.array([[None, 1]], dtype=object), np.array([[1e300, 1]]), np.array([[1 + 2j, 1]]),
                  np.array([["a", "b"]]), np.array([[np.nan, 1]])):
            try:
                m.load_state_dict({"weight": a, "bias": np.zeros(1)})
            except ValueError as e:
                if "'weight'" not in str(e):
                    return f"wrong: no key named: {e}"
                continue
            return f"wrong: loaded {a!r} as {m.weight.data}"
        return None
    api("checkpoint", "load_state_dict of object/1e300/complex/str/NaN arrays", load_state_dict_bad)

    def memory_bound() -> str | None:
        import tracemalloc
        bomb = F.deflate_bomb(tmp / "bomb256.npz", 256 << 20, key="zzz")
        tracemalloc.start()
        try:
            checkpoint.load(None, bomb, max_bytes=64 << 20)
        except ValueError:
            pass
        else:
            return "wrong: a 256 MB entry loaded past max_bytes=64 MB"
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return f"memory: peak {peak / 2**20:.0f} MB refusing a bomb" if peak > 16 << 20 else None
    if not quick:
        api("checkpoint", "bomb refused with peak memory < 16 MB", memory_bound)


def data_cases(tmp: Path, quick: bool) -> None:
    def train(name: str, d: Path, expect: str = "refused", max_rss_mb: float = 700) -> None:
        cli("data", name, ["train", "lenet5", "--data", str(d), "--epochs", "1", "--quiet"], expect,
            max_rss_mb=max_rss_mb, max_seconds=90, timeout=150)

    empty = F.mnist_dir(tmp / "empty", n_train=0, n_test=0)
    train("zero training images", empty)
    d = F.mnist_dir(tmp / "badlabels", labels=np.full(64, 200, np.uint8))
    train("labels out of range", d)
    d = F.mnist_dir(tmp / "trunc")
    p = d / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    train("truncated images", d)
    d = F.mnist_dir(tmp / "garbage")
    (d / "train-images-idx3-ubyte").write_bytes(os.urandom(5000))
    train("random bytes as images", d)
    d = F.mnist_dir(tmp / "forged")
    F.gzip_bomb_idx(d / "train-images-idx3-ubyte", (4_000_000_000, 28, 28), real_bytes=1000)
    (d / "train-images-idx3-ubyte").rename(d / "train-images-idx3-ubyte.gz")
    train("gzip IDX declaring 3 TB", d, max_rss_mb=400)
    if not quick:
        d = F.mnist_dir(tmp / "bomb")
        (d / "train-images-idx3-ubyte").unlink()
        F.gzip_bomb_idx(d / "train-images-idx3-ubyte.gz", (1_400_000, 28, 28))    # 1.1 GB of zeros, 1 MB file
        train("gzip bomb of 1.1 GB", d, max_rss_mb=400)
    cli("data", "--data not a directory", ["train", "lenet5", "--data", str(tmp / "nope"), "--quiet"])


def train_cases(tmp: Path, quick: bool) -> None:
    base = ["train", "lenet5", "--epochs", "1", "--limit", "64", "--quiet"]
    for name, extra in [("--save into a missing directory", ["--save", "/nonexistent/dir/m.npz"]),
                        ("--save is a directory", ["--save", str(tmp)]),
                        ("--plot with an unknown suffix", ["--plot", str(tmp / "curves.xyz")]),
                        ("--plot into a missing directory", ["--plot", "/nonexistent/c.png"]),
                        ("--lr inf", ["--lr", "inf"]), ("--lr nan", ["--lr", "nan"]), ("--lr -1", ["--lr", "-1"]),
                        ("--lr 0", ["--lr", "0"]), ("--epochs 0", ["--epochs", "0"]),
                        ("--batch-size -3", ["--batch-size", "-3"]), ("--optimizer foo", ["--optimizer", "foo"]),
                        ("--backend foo", ["--backend", "foo"]), ("--limit 0", ["--limit", "0"]),
                        ]:
        cli("train", name, base + extra, "refused", max_seconds=60)
    cli("train", "--lr 1e6 (a huge, honest loss or a refusal)", base + ["--lr", "1e6", "--limit", "512"], "either",
        max_seconds=90)
    if quick:
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        ck = tmp / f"interrupted_{sig.name}.npz"
        problem = interrupt_training(ck, sig)
        record("lost-work", f"{sig.name} during training with --save", problem.split(":")[0] if problem else "ok",
               problem or "")
    problem = kill_during_save(tmp)
    record("lost-work", "kill -9 and SIGTERM during a 300 MB save", problem.split(":")[0] if problem else "ok",
           problem or "")


def interrupt_training(ck: Path, sig: int) -> str | None:
    from tinygrad_cv import checkpoint, models
    p = subprocess.Popen([sys.executable, "-m", "tinygrad_cv", "train", "lenet5", "--epochs", "6", "--limit", "1500",
                          "--save", str(ck)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        first = p.stdout.readline()
        if not first.startswith("epoch 1/6"):
            return f"lost: no epoch line: {first!r}"
        time.sleep(0.3)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        return "hang: did not stop"
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "batch" not in ln]
    if p.returncode != 130 or "Traceback" in err:
        return f"traceback: exit {p.returncode}: {err[-200:]!r}"
    if len(lines) != 1 or "saved epoch" not in lines[0]:
        return f"noisy: {lines!r}"
    if not ck.exists():
        return "lost: no checkpoint written"
    meta = checkpoint.load(models.lenet5(), ck).meta
    return None if meta.get("epochs", 0) >= 1 and meta.get("interrupted") else f"lost: meta {meta}"


def kill_during_save(tmp: Path) -> str | None:
    """A 300 MB save killed by SIGTERM (temp removed at once) and by kill -9 (temp swept by the next save)."""
    from tinygrad_cv import checkpoint
    target = tmp / "big.npz"
    checkpoint.save({"w": np.ones(4)}, target)
    old = target.read_bytes()
    code = ("import numpy as np, sys; from tinygrad_cv import checkpoint; "
            f"print('go', flush=True); checkpoint.save({{'w': np.ones(75_000_000, np.float32)}}, {str(target)!r})")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.readline()
        deadline = time.time() + 20
        while not F.leftover_temps(tmp) and time.time() < deadline:
            time.sleep(0.005)
        p.send_signal(sig)
        p.wait(30)
        if target.read_bytes() != old:
            return f"lost: the old checkpoint changed after {sig.name}"
        left = F.leftover_temps(tmp)
        if sig == signal.SIGTERM and left:
            return f"lost: SIGTERM left temp files {left}"
    if not F.leftover_temps(tmp):
        return "wrong: kill -9 left no temp file to sweep (it struck too early to test the sweep)"
    checkpoint.save({"w": np.ones(4)}, target)
    left = F.leftover_temps(tmp)
    return f"lost: the next save did not sweep {left}" if left else None


def misc_cases(tmp: Path, out: Path) -> None:
    cli("env", "TGCV_BACKEND=cuda without a GPU", ["maps", "lenet5", "-o", str(out / "m")],
        env={"TGCV_BACKEND": "cuda"} if not _has_gpu() else {"TGCV_BACKEND": "foo"})
    cli("env", "TGCV_BACKEND=foo", ["maps", "lenet5", "-o", str(out / "m")], env={"TGCV_BACKEND": "foo"})
    cli("stdin", "step with stdin closed", ["step", "--expr", "x*2", "--set", "x=1"], "ok", stdin="closed")
    cli("stdin", "step with stdin /dev/null", ["step", "--expr", "x*2", "--set", "x=1"], "ok")
    cli("summary", "vgg16 --input 3x100000x100000", ["summary", "vgg16", "--input", "3x100000x100000"], max_rss_mb=1500)
    cli("summary", "vgg16 --input 0x1x1", ["summary", "vgg16", "--input", "0x1x1"])
    cli("summary", "vgg16 --input abc", ["summary", "vgg16", "--input", "abc"])
    cli("summary", "lenet5 --input 1x2x2", ["summary", "lenet5", "--input", "1x2x2"])
    cli("flow", "flow --lr inf", ["flow", "mlp", "--lr", "inf", "--depth", "2"])
    cli("flow", "flow --lr nan", ["flow", "mlp", "--lr", "nan", "--depth", "2"])
    cli("maps", "maps --digit 11", ["maps", "lenet5", "--digit", "11", "-o", str(out / "m")])
    cli("cli", "unknown command", ["frobnicate"])
    cli("cli", "unknown option", ["render", "--bogus"])
    cli("cli", "control characters in a model name", ["train", "\x1b[31mred"],
        check=lambda r: "noisy: raw escape echoed" if "\x1b" in r["err"] else None)


def _has_gpu() -> bool:
    return Path("/dev/nvidia0").exists()


def numeric_cases() -> None:
    import tinygrad_cv as tg
    from tinygrad_cv.scalar import Value

    def same(a: float, b: float) -> bool:
        return (math.isnan(a) and math.isnan(b)) or a == b

    for a, k in [(-1.0, 0.5), (0.0, 0.5), (0.0, 0.0), (0.0, -1.0), (-0.0, -1.0), (10.0, 400.0), (-8.0, 1 / 3),
                 (2.0, 0.0), (0.0, 2.0), (-2.0, 3.0), (0.0, -0.5)]:
        def case(a=a, k=k) -> str | None:
            import torch
            v = Value(a)
            f = v ** k
            f.backward()
            t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
            g = t ** k
            g.backward()
            if isinstance(f.data, complex) or not (same(f.data, g.item()) and same(v.grad, t.grad.item())):
                return f"wrong: Value({a})**{k}: {f.data}, grad {v.grad}; torch {g.item()}, {t.grad.item()}"
            x = tg.Tensor(np.array([a]), requires_grad=True, dtype=np.float64)
            y = (x ** k).sum()
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y.backward()
            if not (same(float(y.data), g.item()) and same(float(x.grad[0]), t.grad.item())):
                return f"wrong: Tensor([{a}])**{k}: {y.data}, grad {x.grad}; torch {g.item()}, {t.grad.item()}"
            return None
        api("numeric", f"pow({a}, {k:g}) vs torch", case)

    def gc_nan() -> str | None:
        import io
        import contextlib
        with contextlib.redirect_stderr(io.StringIO()) as buf:
            ok1 = tg.gradcheck(lambda t: (t * t) ** 0.5, Value(0.0, label="t"))
            ok2 = tg.gradcheck(lambda x: (x * x) ** 0.5, tg.Tensor(np.array([0.0, 1.0]), requires_grad=True, label="x"))
        if ok1 or ok2:
            return "wrong: gradcheck passed a NaN gradient"
        return None if "x[0]" in buf.getvalue() else f"wrong: element not named: {buf.getvalue()!r}"
    api("numeric", "gradcheck fails on NaN analytic gradients", gc_nan)

    def gc_inf_numeric() -> str | None:
        import io
        import contextlib
        with contextlib.redirect_stderr(io.StringIO()):
            ok = tg.gradcheck(lambda t: (t * 1e308) * 1e308 - (t * 1e308) * 1e308, Value(1.0))
        return "wrong: gradcheck passed an inf numeric gradient" if ok else None
    api("numeric", "gradcheck fails on non-finite numeric values", gc_inf_numeric)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip training, bombs and signals")
    ap.add_argument("--only", default="", help="comma-separated groups: expr,draw,checkpoint,data,train,misc,numeric")
    opts = ap.parse_args()
    groups = set(filter(None, opts.only.split(","))) or {"expr", "draw", "checkpoint", "data", "train", "misc", "numeric"}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tgcv-probe-") as t:
        tmp, out = Path(t), Path(t) / "out"
        out.mkdir()
        if "numeric" in groups:
            numeric_cases()
        if "expr" in groups:
            expression_cases(out, opts.quick)
        if "draw" in groups:
            drawing_cases(out, opts.quick)
        if "checkpoint" in groups:
            checkpoint_cases(tmp, out, opts.quick)
        if "data" in groups:
            data_cases(tmp, opts.quick)
        if "train" in groups:
            train_cases(tmp, opts.quick)
        if "misc" in groups:
            misc_cases(tmp, out)
    counts = {k: sum(r[2] == k for r in results) for k in ("ok", "refused", *FAILURES)}
    left = _dot_processes()
    print(f"{len(results)} cases in {time.perf_counter() - start:.0f} s: " +
          ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; dot processes left: {len(left)}")
    return 1 if any(counts[k] for k in FAILURES) or left else 0


if __name__ == "__main__":
    sys.exit(main())
