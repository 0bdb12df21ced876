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
