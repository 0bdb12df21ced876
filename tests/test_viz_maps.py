"""Feature maps, their gradients and filters, on a tiny custom CNN and on LeNet-5; ``tgcv maps``."""
import math
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import nn
from viz import maps


def read_png(path):
    """Decode the PNGs maps.write_png makes (8-bit, filter 0) back into an array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        chunks[tag] = chunks.get(tag, b"") + body
        pos += 12 + n
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    c = {0: 1, 2: 3, 6: 4}[ctype]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + w * c)
    assert depth == 8 and not rows[:, 0].any()
    return rows[:, 1:].reshape(h, w, c).squeeze()


class Tiny(nn.Module):
    """Two convs, one nested in a Sequential: 1x12x12 -> 4x12x12 -> pool 4x6x6 -> 6x4x4 -> 3 classes."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3), nn.ReLU())
        self.head = nn.Linear(6 * 4 * 4, 3)

    def forward(self, x):
        x = self.block(self.pool(self.act(self.conv_a(x))))
        return self.head(x.reshape(x.shape[0], -1))


def grid_px(n, h, w, min_px=maps.MIN_TILE_PX, gap=2):
    rows, cols = maps.grid_shape(n)
    k = math.ceil(min_px / max(h, w))
    return rows * (h * k + gap) + gap, cols * (w * k + gap) + gap


@pytest.fixture
def tiny():
    return Tiny()


@pytest.fixture
def image():
    return np.random.default_rng(3).random((12, 12)).astype(np.float32)


def test_grid_shape():
    assert maps.grid_shape(6) == (2, 3) and maps.grid_shape(16) == (4, 4) and maps.grid_shape(1) == (1, 1)
    assert maps.grid_shape(5) == (2, 3) and maps.grid_shape(10) == (3, 4)


def test_maps_one_tile_per_channel(tiny, image, tmp_path):
    fm = maps.feature_maps(tiny, image, path=tmp_path)
    assert fm.layers == ["conv_a", "block.0"]
    assert fm.maps["conv_a"].shape == (4, 12, 12) and fm.maps["block.0"].shape == (6, 4, 4)
    assert fm.images["conv_a"].shape == (*grid_px(4, 12, 12), 3) == (198, 198, 3)
    assert fm.images["block.0"].shape == (*grid_px(6, 4, 4), 3) == (198, 296, 3)
    assert fm.grads is None and fm.grad_images is None                 # no backward pass: no gradient panel
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "conv_a_maps.png" in names and "block.0_maps.png" in names and "input.png" in names
    assert not any("grads" in n for n in names)
    assert np.array_equal(read_png(tmp_path / "block.0_maps.png"), fm.images["block.0"])
    # the activations are the conv outputs themselves
    x = tg.Tensor(image[None, None])
    expected = tiny.block[0](tiny.pool(tiny.act(tiny.conv_a(x)))).data[0]
    assert np.allclose(fm.maps["block.0"], expected, atol=1e-5)


def test_tiles_follow_the_values(tiny, image):
    fm = maps.feature_maps(tiny, image, layers=["conv_a"])
    a, im = fm.maps["conv_a"], fm.images["conv_a"]
    k = math.ceil(maps.MIN_TILE_PX / 12)
    for c in range(4):                       # brightest pixel of each tile = its largest activation
        r, q = divmod(c, 2)
        tile = im[2 + r * (12 * k + 2):, 2 + q * (12 * k + 2):][:12 * k:k, :12 * k:k]
        lum = tile.astype(int).sum(-1)
        assert np.unravel_index(lum.argmax(), lum.shape) == np.unravel_index(a[c].argmax(), a[c].shape)
    assert (im[0] == maps.BACKGROUND).all()  # white gutter


