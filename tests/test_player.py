"""The HTML frame player in a real headless Chromium, driven over the DevTools protocol (no extra packages):
the expression player, the module player of a CNN, and several players on one page."""
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
from tinygrad_cv.cli.step import model_run
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


COUNTER = "document.querySelector('.tg-counter').textContent"
VISIBLE = "Array.from(document.querySelectorAll('.frame')).filter(f => !f.hidden).map(f => f.id.split('-').pop()).join()"


def caption(n: int) -> str:
    return f"document.querySelectorAll('.frame')[{n - 1}].querySelector('.caption').textContent"


def click(browser, what: str) -> None:
    browser.js(f"document.querySelector('.tg-{what}').click()")


def test_player_shows_frames_and_steps_with_keys(browser, tmp_path):
    s = Stepper(parse("(x + y) * z", {"x": -2, "y": 5, "z": -4}).root)
    index = viz.write_frames(s, tmp_path, title="f = (x + y) * z")
    assert s.position == 0
    browser.open(index.as_uri())
    counter, visible = COUNTER, VISIBLE
    assert wait_for(lambda: browser.js("document.readyState") == "complete" and browser.js(counter)) == "1 / 8"
    assert browser.js(visible) == "1"
    assert browser.js("document.querySelector('.frame svg').getBoundingClientRect().width") > 200
    assert "start" in browser.js(caption(1))

    browser.key("ArrowRight", 39)
    assert wait_for(lambda: browser.js(counter) == "2 / 8")
    assert browser.js(visible) == "2"
    assert "q = x + y = -2 + 5 = 3" in browser.js(caption(2))
    assert browser.js("document.querySelector('.tg-slider').value") == "1"
    assert "Enter" in browser.js(caption(1))               # the caption's promise is kept:
    browser.key("Enter", 13)
    assert wait_for(lambda: browser.js(counter) == "3 / 8")
    browser.key("b", 66)
    assert wait_for(lambda: browser.js(counter) == "2 / 8")

    shot = tmp_path / "player.png"
    shot.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"]))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    browser.key("End", 35)
    assert wait_for(lambda: browser.js(counter) == "8 / 8")
    assert "y.grad = -4" in browser.js(caption(8))
    browser.key("ArrowRight", 39)                          # stays on the last frame
    assert browser.js(counter) == "8 / 8"
    browser.key("ArrowLeft", 37)
    assert wait_for(lambda: browser.js(counter) == "7 / 8")
    click(browser, "prev")
    assert browser.js(counter) == "6 / 8"
    click(browser, "play")                                 # play runs on from here
    assert "pause" in browser.js("document.querySelector('.tg-play').textContent")
    click(browser, "play")
    assert "play" in browser.js("document.querySelector('.tg-play').textContent")


@pytest.fixture(scope="module")
def lenet_frames(tmp_path_factory):
    """tgcv step lenet5's stepper (untrained weights, held-out digit #0, a 0), written as frames."""
    run = model_run("lenet5", None, None, 0, 32)
    out = tmp_path_factory.mktemp("lenet_frames")
    return run, viz.write_frames(run.stepper, out, title=run.title)


IMAGE_OK = ("(img => img && img.complete && img.naturalWidth > 20 && img.getBoundingClientRect().width > 20)"
            "(document.querySelectorAll('.frame')[{n}].querySelector('figure[data-kind={kind}] img'))")
CURRENT_NODE = "(g => g ? g.querySelector('title').textContent + ' ' + g.getAttribute('class') : '')" \
               "(document.querySelector('.tg-graph g.node.tg-on'))"


