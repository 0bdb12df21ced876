"""Pictures at each step of a CNN: module frames, viz.player, `tgcv step MODEL --frames` (no browser needed)."""
import re
import struct
import zlib

import numpy as np
import pytest

import tinygrad_cv as tg
import viz
from tinygrad_cv.cli.step import model_run
from tinygrad_cv.expr import parse
from tinygrad_cv.step import ModuleBackward, ModuleForward, ModuleStepper, Stepper
from viz.maps import _DIVERGING, _SEQUENTIAL
from viz.module_frames import GRID_PX, MAX_CHANNELS, TILE_PX, map_figure, module_frames, softmax_figure

needs_dot = pytest.mark.skipif(not viz.has_dot(), reason="Graphviz 'dot' is not installed")


def read_png(uri_or_bytes) -> np.ndarray:
    """Decode the PNGs viz.maps writes (8-bit, filter 0 on every row) back to pixels."""
    import base64

    raw = (base64.b64decode(uri_or_bytes.split(",", 1)[1]) if isinstance(uri_or_bytes, str) else uri_or_bytes)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    w, h, depth, ctype = struct.unpack(">IIBB", raw[16:26])
    assert depth == 8 and ctype == 2
    i, data = 8, b""
    while i < len(raw):
        n = struct.unpack(">I", raw[i:i + 4])[0]
        if raw[i + 4:i + 8] == b"IDAT":
            data += raw[i + 8:i + 8 + n]
        i += 12 + n
    rows = np.frombuffer(zlib.decompress(data), np.uint8).reshape(h, 1 + w * 3)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 3)


def images(fragment: str) -> list[str]:
    return re.findall(r'src="(data:image/png;base64,[^"]+)"', fragment)


@pytest.fixture(scope="module")
def lenet():
    return model_run("lenet5", None, None, 0, 32)


def test_one_frame_per_module_step_with_its_pictures(lenet):
    s = lenet.stepper
    fr = module_frames(s, title=lenet.title)
    assert len(fr.sections) == len(s.events) + 1 == 28
    for pos, section in enumerate(fr.sections):
        e = s.events[pos - 1] if pos else None
        if isinstance(e, ModuleForward) and e.scope == "loss":
            assert 'class="tg-softmax"' in section and section.count('data-class=') == 10
            assert section.count("tg-target") == 1 and 'data-class="0"' in section   # digit #0 is a 0
        elif isinstance(e, ModuleForward):
            assert section.count('data-kind="maps"') == 1 and len(images(section)) == 1, e.scope
        elif isinstance(e, ModuleBackward):
            assert section.count('data-kind="grad"') == len(e.downstream) >= 1, e.scope
            conv = e.scope in ("features.0", "features.3")
            assert section.count('data-kind="filter-grad"') == conv, e.scope
            if conv:
                assert f"dloss/d({e.scope}.weight): all {6 if e.scope == 'features.0' else 16} filters" in section
        else:                                               # the start and the seed: text only
            assert not images(section)
    assert "forward 1/13  features.0 (Conv2d)" in fr.sections[1]
    assert 'data-node="m1"' in fr.sections[1] and 'data-node="m1"' in fr.sections[-1]   # conv1, both ways
    assert 'data-dir="backward"' in fr.sections[-1]
    assert fr.aside.count("<svg") == (1 if viz.has_dot() else 0) and len(images(fr.aside)) == 1   # the digit


