import os
import subprocess
import sys
from pathlib import Path


def tgcv(*args):
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], capture_output=True, text=True)


def test_help_lists_commands():
    out = tgcv("--help")
    assert out.returncode == 0
    for name in ("step", "render", "train", "lesson"):
        assert name in out.stdout


def test_unknown_command_is_one_line_and_non_zero():
    out = tgcv("frobnicate")
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "frobnicate" in out.stderr
    assert "Traceback" not in out.stderr


def test_version():
    out = tgcv("--version")
    assert out.returncode == 0 and "0.1.0" in out.stdout


def test_a_foreign_lessons_package_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "lessons"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{Path(__file__).resolve().parents[1]}")
    r = subprocess.run([sys.executable, "-m", "tinygrad_cv", "lesson", "list"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("tgcv: error: the 'lessons' package at") and "not tinygrad_cv's" in r.stderr


def test_exit_statuses_usage_2_interrupt_130_unexpected_1(monkeypatch, capsys):
    import pytest

    from tinygrad_cv import cli as cli_module

    def status(argv):
        with pytest.raises(SystemExit) as info:
            cli_module.main(argv)
        return info.value.code, capsys.readouterr().err

    code, err = status(["frobnicate"])                                   # click's usage error
    assert code == 2 and err.count("\n") == 1
    code, err = status(["step", "x +", "--set", "x=1"])                   # a bad expression: bad input
    assert code == 2 and err.startswith("tgcv: error:")

    def raising(exc):
        def run(*args, **kwargs):
            raise exc
        return run

    for exc, expected, words in ((KeyboardInterrupt(), 130, "tgcv: interrupted"),
                                 (RuntimeError("disk on fire"), 1, "tgcv: error: disk on fire"),
                                 (ValueError("a bad value"), 2, "tgcv: error: a bad value"),
                                 (LookupError("deep bug"), 1, "LookupError: deep bug (set TGCV_DEBUG=1")):
        monkeypatch.setattr(cli_module.cli, "main", raising(exc))
        monkeypatch.delenv("TGCV_DEBUG", raising=False)
        code, err = status(["version"])
        assert code == expected, (exc, err)
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
