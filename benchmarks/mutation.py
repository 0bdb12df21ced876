"""Mutation testing: does the suite catch realistic one-line bugs? (issue 19; not part of CI)

    python benchmarks/mutation.py                # every mutation (about 50; ~5-10 minutes on 2 busy cores)
    python benchmarks/mutation.py --quick        # the first 40, shorter time limit
    python benchmarks/mutation.py --only sgd-momentum scalar-mul-swap
    python benchmarks/mutation.py --list         # the mutations, without running anything

Each mutation replaces one exact snippet (it must occur exactly once in its file) in a
scratch copy of the checkout (the working tree is never touched), then runs the fast test
files that cover that code with ``pytest -x`` under a time limit. A failing or timed-out
run means the mutation was *caught*; a passing run means it *survived*. The kinds are
the usual realistic slips: a flipped comparison, an off-by-one, swapped operands, a
dropped term, a wrong constant, a wrong exit status.

The last lines give the score and name each survivor; the exit status is 1 when any
mutation survived or a snippet no longer matches its file (``stale``: update the list).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("tinygrad_cv", "viz", "tests", "lessons", "pyproject.toml", "README.md", "docs", "benchmarks")


@dataclass(frozen=True)
class Mutation:
    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]      # test files (and pytest options) that cover the mutated code
    kind: str


TIES = "tests/test_autograd_function.py::test_ties_in_max_split_the_gradient_as_torch_does"
T_SCALAR = ("tests/test_scalar.py", TIES)
T_TENSOR = ("tests/test_tensor.py", "tests/test_edge_cases.py", TIES)
T_KERNELS = ("tests/test_conv_autograd.py", "tests/test_nn_functional.py", "-k", "not numba and not cuda")
T_NN = ("tests/test_nn_functional.py", "tests/test_nn_module.py")
T_OPTIM = ("tests/test_optim.py",)
T_SCHED = ("tests/test_optim_lr_scheduler.py",)
T_EXPR = ("tests/test_expr.py",)
T_STEP = ("tests/test_step.py",)
T_CLI = ("tests/test_cli.py", "tests/test_faults_cli.py")

S, TO, REF = "tinygrad_cv/scalar.py", "tinygrad_cv/tensor_ops.py", "tinygrad_cv/backends/reference.py"
LOSS, ACT = "tinygrad_cv/nn/functional/loss.py", "tinygrad_cv/nn/functional/activation.py"

M = Mutation
MUTATIONS: list[Mutation] = [
    # -- the scalar engine -------------------------------------------------------------------
    M("scalar-mul-swap", S, "def local(self, a, b, out): return b, a", "def local(self, a, b, out): return a, b",
      T_SCALAR, "swapped operands"),
    M("scalar-sub-sign", S, "return 1.0, -1.0", "return 1.0, 1.0", T_SCALAR, "dropped sign"),
    M("scalar-div-b", S, "return 1.0 / b, -a / (b * b)", "return 1.0 / b, -a / b", T_SCALAR, "dropped factor"),
    M("scalar-max-tie", S, "else (0.5, 0.5)", "else (1.0, 0.0)", T_SCALAR, "wrong constant (tie rule)"),
    M("scalar-max-cmp", S, "return (1.0, 0.0) if a > b else (0.0, 1.0)", "return (1.0, 0.0) if a < b else (0.0, 1.0)",
      T_SCALAR, "flipped comparison"),
    M("scalar-tanh", S, "return (1.0 - out * out,)", "return (1.0 - out,)", T_SCALAR, "dropped factor"),
    M("scalar-sigmoid", S, "return (out * (1.0 - out),)", "return (out,)", T_SCALAR, "dropped term"),
    M("scalar-relu-at0", S, "def local(self, a, out): return (1.0 if a > 0 else 0.0,)",
      "def local(self, a, out): return (1.0 if a >= 0 else 0.0,)", T_SCALAR, "flipped comparison (boundary)"),
    M("scalar-pow", S, "self.k * self.power(a, self.k - 1)", "self.k * self.power(a, self.k)", T_SCALAR, "off by one"),
    M("scalar-elu", S, "return (1.0 if a > 0 else out + self.alpha,)", "return (1.0 if a > 0 else out,)",
      T_SCALAR, "dropped term"),
    M("scalar-reflected", S, "return _record(op.forward(other.data, self.data), op, other, self)",
      "return _record(op.forward(self.data, other.data), op, self, other)", T_SCALAR, "swapped operands (2 - x)"),
    M("chain-accumulate", "tinygrad_cv/graph.py", "grads[key] = accumulated = parent._add_grad(previous, downstream)",
      "grads[key] = accumulated = downstream", T_SCALAR + T_STEP, "dropped term (a node used twice)"),
    # -- the tensor engine -------------------------------------------------------------------
    M("tensor-sub-sign", TO, "def backward(self, ctx, up): return up, -up", "def backward(self, ctx, up): return up, up",
      T_TENSOR, "dropped sign"),
    M("tensor-mul-swap", TO, "return up * b, up * a", "return up * a, up * b", T_TENSOR, "swapped operands"),
    M("tensor-div", TO, "return up / b, -up * a / (b * b)", "return up / b, up * a / (b * b)", T_TENSOR, "dropped sign"),
    M("tensor-maximum-tie", TO, "ctx.route = (a > b) + 0.5 * (a == b)", "ctx.route = (a >= b) + 0.0 * (a == b)",
      T_TENSOR, "wrong constant (tie rule)"),
    M("tensor-matmul-dB", TO, "db = np.swapaxes(a2, -1, -2) @ up2", "db = a2 @ up2 if a2.shape[-1] == up2.shape[-2] "
      "else np.swapaxes(a2, -1, -2) @ up2", T_TENSOR, "missing transpose (square case)"),
    M("tensor-mean-n", TO, "ctx.shape, ctx.n = a.shape, a.size // max(np.size(out), 1)",
      "ctx.shape, ctx.n = a.shape, a.size", T_TENSOR, "wrong count"),
    M("tensor-max-share", TO, "count = route.sum(axis=self.axis, keepdims=True)", "count = 1",
      T_TENSOR, "dropped term (ties)"),
    M("tensor-relu", TO, "return (up * (ctx.saved_tensors[0] > 0),)", "return (up * (ctx.saved_tensors[0] >= 0),)",
      T_TENSOR, "flipped comparison (boundary)"),
    M("tensor-sqrt", TO, "return (up * 0.5 / ctx.saved_tensors[0],)", "return (up / ctx.saved_tensors[0],)",
      T_TENSOR, "wrong constant"),
    M("tensor-unbroadcast", TO, "grad = grad.sum(axis=tuple(a - extra for a in stretched), keepdims=True)",
      "grad = grad.mean(axis=tuple(a - extra for a in stretched), keepdims=True)", T_TENSOR, "sum -> mean"),
    # -- kernels (the reference backend) -----------------------------------------------------
    M("ref-conv-bias", REF, "y = y + bias.reshape(1, O, 1, 1)", "y = y - bias.reshape(1, O, 1, 1)", T_KERNELS,
      "flipped sign"),
    M("ref-conv-db", REF, "db = grad_out.sum(axis=(0, 2, 3))", "db = grad_out.sum(axis=(2, 3)).sum(0) / len(grad_out)",
      T_KERNELS, "wrong reduction"),
    M("ref-maxpool-argmax", REF, "w = np.arange(OW)[None, :] * stride[1] + k % kw - padding[1]",
      "w = np.arange(OW)[None, :] * stride[1] + k // kw - padding[1]", T_KERNELS, "wrong index"),
    M("ref-avgpool-back", REF, "(grad_out / (kh * kw))", "(grad_out / (kh + kw))", T_KERNELS, "wrong constant"),
    M("ref-unpad", REF, "return dxp[:, :, ph : dxp.shape[2] - ph, pw : dxp.shape[3] - pw]",
      "return dxp[:, :, ph : dxp.shape[2] - ph, ph : dxp.shape[3] - ph]", T_KERNELS, "swapped names (h/w)"),
    # -- nn ------------------------------------------------------------------------------------
    M("ce-onehot", LOSS, "g[np.arange(probs.shape[0]), self.target] -= 1", "g[np.arange(probs.shape[0]), self.target] -= 0.5",
      T_NN, "wrong constant"),
    M("ce-mean", LOSS, "return up / up.dtype.type(n) if reduction == \"mean\" else up", "return up",
      T_NN, "dropped term (1/N)"),
    M("svm-margin", LOSS, "m = np.maximum(0, s - s[rows, self.target][:, None] + s.dtype.type(self.margin))",
      "m = np.maximum(0, s - s[rows, self.target][:, None])", T_NN, "dropped term (margin)"),
    M("nll-sign", LOSS, "g[np.arange(ctx.shape[0]), self.target] = -s", "g[np.arange(ctx.shape[0]), self.target] = s",
      T_NN, "flipped sign"),
    M("dropout-scale", "tinygrad_cv/nn/functional/dropout.py", "dtype.type(1.0 / (1.0 - p))", "dtype.type(1.0)",
      T_NN, "dropped factor"),
    M("dropout-cmp", "tinygrad_cv/nn/functional/dropout.py", ">= np.float32(p)", "< np.float32(p)", T_NN,
      "flipped comparison"),
    M("bn-unbiased", "tinygrad_cv/nn/functional/normalization.py", "(var * (m / (m - 1)))", "(var * (m / m))",
      T_NN, "dropped correction"),
    M("bn-momentum", "tinygrad_cv/nn/functional/normalization.py", "rm *= 1 - mo", "rm *= mo", T_NN, "wrong constant"),
    M("init-kaiming", "tinygrad_cv/nn/init.py", "bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)",
      "bound = math.sqrt(2.0 / (1 + a)) * math.sqrt(3.0 / fan_in)", ("tests/test_nn_module.py",), "dropped square"),
    # -- optim ---------------------------------------------------------------------------------
    M("sgd-wd", "tinygrad_cv/optim/sgd.py", "grad = grad + wd * param", "grad = grad - wd * param", T_OPTIM,
      "flipped sign"),
    M("sgd-nesterov", "tinygrad_cv/optim/sgd.py", "grad = grad + mu * buf if group[\"nesterov\"] else buf",
      "grad = buf", T_OPTIM, "dropped branch"),
    M("adam-bias1", "tinygrad_cv/optim/adam.py", "step_size = group[\"lr\"] / (1 - b1 ** t)", "step_size = group[\"lr\"]",
      T_OPTIM, "dropped correction"),
    M("adam-v", "tinygrad_cv/optim/adam.py", "v += (1 - b2) * (grad * grad)", "v += (1 - b2) * grad", T_OPTIM,
      "dropped factor"),
    M("adamw-decoupled", "tinygrad_cv/optim/adam.py", "param *= 1 - group[\"lr\"] * group[\"weight_decay\"]",
      "param *= 1 - group[\"weight_decay\"]", T_OPTIM, "dropped factor (lr)"),
    M("rmsprop-alpha", "tinygrad_cv/optim/rmsprop.py", "sq += (1 - alpha) * (grad * grad)", "sq += alpha * (grad * grad)",
      T_OPTIM, "wrong constant"),
    M("adagrad-decay", "tinygrad_cv/optim/adagrad.py", "(state[\"step\"] - 1) * group[\"lr_decay\"]",
      "state[\"step\"] * group[\"lr_decay\"]", T_OPTIM, "off by one"),
    M("sched-step", "tinygrad_cv/optim/lr_scheduler.py", "return base_lr * self.gamma ** (t // self.step_size)",
      "return base_lr * self.gamma ** ((t + 1) // self.step_size)", T_SCHED, "off by one"),
    M("sched-invtime", "tinygrad_cv/optim/lr_scheduler.py", "return base_lr / (1 + self.k * t)",
      "return base_lr / (self.k * t + self.k)", T_SCHED, "wrong constant"),
    M("zero-grad", "tinygrad_cv/optim/optimizer.py", "if set_to_none or p.grad is None:", "if p.grad is None:",
      T_OPTIM, "dropped condition"),
    # -- expr ----------------------------------------------------------------------------------
    M("expr-attribute", "tinygrad_cv/expr.py", "ast.Attribute: \"attribute access\", ", "", T_EXPR,
      "allow-list hole"),
    M("expr-uadd", "tinygrad_cv/expr.py", "sign = -sign if isinstance(node.op, ast.USub) else sign",
      "sign = -sign", T_EXPR, "wrong branch"),
    M("expr-max-args", "tinygrad_cv/expr.py", "if len(args) != 2:", "if len(args) < 1:", T_EXPR, "off by one"),
    # -- step ----------------------------------------------------------------------------------
    M("step-rule-slot", "tinygrad_cv/step.py", "return self.op.derivative(self.slot)", "return self.op.derivative(0)",
      T_STEP, "wrong index"),
    M("step-state-grad", "tinygrad_cv/step.py", "grads[id(e.parent)] = e.accumulated", "grads[id(e.parent)] = e.downstream",
      T_STEP, "wrong field"),
    # -- cli -----------------------------------------------------------------------------------
    M("cli-ctrl-c", "tinygrad_cv/cli/__init__.py", "    except KeyboardInterrupt:\n        click.echo(\"tgcv: interrupted\", "
      "err=True)\n        sys.exit(130)", "    except KeyboardInterrupt:\n        click.echo(\"tgcv: interrupted\", "
      "err=True)\n        sys.exit(1)", T_CLI, "wrong exit status"),
    M("cli-unexpected", "tinygrad_cv/cli/__init__.py", "(set TGCV_DEBUG=1 to see the traceback)\", 1)",
      "(set TGCV_DEBUG=1 to see the traceback)\")", T_CLI, "wrong exit status"),
    # -- a second batch, written before looking at the tests that cover them ------------------
    M("scalar-log", S, "def local(self, a, out): return (1.0 / a,)", "def local(self, a, out): return (1.0 / (a * a),)",
      T_SCALAR, "wrong formula"),
    M("scalar-exp", S, "def local(self, a, out): return (out,)                      # e^a",
      "def local(self, a, out): return (a,)                      # e^a", T_SCALAR, "wrong variable"),
    M("tensor-log", TO, "def backward(self, ctx, up): return (up / ctx.saved_tensors[0],)",
      "def backward(self, ctx, up): return (up * ctx.saved_tensors[0],)", T_TENSOR, "wrong operator"),
    M("tensor-neg", TO, "def backward(self, ctx, up): return (-up,)", "def backward(self, ctx, up): return (up,)",
      T_TENSOR, "dropped sign"),
    M("softmax-back", ACT, "return (out * (up - (up * out).sum(axis=self.dim, keepdims=True)),)",
      "return (out * (up - (up * out).sum(axis=self.dim, keepdims=True)) * (1 - out),)", T_NN, "extra factor"),
    M("ce-forward", LOSS, "per = np.log(total[:, 0]) - shifted[rows, self.target]",
      "per = np.log(total[:, 0]) + shifted[rows, self.target]", T_NN, "flipped sign"),
    M("linear-dw", "tinygrad_cv/nn/functional/linear.py", "dw = up2.T @ x.reshape(-1, x.shape[-1])",
      "dw = up2.T @ x.reshape(-1, x.shape[-1]) / len(up2)", T_NN, "extra 1/N"),
    M("ref-maxpool-pad", REF, "win = _windows(_pad(x, padding, -np.inf), kernel_size, stride)",
      "win = _windows(_pad(x, padding), kernel_size, stride)", T_KERNELS, "wrong constant (pad value)"),
    M("ref-conv-groups", REF, "for d, ww in zip(dys, np.split(weight, groups, axis=0))",
      "for d, ww in zip(dys[::-1], np.split(weight, groups, axis=0))", T_KERNELS, "swapped groups"),
    M("rmsprop-momentum", "tinygrad_cv/optim/rmsprop.py", "            buf += grad / avg\n",
      "            buf += grad\n", T_OPTIM, "dropped term"),
    M("adam-eps", "tinygrad_cv/optim/adam.py", "denom += group[\"eps\"]", "denom += group[\"eps\"] * 1e3",
      T_OPTIM, "wrong constant"),
    M("sched-cosine", "tinygrad_cv/optim/lr_scheduler.py", "(1 + math.cos(math.pi * t / self.T_max)) / 2",
      "(1 + math.cos(math.pi * (t + 1) / self.T_max)) / 2", T_SCHED, "off by one"),
    M("expr-length", "tinygrad_cv/expr.py", "if len(source) > MAX_LENGTH:", "if len(source) > 2 * MAX_LENGTH:",
      T_EXPR, "wrong constant"),
    M("step-check-real", "tinygrad_cv/step.py", "if isinstance(data, float) and not math.isfinite(data):",
      "if isinstance(data, float) and math.isnan(data):", T_STEP, "weakened condition"),
    M("state-dict-copy", "tinygrad_cv/nn/module.py", "return OrderedDict((k, t.data.copy()) for k, t in self._state_items())",
      "return OrderedDict((k, t.data) for k, t in self._state_items())", ("tests/test_nn_module.py",), "aliasing"),
    M("cli-fail-code", "tinygrad_cv/cli/__init__.py", "def fail(message: str, code: int = 2) -> None:",
      "def fail(message: str, code: int = 1) -> None:", T_CLI, "wrong exit status"),
    # -- a third batch, also written blind ------------------------------------------------------
    M("fn-constants", "tinygrad_cv/autograd.py", "for i, g in enumerate(grads) if i not in self.constants)",
      "for i, g in enumerate(grads) if i in self.constants or True)", ("tests/test_autograd_function.py", "tests/test_edge_cases.py"),
      "dropped filter"),
    M("dropout-back", "tinygrad_cv/nn/functional/dropout.py", "return (up * self.mask.astype(up.dtype, copy=False),)",
      "return (up,)", T_NN, "dropped factor"),
    M("fan-in-conv", "tinygrad_cv/nn/init.py", "return int(t.shape[1] * np.prod(t.shape[2:], dtype=np.int64))",
      "return int(t.shape[1])", ("tests/test_nn_module.py", "tests/test_nn_functional.py"), "dropped term"),
    M("sched-linear", "tinygrad_cv/optim/lr_scheduler.py", "frac = min(t, self.total_iters) / self.total_iters",
      "frac = t / self.total_iters", T_SCHED, "dropped clamp"),
    # (dropping "% len(shape)" in _keep was tried and is equivalent: np.expand_dims normalises
    # negative axes against the result's rank, which is the input's rank here)
    M("adaptive-pool", "tinygrad_cv/nn/layers/pooling.py", "return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))",
      "return x.reshape(n, c, oh, h // oh, ow, w // ow).max(axis=(3, 5))", T_NN + ("tests/test_edge_cases.py",),
      "mean -> max"),
]
QUICK = 40


def _copy_tree(dst: Path) -> None:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns(".pytest_cache", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dst / name)


def run_one(m: Mutation, work: Path, timeout: float) -> tuple[str, float, str]:
    """Apply ``m`` in ``work``, run its tests, restore the file; (status, seconds, last line)."""
    path = work / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        return "stale", 0.0, f"snippet found {original.count(m.old)} times in {m.path}"
    path.write_text(original.replace(m.old, m.new))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    env.pop("CI", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *m.tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        status = "survived" if proc.returncode == 0 else "caught"
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        status, tail = "caught", f"timed out after {timeout:g}s"
    finally:
        path.write_text(original)
    return status, time.perf_counter() - t0, tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"the first {QUICK} mutations, 90 s per run")
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these mutations")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per test run (default 180; --quick 90)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args(argv)
    chosen = MUTATIONS[:QUICK] if args.quick else MUTATIONS
    if args.only:
        unknown = set(args.only) - {m.id for m in MUTATIONS}
        if unknown:
            ap.error(f"unknown mutation id(s): {', '.join(sorted(unknown))}")
        chosen = [m for m in MUTATIONS if m.id in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.id:22s} {m.path:45s} {m.kind}")
        return 0
    timeout = args.timeout or (90.0 if args.quick else 180.0)
    counts = {"caught": 0, "survived": 0, "stale": 0}
    survivors: list[tuple[Mutation, str]] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tgcv-mutation-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        for i, m in enumerate(chosen, 1):
            status, secs, tail = run_one(m, work, timeout)
            counts[status] += 1
            if status != "caught":
                survivors.append((m, status))
            print(f"[{i:2d}/{len(chosen)}] {status:8s} {secs:5.1f}s  {m.id:22s} {m.kind:32s} {tail[:60]}", flush=True)
    judged = counts["caught"] + counts["survived"]
    score = counts["caught"] / judged if judged else 0.0
    print(f"\n{counts['caught']}/{judged} caught ({score:.1%}), {counts['survived']} survived, "
          f"{counts['stale']} stale; {time.perf_counter() - t_start:.0f} s")
    for m, status in survivors:
        print(f"  {status}: {m.id} ({m.path}: {m.kind})")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
