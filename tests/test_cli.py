import subprocess
import sys


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
