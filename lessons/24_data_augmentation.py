"""Data augmentation: more training digits for free, as long as the label survives.

A network trained on few examples memorises them, including details such as the
exact pixel position of each stroke. Augmentation shows it a slightly different
copy of every example each epoch (shifted, cropped, or for natural images
mirrored), so only what survives those changes can be learned. The one rule:
the transformation must not change the label.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import models, train
from tinygrad_cv.data import random_crop, random_flip, random_shift, shift


def fit_small(images: np.ndarray, labels: np.ndarray, augment: int, epochs: int, seed: int = 0) -> tg.nn.Module:
    """LeNet-5 with the library's recipe pieces (Adam, warmup + cosine), with or without random shifts."""
    tg.manual_seed(seed)
    model = models.lenet5()
    loader = train.make_loader(images, labels, batch_size=32, seed=seed, augment=augment)
    opt = train.make_optimizer("adam", model.parameters(), lr=3e-3)
    sched = train.make_scheduler("warmup_cosine", opt, total_steps=epochs * len(loader), warmup_steps=10)
    for _ in range(epochs):
        train.train_epoch(model, loader, opt, sched)
    return model


def shifted(images: np.ndarray, max_shift: int, seed: int) -> np.ndarray:
    """Every image moved by exactly max_shift pixels in a random one of the 8 directions."""
    rng = np.random.default_rng(seed)
    dirs = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    d = dirs[rng.integers(0, 8, len(images))] * max_shift
    return shift(images, d[:, 0], d[:, 1])


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_test, epochs = (500, 1000, 10) if opts.quick else (2000, 2000, 12)
    images, labels = tg.data.mnist("train")
    test_images, test_labels = tg.data.mnist("test")
    test_images, test_labels = test_images[:n_test], test_labels[:n_test]

    heading("Three augmentations, checked pixel by pixel")
    rng = np.random.default_rng(0)
    batch = images[:8]
    moved = shift(batch, 2, -1)
    say("""shift(batch, dy, dx) slides every image dy pixels down and dx pixels right and fills the
        uncovered border with zeros. A digit sits in the middle of its 28x28 frame, so a shift of a
        couple of pixels loses no ink.""")
    check("shift by (2, -1): out[y, x] = in[y - 2, x + 1]", bool(np.array_equal(moved[:, 2:, :-1], batch[:, :-2, 1:])),
          True)
    check("share of the ink kept by a 2-pixel shift",
          float(moved.astype(np.int64).sum() / batch.astype(np.int64).sum()),
          at_least=0.99)
    crop = random_crop(batch, 28, padding=2, rng=rng)
    say("""random_crop pads every image with 2 zero pixels on each side (32x32) and cuts a random 28x28
        window back out: the same as a random shift of up to 2 pixels, the way it is usually done for
        CIFAR-10. (ImageNet networks crop 224x224 windows out of larger rescaled images.)""")
    as_shift = [any(np.array_equal(c, shift(b[None], dy, dx)[0]) for dy in range(-2, 3) for dx in range(-2, 3))
                for c, b in zip(crop, batch)]
    check("every random crop equals a shift by at most 2 pixels", all(as_shift), True)
    flipped = random_flip(batch, rng, p=1.0)
    check("random_flip(p=1) mirrors left-right", bool(np.array_equal(flipped, batch[:, :, ::-1])), True)
    say("""Mirroring is the favourite augmentation for photographs (a mirrored cat is still a cat), but
        it does not preserve a digit's label: a mirrored 2, 3, 4 or 7 is no digit at all, and the
        course's own warning is about b versus d and 6 versus 9. We will measure this below.""")

    heading(f"LeNet-5 on only {n_train} digits, with and without random shifts")
    recipe_shift = train.TrainConfig().augment
    say(f"""Both models see the same {n_train} training digits for {epochs} epochs with the library's recipe
        (Adam, warmup then cosine). One sees them as they are; the other sees each digit shifted by up to
        2 pixels in a new random direction every epoch (train.make_loader(augment=2); the full recipe,
        trained on all the digits, uses shifts of up to {recipe_shift}). We test on {n_test} held-out digits,
        and on the same digits moved by 3 pixels.""")
    x_train, y_train = images[:n_train], labels[:n_train]
    plain = fit_small(x_train, y_train, augment=0, epochs=epochs)
    aug = fit_small(x_train, y_train, augment=2, epochs=epochs)
    test_moved = shifted(test_images, 3, seed=1)
    res = {}
    for name, model in (("no augmentation", plain), ("random shifts", aug)):
        res[name] = dict(train=train.evaluate(model, train.prepare(x_train), y_train),
                         test=train.evaluate(model, train.prepare(test_images), test_labels),
                         moved=train.evaluate(model, train.prepare(test_moved), test_labels),
                         flipped=train.evaluate(model, train.prepare(test_images[:, :, ::-1]), test_labels))
    table(["training", "train acc", "test acc", "gap", "test moved 3 px", "test mirrored"],
          [[n, r["train"], r["test"], r["train"] - r["test"], r["moved"], r["flipped"]] for n, r in res.items()], ".3f")
    p, a = res["no augmentation"], res["random shifts"]
    check("without augmentation the network fits its training digits", p["train"], at_least=0.97)
    check("augmentation shrinks the train-test gap", a["train"] - a["test"], at_most=p["train"] - p["test"])
    check("augmentation does not hurt clean test accuracy (within 0.01)", a["test"], at_least=p["test"] - 0.01)
    check("digits moved by 3 px: augmented model is better by", a["moved"] - p["moved"], at_least=0.2)
    check("mirrored digits: both models fail (accuracy)", max(a["flipped"], p["flipped"]), at_most=0.6,
          note="mirroring changes what a digit is")
    say("""The unaugmented network scores almost perfectly on the digits it memorised but noticeably worse
        on new ones, and it falls apart when the digits are displaced by a few pixels, a change no
        person would notice. The augmented network rarely saw a digit in the same place twice, so it
        had to learn the strokes rather than their coordinates.

        Mirrored digits fool both networks: that is not a weakness of augmentation but the reason not
        to use flips on digits. Had we trained with random flips, a mirrored 2 and a real 2 would both be
        called 2, and some real digits would become ambiguous (a mirrored 2 looks rather like a 5).""")

    plt = plots_wanted(opts)
    if plt is not None:
        rng = np.random.default_rng(3)
        rows = [("original", batch), ("shift <= 2", random_shift(batch, 2, rng)),
                ("pad 2 + crop", random_crop(batch, 28, 2, rng)), ("mirrored (wrong!)", batch[:, :, ::-1]),
                ("moved 3 px (test)", shifted(batch, 3, 2))]
        fig, axes = plt.subplots(len(rows), 8, figsize=(8, 5.3))
        for r, (name, imgs) in enumerate(rows):
            for c in range(8):
                axes[r, c].imshow(imgs[c], cmap="gray_r")
                axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
            axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        fig.suptitle("augmentations of the first 8 training digits")
        save_figure(opts, fig, "24_augmentations")


if __name__ == "__main__":
    run(main)
