"""Every lesson runs in quick mode and passes its own checks; `tgcv lesson` lists, runs and refuses."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinygrad_cv.cli import cli
from tinygrad_cv.cli.lesson import discover, resolve, title

ROOT = Path(__file__).resolve().parents[1]
LESSONS = discover()


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def test_lessons_are_found_in_order():
    keys = list(LESSONS)
    assert len(keys) >= 13
    assert keys[0].startswith("01_")
    numbers = [int(k.split("_", 1)[0]) for k in keys]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert all(title(p) for p in LESSONS.values())


@pytest.mark.parametrize("key", list(LESSONS))
def test_lesson_runs_quick(key: str, tmp_path: Path):
    proc = subprocess.run([sys.executable, str(LESSONS[key]), "--quick", "--out", str(tmp_path)],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{key} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "✓" in proc.stdout and "All checks passed." in proc.stdout
    assert "✗" not in proc.stdout + proc.stderr


def test_cli_list():
    result = CliRunner().invoke(cli, ["lesson", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(discover())  # fresh: lessons may be added meanwhile
    assert "k-nearest" in lines[0]


@pytest.mark.parametrize("name", ["01_knn", "01", "knn"])
def test_resolve_accepts_id_prefix_and_bare_name(name: str):
    assert resolve(name, list(LESSONS)) == "01_knn"


def test_cli_run_by_prefix(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "tinygrad_cv", "lesson", "run", "06", "--quick",
                             "--out", str(tmp_path)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "df/dx = -4" in result.stdout
    assert "All checks passed." in result.stdout


def test_cli_unknown_lesson_is_one_line_and_fails():
    result = subprocess.run([sys.executable, "-m", "tinygrad_cv", "lesson", "run", "no_such_lesson"],
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no_such_lesson" in result.stderr


def test_cli_failed_check_is_one_line_and_fails(monkeypatch: pytest.MonkeyPatch):
    import importlib

    module = importlib.import_module("lessons.06_backprop")

    def broken(argv=None):
        from lessons._lesson import check
        check("df/dx", -4.0, 4.0, tol=1e-9)

    monkeypatch.setattr(module, "main", broken)
    result = CliRunner().invoke(cli, ["lesson", "run", "06_backprop"])
    assert result.exit_code == 1
    stderr = result.stderr if hasattr(result, "stderr") else result.output
    assert "check failed: df/dx = -4" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_check_helper_messages():
    from lessons._lesson import CheckFailed, check

    assert check("x", 1.001, 1.0, tol=0.01) == 1.001
    check("in range", 0.5, at_least=0.1, at_most=0.9)
    check("exact", [1, 2], [1, 2])
    with pytest.raises(CheckFailed, match=r"loss = 3 .*expected 2\.303"):
        check("loss", 3.0, 2.303, tol=0.05)
    with pytest.raises(CheckFailed):
        check("nan is never fine", float("nan"), at_most=1.0)