def test_gradient_panel_after_backward(tiny, image, tmp_path):
    tiny.train()
    fm = maps.feature_maps(tiny, image, grads=True, target=2, path=tmp_path)
    assert fm.target == 2 and fm.prediction == int(np.argmax(fm.scores))
    assert set(fm.grads) == {"conv_a", "block.0"}
    assert fm.grads["block.0"].shape == (6, 4, 4) and fm.grads["conv_a"].shape == (4, 12, 12)
    # d score_2 / d (conv output) = head.weight[2] where the ReLU passed, 0 elsewhere
    w = tiny.head.weight.data[2].reshape(6, 4, 4)
    assert np.allclose(fm.grads["block.0"], w * (fm.maps["block.0"] > 0), atol=1e-6)
    assert (fm.grads["conv_a"] > 0).any() and (fm.grads["conv_a"] < 0).any()
    assert fm.grad_images["block.0"].shape == fm.images["block.0"].shape
    assert (tmp_path / "conv_a_grads.png").is_file() and (tmp_path / "block.0_grads.png").is_file()
    # red where positive, blue where negative
    gi = fm.grad_images["block.0"].astype(int)
    k = math.ceil(maps.MIN_TILE_PX / 4)
    g = fm.grads["block.0"]
    c, y, x = np.unravel_index(g.argmax(), g.shape)
    r, q = divmod(c, 3)
    px = gi[2 + r * (4 * k + 2) + y * k, 2 + q * (4 * k + 2) + x * k]
    assert px[0] > px[2] + 100
    # the model is left as it was: parameter grads untouched, training mode back
    assert all(p.grad is None for p in tiny.parameters()) and tiny.training and tiny.conv_a.training
    assert type(tiny.conv_a) is nn.Conv2d


def test_mixed_train_eval_modes_come_back_module_by_module(tiny, image):
    tiny.train()
    tiny.block.eval()                                  # one sub-tree in eval, the rest training
    before = [(n, m.training) for n, m in tiny.named_modules()]
    seen = []
    tiny.block.register_forward_pre_hook(lambda m, inputs: seen.append(m.training))
    maps.feature_maps(tiny, image, grads=True)
    assert seen == [False]                             # the pass ran in eval mode
    assert [(n, m.training) for n, m in tiny.named_modules()] == before
    assert any(mode for _, mode in before) and not all(mode for _, mode in before)


def test_layer_choice_and_errors(tiny, image):
    fm = maps.feature_maps(tiny, image[None], layers=["block.0"])
    assert fm.layers == ["block.0"]
    with pytest.raises(ValueError, match="conv_a, block.0"):
        maps.feature_maps(tiny, image, layers=["head"])
    with pytest.raises(ValueError, match="no Conv2d"):
        maps.feature_maps(nn.Sequential(nn.Linear(4, 2)), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="one image"):
        maps.feature_maps(tiny, np.zeros((2, 1, 12, 12), np.float32))


def test_filters_grid_six_filters(tmp_path):
    conv = nn.Conv2d(1, 6, 5)
    im = maps.filters(conv, tmp_path / "f.png")
    k = math.ceil(64 / 5)
    assert im.shape == (2 * (5 * k + 2) + 2, 3 * (5 * k + 2) + 2, 3)
    assert np.array_equal(read_png(tmp_path / "f.png"), im)
    w = conv.weight.data
    for f in range(6):                       # each tile: its largest weight is the reddest pixel
        r, q = divmod(f, 3)
        tile = im[2 + r * (5 * k + 2):, 2 + q * (5 * k + 2):][:5 * k:k, :5 * k:k].astype(int)
        red = np.where(tile[..., 0] > tile[..., 2], 255 - tile[..., 1], -1)   # green falls as red deepens
        assert np.unravel_index(red.argmax(), red.shape) == np.unravel_index(w[f, 0].argmax(), (5, 5))


