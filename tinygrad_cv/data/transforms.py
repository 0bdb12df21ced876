"""Preprocessing and augmentation on numpy batches.

Images are batches shaped (N, H, W) or (N, C, H, W); the spatial axes are always
the last two. Random augmentations take a seeded ``np.random.Generator`` so a run
is reproducible, and work on the whole batch at once (no per-image loop).

Every augmentation has a callable-class twin taking ``(batch, rng)`` so they can
be chained with :class:`Compose` and handed to ``DataLoader(transform=...)``::

    aug = Compose([RandomShift(2), Normalize()])
    batch = aug(batch, np.random.default_rng(0))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "MNIST_MEAN", "MNIST_STD",
    "to_float", "normalize", "shift", "random_shift", "random_crop", "random_flip",
    "Transform", "Compose", "ToFloat", "Normalize", "RandomShift", "RandomCrop", "RandomFlip",
]

# mean and std of MNIST's 60,000 training pixels, scaled to [0, 1]
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _check_batch(batch: np.ndarray, name: str) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.ndim not in (3, 4):
        raise ValueError(f"{name}: expected a batch (N, H, W) or (N, C, H, W), got shape {batch.shape}")
    return batch


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]; (N, H, W) gains a channel axis -> (N, 1, H, W).

    Float input is only cast to float32 (assumed already in [0, 1]); 4-D input keeps its shape.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"to_float: expected images (N, H, W) or (N, C, H, W), got shape {images.shape}")
    if images.dtype == np.uint8:
        out = images.astype(np.float32) * np.float32(1.0 / 255.0)
    elif images.dtype.kind in "fiub":
        out = images.astype(np.float32, copy=False)
    else:
        raise TypeError(f"to_float: cannot convert dtype {images.dtype} to float32 pixels")
    return out[:, None] if out.ndim == 3 else out


def normalize(
    images: np.ndarray, mean: float | Sequence[float] = MNIST_MEAN, std: float | Sequence[float] = MNIST_STD
) -> np.ndarray:
    """(images - mean) / std as float32; per-channel mean/std broadcast over axis 1 of (N, C, H, W)."""
    images = np.asarray(images, dtype=np.float32)
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    if np.any(s <= 0):
        raise ValueError(f"normalize: std must be positive, got {std!r}")
    if m.ndim == 1 or s.ndim == 1:
        c = images.shape[1] if images.ndim == 4 else None
        for name, v in (("mean", m), ("std", s)):
            if v.ndim == 1 and v.shape[0] != c:
                raise ValueError(
                    f"normalize: {name} has {v.shape[0]} per-channel values but images of shape "
                    f"{images.shape} have {c if c is not None else 'no channel axis (need (N, C, H, W))'}"
                )
        m = m.reshape(-1, 1, 1) if m.ndim == 1 else m
        s = s.reshape(-1, 1, 1) if s.ndim == 1 else s
    return (images - m) / s


def _gather_windows(padded: np.ndarray, oy: np.ndarray, ox: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crop an (h, w) window at per-image offsets (oy[i], ox[i]) from a padded batch."""
    windows = sliding_window_view(padded, (h, w), axis=(-2, -1))  # (N, [C,] Py, Px, h, w), a view
    n = padded.shape[0]
    mid = (slice(None),) * (padded.ndim - 3)
    # with a channel slice between the index arrays numpy puts the N axis first: (N, C, h, w)
    return windows[(np.arange(n),) + mid + (oy, ox)]


def _pad_hw(batch: np.ndarray, py: int, px: int) -> np.ndarray:
    pad = [(0, 0)] * (batch.ndim - 2) + [(py, py), (px, px)]
    return np.pad(batch, pad)


def shift(batch: np.ndarray, dy: int | np.ndarray, dx: int | np.ndarray) -> np.ndarray:
    """Translate each image by (dy[i], dx[i]) pixels (down/right positive), filling with zeros.

    out[i, ..., y, x] == batch[i, ..., y - dy[i], x - dx[i]] where that is inside the image, else 0.
    """
    batch = _check_batch(batch, "shift")
    n, h, w = batch.shape[0], batch.shape[-2], batch.shape[-1]
    dy, dx = np.asarray(dy, dtype=np.int64), np.asarray(dx, dtype=np.int64)
    for name, d in (("dy", dy), ("dx", dx)):
        if d.shape not in ((), (n,)):
            raise ValueError(f"shift: {name} must be an int or have one entry per image ({n}), got shape {d.shape}")
    dy, dx = np.broadcast_to(dy, (n,)), np.broadcast_to(dx, (n,))
    m_y = int(np.abs(dy).max(initial=0))
    m_x = int(np.abs(dx).max(initial=0))
    if m_y >= h or m_x >= w:
        raise ValueError(f"shift: offsets up to ({m_y}, {m_x}) leave nothing of {h}x{w} images")
    padded = _pad_hw(batch, m_y, m_x)
    return _gather_windows(padded, m_y - dy, m_x - dx, h, w)


