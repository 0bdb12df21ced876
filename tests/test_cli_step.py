"""`tgcv step` and `tgcv render`: transcripts, one-line errors, a real terminal (tmux)."""
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from click.testing import CliRunner

import viz
from tinygrad_cv.cli import cli

COURSE = ["--expr", "(x + y) * z", "--set", "x=-2", "--set", "y=5", "--set", "z=-4"]


def tgcv(*args, env=None, timeout=60):
    """Run the real entry point in a fresh process (what a student types)."""
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], capture_output=True, text=True,
                          env=env or {**os.environ, "NO_COLOR": "1"}, timeout=timeout)


def test_transcript_order_and_final_gradients():
    r = CliRunner().invoke(cli, ["step", *COURSE, "--no-interactive"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "f = (x + y) * z" and lines[1] == "inputs  x = -2, y = 5, z = -4"
    steps = [i for i, l in enumerate(lines) if l.startswith(("forward ", "backward "))]
    kinds = [lines[i].split()[0] for i in steps]
    assert kinds == ["forward"] * 2 + ["backward"] * 5      # all forward steps before backward ones
    assert "q = x + y = -2 + 5 = 3" in r.output and "f = q * z = 3 * (-4) = -12" in r.output
    assert "upstream df/df = 1  *  local df/dz = 3  =  downstream 3" in r.output
    assert lines[-4:] == ["gradients", "    x.grad = -4", "    y.grad = -4", "    z.grad = 3"]
    assert "\x1b[" not in r.output                         # a pipe: no colour


def test_interactive_keys_with_piped_input():
    r = CliRunner().invoke(cli, ["step", *COURSE], input="\n\nb\n\nset x=3\nset x=abc\nset w=1\nfoo\nq\n")
    assert r.exit_code == 0, r.output
    out = r.output
    assert out.index("q = x + y = -2 + 5 = 3") < out.index("back to: forward 1/2") < out.index("q = 8, f = -32")
    assert "now at: forward 2/2  f = q * z = 8 * (-4) = -32" in out
    assert "error: the value of x must be a number, got 'abc'" in out
    assert "error: no input labelled 'w'" in out
    assert "unknown command 'foo'" in out


def test_eof_ends_cleanly_and_stepping_past_the_end():
    r = CliRunner().invoke(cli, ["step", *COURSE], input="\n" * 9)
    assert r.exit_code == 0
    assert "z.grad = 3" in r.output and "(at the end" in r.output


HOSTILE = ["__import__('os').system('touch {marker}')", "x.__class__", "open('{marker}', 'w')", "lambda: 1",
           "foo(x)", "x + undefined_name", "(x + ", "x +* y"]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_expressions_exit_2_with_one_line(source, tmp_path):
    marker = tmp_path / "pwned"
    r = tgcv("step", "--expr", source.format(marker=marker), "--set", "x=1", "--no-interactive")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("tgcv: error: ")
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not marker.exists()


@pytest.mark.parametrize("args, words", [
    (["--set", "x=abc"], "must be a number"),
    (["--set", "x"], "needs name=value"),
    (["--set", "x=1", "--set", "w=2"], "not used"),
    ([], "has no value"),
])
def test_bad_assignments_exit_2(args, words):
    r = CliRunner().invoke(cli, ["step", "--expr", "x * 2", *args, "--no-interactive"])
    assert r.exit_code == 2 and words in r.output and len(r.output.strip().splitlines()) == 1


def test_arithmetic_error_is_one_line():
    r = CliRunner().invoke(cli, ["step", "--expr", "log(x)", "--set", "x=-1", "--no-interactive"])
    assert r.exit_code == 2 and "cannot compute" in r.output


def test_color_only_on_a_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert viz.text.use_color(Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not viz.text.use_color(Tty())
    import io
    monkeypatch.delenv("NO_COLOR")
    assert not viz.text.use_color(io.StringIO())


def test_render_dot_and_svg(tmp_path):
    r = CliRunner().invoke(cli, ["render", *COURSE, "-o", str(tmp_path / "g.dot")])
    assert r.exit_code == 0, r.output
    assert "grad -4" in (tmp_path / "g.dot").read_text()
    if viz.has_dot():
        r = CliRunner().invoke(cli, ["render", *COURSE, "-o", str(tmp_path / "g.svg")])
        assert r.exit_code == 0 and (tmp_path / "g.svg").read_text().count("<svg") == 1


def test_render_without_graphviz_is_one_line(tmp_path):
    env = {**os.environ, "NO_COLOR": "1", "PATH": str(tmp_path)}     # nothing on PATH, so no dot
    r = tgcv("render", *COURSE, "-o", str(tmp_path / "g.png"), env=env)
    assert r.returncode == 2 and "apt-get install graphviz" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "g.png").exists()
    r = tgcv("render", *COURSE, "-o", str(tmp_path / "g.dot"), env=env)
    assert r.returncode == 0 and (tmp_path / "g.dot").exists()
    r = tgcv("step", *COURSE, "--no-interactive", "--frames", str(tmp_path / "f"), env=env)
    assert r.returncode == 2 and "Graphviz" in r.stderr


@pytest.mark.skipif(not viz.has_dot(), reason="Graphviz 'dot' is not installed")
def test_frames_written(tmp_path):
    r = CliRunner().invoke(cli, ["step", *COURSE, "--no-interactive", "--frames", str(tmp_path)])
    assert r.exit_code == 0, r.output
    svgs = sorted(p.name for p in tmp_path.glob("frame_*.svg"))
    assert svgs == [f"frame_{i:03d}.svg" for i in range(8)]
    page = (tmp_path / "index.html").read_text()
    assert page.count('class="frame"') == 8 and page.count("<svg") == 8
    assert "http://" not in page.replace("http://www.w3.org", "")   # nothing fetched from the network


# --- a real terminal ------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_line_prompt_in_tmux():
    """--line keeps the line prompt on a terminal (the full-screen view is tested in test_tui.py)."""
    server = ["tmux", "-L", f"tgcv-test-{uuid.uuid4().hex[:8]}"]   # a private server, killed at the end
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.setdefault("TERM", "xterm-256color")
    cmd = (f"{shlex.quote(sys.executable)} -m tinygrad_cv step --expr '(x + y) * z' --set x=-2 --set y=5 "
           f"--set z=-4 --line; echo EXIT=$?; sleep 30")

    def screen(colors=False):
        args = ["capture-pane", "-p", "-J", "-t", "s", "-S", "-200"] + (["-e"] if colors else [])
        return subprocess.run(server + args, capture_output=True, text=True, env=env).stdout

    def wait_for(text, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in screen():
                return
            time.sleep(0.05)
        pytest.fail(f"{text!r} never appeared; screen:\n{screen()}")

    def send(*keys):
        subprocess.run(server + ["send-keys", "-t", "s", *keys], check=True, env=env)

    subprocess.run(server + ["new-session", "-d", "-s", "s", "-x", "150", "-y", "60", cmd], check=True, env=env)
    try:
        wait_for("keys: Enter next")
        send("Enter")
        wait_for("forward 1/2  q = x + y = -2 + 5 = 3")
        send("Enter")
        wait_for("forward 2/2  f = q * z = 3 * (-4) = -12")
        send("Enter")
        wait_for("backward starts")
        assert "\x1b[" in screen(colors=True)             # colour on a terminal
        send("set x=3", "Enter")
        wait_for("replayed with x = 3: q = 8, f = -32")
        send("b", "Enter")
        wait_for("back to: forward 2/2  f = q * z = 8 * (-4) = -32")
        send("q", "Enter")
        wait_for("EXIT=0")
    finally:
        subprocess.run(server + ["kill-server"], capture_output=True, env=env)
