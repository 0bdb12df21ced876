"""Issue 15, the command line: one line and the documented exit code for every bad input, never a
traceback or a warning; a bounded hypothesis fuzz of the expression parser and of the CLI."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faults_util as F
from tinygrad_cv.cli import clean, main
from tinygrad_cv.expr import ExprError, parse


def run_main(argv, capsys):
    """main() in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    code = e.value.code if isinstance(e.value.code, int) else (0 if e.value.code is None else 1)
    return code, out.out, out.err


def one_line_error(err):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("tgcv: error: ")


def test_render_of_sqrt_at_zero_draws_the_inf_gradient(tmp_path, capsys):
    code, out, err = run_main(["render", "--expr", "x**0.5", "--set", "x=0", "-o", str(tmp_path / "g.dot")], capsys)
    assert code == 0 and "grad inf" in (tmp_path / "g.dot").read_text() and err == ""


def test_closed_stdin_is_end_of_input():
    r = F.run_tgcv(["step", "--expr", "x*2", "--set", "x=1"], stdin="closed", timeout=60)
    assert r["rc"] == 0 and "Traceback" not in r["err"]


def test_backend_from_the_environment_is_checked_in_one_line():
    r = F.run_tgcv(["maps", "lenet5", "-o", "/tmp/never"], env={"TGCV_BACKEND": "foo"}, timeout=60)
    assert r["rc"] == 2 and one_line_error(r["err"]) and "TGCV_BACKEND=foo" in r["err"]
    if not os.path.exists("/dev/nvidia0"):
        r = F.run_tgcv(["maps", "lenet5", "-o", "/tmp/never"], env={"TGCV_BACKEND": "cuda"}, timeout=60)
        assert r["rc"] == 2 and one_line_error(r["err"]) and "GPU" in r["err"]


def test_an_input_too_large_for_a_summary_is_one_line(capsys):
    code, _, err = run_main(["summary", "vgg16", "--input", "3x100000x100000"], capsys)
    assert code == 2 and one_line_error(err) and "30,000,000,000 values" in err


def test_memory_error_is_one_line(capsys, monkeypatch):
    import importlib

    summary_module = importlib.import_module("tinygrad_cv.models.summary")   # the module, not the function

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 90.0 GiB for an array")

    monkeypatch.setattr(summary_module, "summary", exhausted)
    code, _, err = run_main(["summary", "vgg16", "--input", "3x1000x1000"], capsys)
    assert code == 2 and one_line_error(err) and "out of memory" in err


def test_control_characters_are_escaped_when_echoed(tmp_path, capsys):
    code, _, err = run_main(["render", "--expr", "x", "--set", "x\x1b[2J=1", "-o", str(tmp_path / "a.dot")], capsys)
    assert code == 2 and "\x1b" not in err and "\\x1b[2J" in err
    code, _, err = run_main(["train", "\x1b[31mnet\x07"], capsys)
    assert code == 2 and "\x1b" not in err and "\x07" not in err
    assert clean("a\nb\tc\x9b") == "a\\nb\\tc\\x9b"


def test_syntax_and_numpy_warnings_never_reach_stderr(tmp_path, capsys):
    code, _, err = run_main(["render", "--expr", "1is 2", "-o", str(tmp_path / "a.dot")], capsys)
    assert code == 2 and "Warning" not in err and one_line_error(err)
    r = F.run_tgcv(["render", "--expr", "x**-1 + 0*x", "--set", "x=0", "-o", str(tmp_path / "b.dot")], timeout=60)
    assert "Warning" not in r["err"] and "Traceback" not in r["err"]


def test_flow_with_an_infinite_lr_is_refused(capsys):
    code, _, err = run_main(["flow", "mlp", "--lr", "inf", "--depth", "1", "--width", "4", "--batch", "8"], capsys)
    assert code == 2 and "finite" in err


@pytest.mark.parametrize("n", [990, 999])
def test_long_flat_chains_are_accepted_by_length_not_depth(n):
    for op in "+-*/":
        e = parse(op.join(["x"] * n), {"x": 1.0})
        e.root.backward()
        assert np.isfinite(e.root.data)
    with pytest.raises(ExprError, match="longer than"):
        parse("+".join(["x"] * 1100), {"x": 1.0})


_ATOMS = ["x", "y", "1", "0", "2.5", "-", "+", "*", "/", "**", "(", ")", "exp(", "log(", "tanh(", "max(", ",",
          ".", "[", "]", "'", "lambda", ":", "1e308", "__import__", "\\", "é", " ", "=", "if", "@", "~", "<"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=30) | st.text(max_size=60))
def test_fuzz_parser_raises_only_expr_error(parts):
    src = "".join(parts) if isinstance(parts, list) else parts
    try:
        e = parse(src, {"x": 0.5, "y": -2.0} if ("x" in src and "y" in src) else
                  {"x": 0.5} if "x" in src else {"y": -2.0} if "y" in src else {})
    except ExprError as err:
        assert "\n" not in str(err).strip() or "\n" in src
        return
    e.root.backward()
    assert isinstance(e.root.data, float)


_WORDS = st.sampled_from(["render", "step", "train", "summary", "flow", "maps", "lesson", "--expr", "--set",
                          "x=1", "x", "--lr", "inf", "nan", "-1", "0", "--epochs", "--input", "3x0x2", "vgg16",
                          "lenet5", "mlp", "--depth", "--digit", "99", "-o", "--no-interactive", "--checkpoint",
                          "/nonexistent", "--bogus", "\x1b[1m", "", "--save", "--plot", "--limit", "--rankdir"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(_WORDS, min_size=1, max_size=7))
def test_fuzz_cli_is_one_line_or_success(tmp_path, capsys, words):
    argv = [w for w in words]
    if "-o" in argv:                                   # keep outputs inside tmp_path
        i = argv.index("-o")
        argv[i + 1:i + 2] = [str(tmp_path / "out.dot")]
    if "train" in argv and "--limit" not in argv:      # never a full training run in a fuzz test
        argv += ["--limit", "1", "--epochs", "1", "--quiet", "--lr", "nan"]
    if any(a in argv for a in ("flow", "maps", "lesson")) and len(argv) > 1:
        argv = argv[:1] + ["--help"]
    code, out, err = run_main(argv, capsys)
    assert "Traceback" not in err and "Warning" not in err
    assert code in (0, 1, 2), (argv, code, err)
    if code != 0:
        assert one_line_error(err) or err.startswith("Usage:") or err.count("\n") <= 3, (argv, err)
        assert "\x1b" not in err