def random_shift(batch: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by independent integer offsets in [-max_shift, max_shift] (zero fill).

    Draws dy then dx, each ``rng.integers(-max_shift, max_shift + 1, size=N)``.
    """
    batch = _check_batch(batch, "random_shift")
    if max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be >= 0, got {max_shift}")
    n = batch.shape[0]
    dy = rng.integers(-max_shift, max_shift + 1, size=n)
    dx = rng.integers(-max_shift, max_shift + 1, size=n)
    return shift(batch, dy, dx)


def random_crop(
    batch: np.ndarray, size: int | tuple[int, int], padding: int, rng: np.random.Generator
) -> np.ndarray:
    """Zero-pad by `padding` on each side, then crop a random `size` window per image (as torchvision)."""
    batch = _check_batch(batch, "random_crop")
    if padding < 0:
        raise ValueError(f"random_crop: padding must be >= 0, got {padding}")
    h, w = (size, size) if isinstance(size, int) else size
    padded = _pad_hw(batch, padding, padding) if padding else batch
    ph, pw = padded.shape[-2], padded.shape[-1]
    if h > ph or w > pw:
        raise ValueError(
            f"random_crop: crop {h}x{w} is larger than the padded image {ph}x{pw} "
            f"(input {batch.shape[-2]}x{batch.shape[-1]}, padding {padding})"
        )
    n = batch.shape[0]
    oy = rng.integers(0, ph - h + 1, size=n)
    ox = rng.integers(0, pw - w + 1, size=n)
    return _gather_windows(padded, oy, ox, h, w)


def random_flip(batch: np.ndarray, rng: np.random.Generator, axis: int = -1, p: float = 0.5) -> np.ndarray:
    """Flip each image along `axis` (-1: horizontal, -2: vertical) with probability `p`.

    Right for natural images (a mirrored cat is a cat), wrong for digits: a mirrored
    2 or 7 is not a digit at all, so do not use this on MNIST.
    """
    batch = _check_batch(batch, "random_flip")
    if axis not in (-1, -2, batch.ndim - 1, batch.ndim - 2):
        raise ValueError(f"random_flip: axis must be a spatial axis (-1 or -2), got {axis} for shape {batch.shape}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_flip: p must be in [0, 1], got {p}")
    mask = rng.random(batch.shape[0]) < p
    out = batch.copy()
    out[mask] = np.flip(batch[mask], axis=axis)
    return out


class Compose:
    """Apply transforms in order; each is a callable (batch, rng) -> batch."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            batch = t(batch, rng)
        return batch

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class ToFloat:
    """Callable form of :func:`to_float`."""

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return to_float(batch)

    def __repr__(self) -> str:
        return "ToFloat()"


class Normalize:
    """Callable form of :func:`normalize` (defaults: MNIST's mean and std)."""

    def __init__(self, mean: float | Sequence[float] = MNIST_MEAN, std: float | Sequence[float] = MNIST_STD) -> None:
        self.mean, self.std = mean, std

    def __call__(self, batch: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        return normalize(batch, self.mean, self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean!r}, std={self.std!r})"


class RandomShift:
    """Callable form of :func:`random_shift`."""

    def __init__(self, max_shift: int) -> None:
        self.max_shift = max_shift

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_shift(batch, self.max_shift, rng)

    def __repr__(self) -> str:
        return f"RandomShift({self.max_shift})"


class RandomCrop:
    """Callable form of :func:`random_crop`."""

    def __init__(self, size: int | tuple[int, int], padding: int = 0) -> None:
        self.size, self.padding = size, padding

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_crop(batch, self.size, self.padding, rng)

    def __repr__(self) -> str:
        return f"RandomCrop({self.size!r}, padding={self.padding})"


class RandomFlip:
    """Callable form of :func:`random_flip` (not for digits; see there)."""

    def __init__(self, axis: int = -1, p: float = 0.5) -> None:
        self.axis, self.p = axis, p

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return random_flip(batch, rng, axis=self.axis, p=self.p)

    def __repr__(self) -> str:
        return f"RandomFlip(axis={self.axis}, p={self.p})"
