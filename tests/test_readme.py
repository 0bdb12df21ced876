"""The README is the front door: every command it shows runs, and every output it shows is what the command prints.

Rules read from README.md:

* a ```bash block's ``tgcv ...`` lines are commands; each runs (as ``python -m tinygrad_cv``)
  from a fresh folder outside the checkout, with stdin closed, and must exit 0 with no
  traceback;
* a plain ``` block right after a ```bash block is the printed output of that block's last
  command: it is compared line by line with what the command prints on stdout. A line
  ``...`` stands for any number of lines; a time such as ``1.6s`` matches any time;
* a ```python block runs as a script; ``print(...)  # expected`` lines must print that.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
TIME = re.compile(r"\b\d+(?:\.\d+)?s\b")


def blocks() -> list[tuple[str, str, int]]:
    """(language, body, position) of each fenced block, in order."""
    return [(m[1], m[2], m.start()) for m in FENCE.finditer(README.read_text(encoding="utf-8"))]


def commands(body: str) -> list[str]:
    lines = []
    for line in body.splitlines():
        line = line.split("  #", 1)[0].strip()
        lines += [part.strip() for part in line.split("; ") if part.strip().startswith("tgcv ")]
    return lines


def shown_outputs() -> list[tuple[str, str]]:
    """(command, expected output) for each output block that follows a command block."""
    found, text = [], README.read_text(encoding="utf-8")
    bs = list(FENCE.finditer(text))
    for prev, block in zip(bs, bs[1:]):
        if prev[1] == "bash" and block[1] == "" and text[prev.end():block.start()].strip() == "" and commands(prev[2]):
            found.append((commands(prev[2])[-1], block[2]))
    return found


def run_tgcv(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    import shlex

    args = shlex.split(command)[1:]
    env = {k: v for k, v in os.environ.items() if k != "TGCV_BACKEND"}
    env["PYTHONPATH"] = str(README.parent)            # this checkout, run from a folder outside it
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], cwd=cwd, env=env, text=True,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


def matches(expected: str, printed: str) -> bool:
    """``printed`` fits ``expected``, where ``...`` lines match any lines and times match any time."""
    want = [TIME.sub("<t>", line.rstrip()) for line in expected.strip("\n").splitlines()]
    got = [TIME.sub("<t>", line.rstrip()) for line in printed.strip("\n").splitlines()]
    pattern = "\n".join(".*?" if w == "..." else re.escape(w) for w in want)
    pattern = pattern.replace("\n.*?\n", "(?:\n.*?)?\n")
    return re.fullmatch(pattern, "\n".join(got), re.S) is not None


def test_the_readme_shows_outputs_and_commands():
    assert shown_outputs(), "the README shows no command output to check"
    assert any(c.startswith("tgcv train lenet5") for c, _ in shown_outputs())


@pytest.mark.slow
@pytest.mark.parametrize("command,expected", shown_outputs(), ids=[c for c, _ in shown_outputs()])
def test_sample_output_is_what_the_command_prints(command, expected, tmp_path):
    r = run_tgcv(command, tmp_path)
    assert r.returncode == 0, r.stderr
    assert matches(expected, r.stdout), f"README shows:\n{expected}\n`{command}` prints:\n{r.stdout}"


ALL_COMMANDS = [c for lang, body, _ in blocks() if lang == "bash" for c in commands(body)]
CHECKED = {c for c, _ in shown_outputs()}


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in ALL_COMMANDS if c not in CHECKED])
def test_every_readme_command_runs(command, tmp_path):
    (tmp_path / "frames").mkdir()
    if "--checkpoint lenet.npz" in command:       # the README trains and saves it two lines earlier
        r = run_tgcv("tgcv train lenet5 --epochs 1 --save lenet.npz", tmp_path)
        assert r.returncode == 0, r.stderr
    r = run_tgcv(command, tmp_path)
    assert r.returncode == 0, f"`{command}` exited {r.returncode}:\n{r.stderr[-2000:]}"
    assert "Traceback" not in r.stderr + r.stdout


def test_python_examples_print_what_their_comments_say(tmp_path):
    for lang, body, _ in blocks():
        if lang != "python":
            continue
        expected = [m[1].strip() for m in re.finditer(r"^print\(.*\)\s+#\s*(.+)$", body, re.M)]
        script = tmp_path / "example.py"
        script.write_text(body, encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(README.parent))
        r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, text=True,
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        if expected:
            assert r.stdout.splitlines()[-len(expected):] == expected


def test_matching_rules():
    assert matches("a 1.1s\n...\nz", "a 2.5s\nb\nc\nz")
    assert matches("a\n...\nz", "a\nz")
    assert not matches("a 98.9%\nz", "a 99.1%\nz")
    assert not matches("a\nz", "a\nb\nz")
