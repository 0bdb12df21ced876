"""The HTML frame player in a real headless Chromium, driven over the DevTools protocol (no extra packages)."""
import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import viz
from tinygrad_cv.expr import parse
from tinygrad_cv.step import Stepper

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
              pytest.mark.skipif(not viz.has_dot(), reason="Graphviz 'dot' is not installed")]


class Chromium:
    """Headless Chromium over --remote-debugging-pipe: it reads commands on fd 3, answers on fd 4 (NUL-framed JSON)."""

    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="tgcv-chromium-")
        cmd_r, self.cmd_w = os.pipe()
        self.out_r, out_w = os.pipe()

        def wire():                                        # in the child: put the pipe ends on fds 3 and 4
            a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "--no-first-run",
             "--window-size=1200,700", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self.buffer, self.next_id, self.session = b"", 0, None

    def send(self, method: str, params: dict | None = None, timeout: float = 20.0) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            chunk = os.read(self.out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def js(self, expression: str):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def key(self, name: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": name, "code": name,
                                                 "windowsVirtualKeyCode": code})

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.cmd_w)
        os.close(self.out_r)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browser():
    b = Chromium(CHROMIUM)
    yield b
    b.close()


def wait_for(check, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition never became true")


def test_player_shows_frames_and_steps_with_keys(browser, tmp_path):
    s = Stepper(parse("(x + y) * z", {"x": -2, "y": 5, "z": -4}).root)
    index = viz.write_frames(s, tmp_path, title="f = (x + y) * z")
    assert s.position == 0
    browser.open(index.as_uri())
    counter = "document.getElementById('counter').textContent"
    visible = "Array.from(document.querySelectorAll('.frame')).filter(f => !f.hidden).map(f => f.id).join()"
    assert wait_for(lambda: browser.js("document.readyState") == "complete" and browser.js(counter)) == "1 / 8"
    assert browser.js(visible) == "frame-1"
    assert browser.js("document.querySelector('#frame-1 svg').getBoundingClientRect().width") > 200
    assert "start" in browser.js("document.querySelector('#frame-1 .caption').textContent")

    browser.key("ArrowRight", 39)
    assert wait_for(lambda: browser.js(counter) == "2 / 8")
    assert browser.js(visible) == "frame-2"
    assert "q = x + y = -2 + 5 = 3" in browser.js("document.querySelector('#frame-2 .caption').textContent")
    assert browser.js("document.getElementById('slider').value") == "1"
    caption1 = browser.js("document.querySelector('#frame-1 .caption').textContent")
    assert "Enter" in caption1                             # the caption's promise is kept:
    browser.key("Enter", 13)
    assert wait_for(lambda: browser.js(counter) == "3 / 8")
    browser.key("b", 66)
    assert wait_for(lambda: browser.js(counter) == "2 / 8")

    shot = tmp_path / "player.png"
    shot.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"]))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("TGCV_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["TGCV_KEEP_SCREENSHOT"])

    browser.key("End", 35)
    assert wait_for(lambda: browser.js(counter) == "8 / 8")
    assert "y.grad = -4" in browser.js("document.querySelector('#frame-8 .caption').textContent")
    browser.key("ArrowRight", 39)                          # stays on the last frame
    assert browser.js(counter) == "8 / 8"
    browser.key("ArrowLeft", 37)
    assert wait_for(lambda: browser.js(counter) == "7 / 8")
    browser.js("document.getElementById('prev').click()")
    assert browser.js(counter) == "6 / 8"
    browser.js("document.getElementById('play').click()")  # play runs on from here
    assert "pause" in browser.js("document.getElementById('play').textContent")
    browser.js("document.getElementById('play').click()")
    assert "play" in browser.js("document.getElementById('play').textContent")