def test_module_player_steps_with_keys_and_buttons_and_shows_maps(browser, lenet_frames, tmp_path):
    run, index = lenet_frames
    n = len(run.stepper.events) + 1                        # 13 forward, the seed, 13 backward, and the start
    assert n == 28
    browser.open(index.as_uri())
    assert wait_for(lambda: browser.js("document.readyState") == "complete" and browser.js(COUNTER)) == f"1 / {n}"
    assert browser.js("document.querySelectorAll('.tgcv-player').length") == 1
    assert browser.js("document.querySelector('.tg-input img').naturalWidth") >= 28
    assert browser.js(CURRENT_NODE) == ""                  # the start: no module yet
    browser.key("ArrowRight", 39)                          # forward 1: features.0, the first conv
    assert wait_for(lambda: browser.js(COUNTER) == f"2 / {n}")
    assert browser.js(VISIBLE) == "2"
    assert "forward 1/13  features.0 (Conv2d)" in browser.js(caption(2))
    assert browser.js(IMAGE_OK.format(n=1, kind="maps")) is True
    assert "all 6 channels, 28x28" in browser.js("document.querySelectorAll('.frame')[1].textContent")
    assert browser.js(CURRENT_NODE).startswith("m1 node tg-on tg-forward")
    browser.key("Enter", 13)
    assert wait_for(lambda: browser.js(COUNTER) == f"3 / {n}")
    assert browser.js(CURRENT_NODE).startswith("m2 ")     # the ReLU's box now
    click(browser, "next")
    assert browser.js(COUNTER) == f"4 / {n}"
    click(browser, "prev")
    click(browser, "prev")
    assert browser.js(COUNTER) == f"2 / {n}"
    browser.key("b", 66)
    assert wait_for(lambda: browser.js(COUNTER) == f"1 / {n}")

    browser.js("(s => { s.value = 13; s.dispatchEvent(new Event('input')); })(document.querySelector('.tg-slider'))")
    assert browser.js(COUNTER) == f"14 / {n}"             # the loss: softmax bars, the target marked
    assert "loss [cross_entropy]" in browser.js(caption(14))
    bars = browser.js("Array.from(document.querySelectorAll('.frame')[13].querySelectorAll('.tg-bar'))"
                      ".map(b => b.dataset.class + (b.classList.contains('tg-target') ? '*' : '')).join()")
    assert bars.split(",") == ["0*"] + [str(k) for k in range(1, 10)]   # digit #0 is a 0

    browser.key("ArrowRight", 39)
    browser.key("ArrowRight", 39)                          # the seed, then backward 1 (the loss)
    assert wait_for(lambda: browser.js(COUNTER) == f"16 / {n}")
    assert "backward 1/13  loss" in browser.js(caption(16))
    assert browser.js(CURRENT_NODE).startswith("m13 node tg-on tg-backward")
    browser.key("End", 35)                                 # backward 13: features.0, gradient at the digit
    assert wait_for(lambda: browser.js(COUNTER) == f"{n} / {n}")
    assert "backward 13/13  features.0 (Conv2d)" in browser.js(caption(n))
    assert browser.js(IMAGE_OK.format(n=n - 1, kind="grad")) is True
    assert browser.js(CURRENT_NODE).startswith("m1 node tg-on tg-backward")
    browser.key("Home", 36)
    assert wait_for(lambda: browser.js(COUNTER) == f"1 / {n}")

    browser.key("End", 35)
    wait_for(lambda: browser.js(COUNTER) == f"{n} / {n}")
    browser.key("ArrowLeft", 37)
    assert wait_for(lambda: browser.js(COUNTER) == f"{n - 1} / {n}")
    shot = tmp_path / "module_player.png"
    shot.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"]))
    assert shot.stat().st_size > 20_000
    if os.environ.get("TGCV_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["TGCV_KEEP_SCREENSHOT"])


def test_two_players_on_one_page_do_not_clash(browser, lenet_frames, tmp_path):
    run, _ = lenet_frames
    expr = viz.player(Stepper(parse("(x + y) * z", {"x": -2, "y": 5, "z": -4}).root))
    module = viz.player(run.stepper)
    page = tmp_path / "notebook.html"                      # like a notebook: two outputs on one page
    page.write_text("<!doctype html><html><body><p>cell 1</p>" + module._repr_html_() + "<p>cell 2</p>"
                    + expr._repr_html_() + "</body></html>", encoding="utf-8")
    browser.open(page.as_uri())
    counters = "Array.from(document.querySelectorAll('.tg-counter')).map(c => c.textContent).join('|')"
    assert wait_for(lambda: browser.js("document.readyState") == "complete" and browser.js(counters)) == \
        "1 / 28|1 / 8"
    assert browser.js("new Set(Array.from(document.querySelectorAll('[id]')).map(e => e.id)).size"
                      " === document.querySelectorAll('[id]').length") is True
    browser.key("ArrowRight", 39)                          # nobody has the focus: no player moves
    time.sleep(0.2)
    assert browser.js(counters) == "1 / 28|1 / 8"
    browser.js("document.querySelectorAll('.tgcv-player')[1].focus()")
    browser.key("ArrowRight", 39)
    browser.key("ArrowRight", 39)
    assert wait_for(lambda: browser.js(counters) == "1 / 28|3 / 8")
    browser.js("document.querySelectorAll('.tg-next')[0].click()")   # a button moves its own player only
    assert browser.js(counters) == "2 / 28|3 / 8"
    browser.js("document.querySelectorAll('.tgcv-player')[0].focus()")
    browser.key("End", 35)
    assert wait_for(lambda: browser.js(counters) == "28 / 28|3 / 8")


def test_player_inserted_the_way_jupyterlab_does_it(browser, tmp_path):
    """JupyterLab sets the output's innerHTML on a detached node, re-creates its scripts, and attaches it later."""
    html = viz.player(Stepper(parse("(x + y) * z", {"x": -2, "y": 5, "z": -4}).root))._repr_html_()
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><html><body><p>notebook</p></body></html>", encoding="utf-8")
    browser.open(blank.as_uri())
    wait_for(lambda: browser.js("document.readyState") == "complete")
    browser.js("(html => { const host = document.createElement('div'); host.innerHTML = html;"
               " host.querySelectorAll('script').forEach(old => { const s = document.createElement('script');"
               " s.textContent = old.textContent; old.replaceWith(s); });"
               " setTimeout(() => document.body.appendChild(host), 300); })(" + json.dumps(html) + ")")
    assert wait_for(lambda: browser.js("(p => p && p.getAttribute('data-ready'))"
                                       "(document.querySelector('.tgcv-player'))")) == "1"
    browser.js("document.querySelector('.tgcv-player').focus()")
    browser.key("End", 35)
    assert wait_for(lambda: browser.js(COUNTER) == "8 / 8")