def test_feature_maps_grid_and_colour_scale_can_be_read_back():
    a = np.zeros((1, 20, 4, 4))
    a[0, 3, 1, 2] = 5.0                  # the maximum, in channel 3
    a[0, 0, 0, 0] = -1.0                 # the minimum, in channel 0
    fig = map_figure(a, "out", signed=False)
    assert f"channels 0-{MAX_CHANNELS - 1} of 20, 4x4 each" in fig
    assert re.findall(r"<span>([^<]*)</span>", fig) == ["-1", "5"]        # the colour bar's ends
    px = read_png(images(fig)[0])
    rows, cols = 4, 4                                       # 16 tiles in a 4x4 grid
    k = -(-max(TILE_PX, GRID_PX // cols) // 4)              # each 4x4 tile enlarged k times
    assert px.shape == (rows * (4 * k + 1) + 1, cols * (4 * k + 1) + 1, 3)
    tile = lambda t, y, x: px[1 + (t // cols) * (4 * k + 1) + y * k, 1 + (t % cols) * (4 * k + 1) + x * k]
    assert tuple(tile(3, 1, 2)) == tuple(_SEQUENTIAL[-1])   # max: the top of the ramp (yellow)
    assert tuple(tile(0, 0, 0)) == tuple(_SEQUENTIAL[0])    # min: the bottom (dark)


def test_gradient_maps_are_centred_on_zero():
    g = np.array([[-2.0, 0.0, 1.0, 0.5]])                  # a (1, 4) gradient: one tile of 4 values
    fig = map_figure(g, "grad", signed=True)
    assert re.findall(r"<span>([^<]*)</span>", fig) == ["-2", "0", "2"]   # +-max|g|, 0 in the middle
    px = read_png(images(fig)[0])
    k = px.shape[1] // 4
    cells = [tuple(px[0, i * k]) for i in range(4)]
    assert cells[0] == tuple(_DIVERGING[0]) and cells[1] == tuple(_DIVERGING[4]) == (247, 247, 247)
    assert cells[2][0] > cells[2][2] and cells[2] != tuple(_DIVERGING[-1])   # +1 of 2: red, not the deepest


def test_softmax_bars_show_the_top_classes_and_the_target():
    logits = tg.Tensor(np.linspace(0, 5, 1000)[None].astype(np.float32), requires_grad=True)
    loss = tg.nn.functional.cross_entropy(logits, np.array([3]))
    s = Stepper(loss, by="module")
    fig = softmax_figure(s.events[0])
    classes = re.findall(r'data-class="(\d+)"', fig)
    assert len(classes) == 12 and classes[:11] == [str(k) for k in range(999, 988, -1)] and classes[-1] == "3"
    assert "the top 12 of 1000 classes" in fig and "target 3 in red" in fig and "predicted 999" in fig
    fr = module_frames(s)                                   # no model: the loss alone, named by its op
    assert len(fr.sections) == 4 and fr.title == s.name(loss)
    assert fr.sections[3].count('data-kind="grad"') == 1 and "1000 values in reading order" in fr.sections[3]


@needs_dot
def test_write_frames_of_a_module_stepper(lenet, tmp_path):
    s = lenet.stepper
    s.position = 5
    index = viz.write_frames(s, tmp_path, title=lenet.title)
    assert s.position == 5
    s.reset()
    page = index.read_text()
    assert page.count('class="frame"') == 28 and page.count("data:image/png;base64,") == 12 + 13 + 2 + 1   # maps, gradients, 2 convs' dW, the digit
    assert "http://" not in page.replace("http://www.w3.org", "")
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) > 28
    assert (tmp_path / "modules.svg").read_text().count("<g id=\"node") == 14       # 13 modules and x


def test_cli_frames_for_a_model(run_cli, tmp_path):
    code, out, err = run_cli("step", "lenet5", "--digit", "7", "--frames", str(tmp_path / "f"))
    assert code == 0, err
    assert out.splitlines()[0] == f"wrote 28 frames and {tmp_path / 'f' / 'index.html'}"
    page = (tmp_path / "f" / "index.html").read_text()
    assert "held-out digit #" in page and "(a 7)" in page and page.count('class="frame"') == 28
    code, out, err = run_cli("step", "lenet5", "--frames", str(tmp_path / "g"), "--no-interactive")
    assert code == 0 and "backward 13/13  features.0 (Conv2d)" in out     # and the transcript after


def test_cli_frames_without_graphviz_say_so_in_one_line(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))               # no dot on PATH
    code, out, err = run_cli("step", "lenet5", "--frames", str(tmp_path / "f"))
    assert code == 0, err
    assert out.splitlines()[1] == "(the frames have no module graph: it needs Graphviz's dot, which is not installed)"
    page = (tmp_path / "f" / "index.html").read_text()
    assert page.count('class="frame"') == 28 and "<svg" not in page and "not installed" in page


@needs_dot
def test_resnet18_frames_stay_small(run_cli, tmp_path):
    code, out, err = run_cli("step", "resnet18", "--size", "32", "--frames", str(tmp_path))
    assert code == 0, err
    assert out.startswith("wrote 140 frames")
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert size < 20_000_000, f"{size:,} bytes"


@needs_dot
def test_player_wraps_roots_and_steppers():
    f = parse("(x + y) * z", {"x": -2, "y": 5, "z": -4}).root
    p = viz.player(f)
    assert p.frame_count == 8 and isinstance(p.stepper, Stepper)
    first, second = p._repr_html_(), p._repr_html_()
    uid1, uid2 = (re.search(r'class="tgcv-player" id="([^"]+)"', h)[1] for h in (first, second))
    assert uid1 != uid2 and first.count('class="frame"') == 8
    assert f'id="{uid1}-f1-graph0"' in first                 # Graphviz's ids, prefixed per player and frame

    w = tg.Tensor(np.array([[0.5, -1.0]]), requires_grad=True)
    w.label = "w"
    t = (w * tg.Tensor(np.array([[2.0, 3.0]]))).sum()
    pt = viz.player(t)
    assert pt.frame_count == len(pt.stepper.events) + 1 == 6        # start, mul, sum, the seed, sum->mul, mul->w
    assert "<svg" in pt._repr_html_()


def test_player_of_a_model_and_bad_input(lenet):
    run = lenet
    net = run.net
    x = tg.Tensor(run.x.data, requires_grad=True)
    loss = tg.nn.functional.cross_entropy(net(x), np.array([run.target]))
    p = viz.player(loss, model=net)
    assert isinstance(p.stepper, ModuleStepper) and p.frame_count == 28
    assert "<viz.player: 28 frames" in repr(p)
    with pytest.raises(TypeError, match="Stepper or a recorded Value/Tensor, got int"):
        viz.player(3)
    with pytest.raises(ValueError, match="go with a root"):
        viz.player(run.stepper, model=net)
