"""MNIST: the shipped 10,000 real test digits, or full MNIST from a directory.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0);
see tinygrad_cv/data/mnist/README.md.

With no path, the package's copy of the official 10,000-image test set is split
into 8,000 "train" and 2,000 "test" digits, stratified by class with a fixed
seed, so every call on every machine gets the same split. Nothing is read at
import time; decoded arrays are cached in memory after the first call.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from .idx import DataError, read_idx

__all__ = ["mnist", "SPLITS", "SHIPPED_DIR", "N_TRAIN_SHIPPED", "SPLIT_SEED", "stratified_split"]

SPLITS = ("train", "test")
SHIPPED_DIR = Path(__file__).resolve().parent / "mnist"
N_TRAIN_SHIPPED = 8000
SPLIT_SEED = 0

_PREFIX = {"train": "train", "test": "t10k"}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; allowed: {', '.join(map(repr, SPLITS))}")


def _validate(images: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3:
        raise DataError(f"{where}: images should be (N, H, W), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{where}: labels should be (N,), got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
    if images.dtype != np.uint8:
        raise DataError(f"{where}: images should be uint8, got {images.dtype}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{where}: labels should be integers, got {labels.dtype}")
    if images.shape[0] == 0:
        raise DataError(f"{where}: the files hold no images (N = 0)")
    if labels.min() < 0 or labels.max() > 9:
        bad = labels[(labels < 0) | (labels > 9)]
        raise DataError(f"{where}: labels must be digits 0..9, found {int(bad[0])} "
                        f"({bad.size} label{'s' * (bad.size != 1)} out of range)")
    return images, labels.astype(np.int64)


def stratified_split(labels: np.ndarray, n_first: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of `labels` into (first, second) with `n_first` in the first part.

    Each class contributes in proportion to its size; the rounding remainder goes to
    the classes with the largest fractional share (ties: lower class first), so the
    total is exactly `n_first`. Both index arrays are returned sorted.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if not 0 <= n_first <= n:
        raise ValueError(f"n_first={n_first} must be between 0 and the number of samples {n}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (n_first / n)
    take = np.floor(exact).astype(np.int64)
    remainder = n_first - int(take.sum())
    order = np.lexsort((classes, -(exact - take)))  # largest fraction first, then class id
    take[order[:remainder]] += 1

    rng = np.random.default_rng(seed)
    first = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        first.append(rng.permutation(idx)[:k])
    first_idx = np.sort(np.concatenate(first))
    mask = np.ones(n, dtype=bool)
    mask[first_idx] = False
    return first_idx, np.flatnonzero(mask)


@functools.lru_cache(maxsize=1)
def _shipped_split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    images, labels = _validate(
        read_idx(SHIPPED_DIR / "t10k-images-idx3-ubyte.gz"),
        read_idx(SHIPPED_DIR / "t10k-labels-idx1-ubyte.gz"),
        str(SHIPPED_DIR),
    )
    train_idx, test_idx = stratified_split(labels, N_TRAIN_SHIPPED, SPLIT_SEED)
    out = {"train": (images[train_idx], labels[train_idx]), "test": (images[test_idx], labels[test_idx])}
    for arrs in out.values():
        for a in arrs:
            a.setflags(write=False)  # the cache must not be mutated through a returned array
    return out


def _find(directory: Path, stem: str) -> Path | None:
    # the official names, plus the "train-images.idx3-ubyte" variant some mirrors use
    dotted = stem.replace("-idx", ".idx", 1)
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


@functools.lru_cache(maxsize=4)
def _load_files(img_path: str, lbl_path: str, _stamp: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _validate(read_idx(img_path), read_idx(lbl_path), f"{img_path} / {lbl_path}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _load_dir(directory: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = _PREFIX[split]
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    looked = " and ".join(f"{s}[.gz]" for s in stems)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST {split!r} split: {directory} is not a directory (looking for {looked})")
    found = [_find(directory, s) for s in stems]
    missing = [s for s, f in zip(stems, found) if f is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST {split!r} split not found in {directory}: looked for {looked} "
            f"(standard MNIST names, raw or gzipped); missing: {', '.join(missing)}"
        )
    img, lbl = found
    stamp = tuple(x for p in (img, lbl) for x in (p.stat().st_mtime_ns, p.stat().st_size))
    return _load_files(str(img), str(lbl), stamp)


def mnist(split: str = "train", path: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, 28, 28), labels int64 (N,)) for `split` ("train" or "test").

    path=None: the shipped subset, 8,000 train / 2,000 test (stratified, seed 0).
    path=DIR: full MNIST from DIR's standard IDX files (train-*, t10k-*, raw or .gz).
    The returned arrays are fresh copies; change them freely.
    """
    _check_split(split)
    if path is None:
        images, labels = _shipped_split()[split]
    else:
        images, labels = _load_dir(Path(path).expanduser(), split)
    return images.copy(), labels.copy()