def test_filters_deeper_layers():
    conv = nn.Conv2d(4, 6, 3)
    k = math.ceil(64 / 3)
    assert maps.filters(conv).shape == (2 * (3 * k + 2) + 2, 3 * (3 * k + 2) + 2, 3)      # mean over in
    assert maps.filters(conv, reduce="first").shape == maps.filters(conv).shape
    assert maps.filters(conv, reduce="all").shape == (6 * (3 * k + 2) + 2, 4 * (3 * k + 2) + 2, 3)
    assert maps.filters(nn.Conv2d(3, 8, 3)).shape == (3 * (3 * k + 2) + 2, 3 * (3 * k + 2) + 2, 3)  # RGB
    with pytest.raises(ValueError, match="reduce"):
        maps.filters(conv, reduce="max")


def test_capture_outputs_uses_hooks_and_removes_them(tiny, image):
    mine = tiny.conv_a.register_forward_hook(lambda m, inputs, out: out * 0.0 + 1.0)   # a user's own hook
    with maps.capture_outputs(tiny, nn.Conv2d) as outs:
        tiny(tg.Tensor(image[None, None]))
        assert len(tiny.conv_a._forward_hooks) == 2 and type(tiny.conv_a) is nn.Conv2d
    assert list(outs) == ["conv_a", "block.0"] and list(tiny.conv_a._forward_hooks) == [mine.id]
    assert outs["block.0"].shape == (1, 6, 4, 4)
    assert np.all(outs["conv_a"].data == 1.0)          # the output the model went on with, after the user's hook
    mine.remove()
    with pytest.raises(ZeroDivisionError):
        with maps.capture_outputs(tiny, nn.Conv2d):
            1 / 0
    assert all(not m._forward_hooks for m in tiny.modules())


def test_write_png_round_trip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    grey = rgb[..., 0]
    assert np.array_equal(read_png(maps.write_png(tmp_path / "a.png", rgb)), rgb)
    assert np.array_equal(read_png(maps.write_png(tmp_path / "b.png", grey)), grey)
    with pytest.raises(TypeError):
        maps.write_png(tmp_path / "c.png", rgb.astype(float))


def test_lenet_untrained(tmp_path):
    model = tg.models.lenet5()
    images, labels = tg.data.mnist("test")
    x = tg.data.normalize(tg.data.to_float(images[:1]))
    fm = maps.feature_maps(model, x, grads=True, path=tmp_path)
    assert fm.layers == ["features.0", "features.3"]
    assert fm.maps["features.0"].shape == (6, 28, 28) and fm.grads["features.3"].shape == (16, 10, 10)
    assert fm.images["features.3"].shape == (*grid_px(16, 10, 10), 3)


def tgcv(*args):
    return subprocess.run([sys.executable, "-m", "tinygrad_cv", *args], capture_output=True, text=True)


def test_cli_maps_with_checkpoint(tmp_path):
    from tinygrad_cv import checkpoint

    ckpt = checkpoint.save(tg.models.lenet5(), tmp_path / "model.npz", model_name="lenet5")
    out = tgcv("maps", "lenet5", "--checkpoint", str(ckpt), "--digit", "7", "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    written = {p.name for p in (tmp_path / "out").iterdir()}
    for layer in ("features.0", "features.3"):
        assert {f"{layer}_maps.png", f"{layer}_grads.png", f"{layer}_filters.png"} <= written
    assert "digit 7" in out.stdout
    f0 = read_png(tmp_path / "out" / "features.0_filters.png")
    assert f0.shape == (2 * (5 * 13 + 2) + 2, 3 * (5 * 13 + 2) + 2, 3)


@pytest.mark.parametrize("args, words", [
    (["--checkpoint", "missing.npz", "--digit", "7"], "missing.npz"),
    (["--digit", "12"], "0..9"),
])
def test_cli_maps_errors_one_line(args, words, tmp_path):
    out = tgcv("maps", "lenet5", *args, "-o", str(tmp_path / "out"))
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and words in out.stderr and "Traceback" not in out.stderr


def test_cli_maps_bad_checkpoint_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    out = tgcv("maps", "lenet5", "--checkpoint", str(bad), "-o", str(tmp_path / "out"))
    assert out.returncode != 0 and out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
