"""torchvision-style datasets: ``MNIST(root=None, train=True, transform=None)`` and
``CIFAR10(root, train=True, transform=None)``.

``ds[i]`` is ``(image, label)``: the image as float32 in [0, 1], channels first (what
torchvision's ``ToTensor()`` makes), passed through ``transform`` when one is given;
``ds.data`` holds the raw uint8 images and ``ds.targets`` the labels. Nothing is
downloaded: MNIST without a root is the shipped split (8,000 train / 2,000 test digits),
with a root the standard IDX files in that folder; CIFAR-10 is read from the official
*binary* version (``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin``: each
record one label byte then 3,072 pixel bytes, red plane, green, blue), in ``root`` or in
``root/cifar-10-batches-bin``. The pickled "python version" is never read.
"""
from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .idx import DataError
from .mnist import mnist

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_RECORD = 1 + 3 * 32 * 32


class _ImageDataset(abc.ABC):
    """Images (N, C, H, W) uint8 and labels, served one sample at a time as torchvision does.

    Each dataset says how to read image ``i`` as (C, H, W) in ``_chw``.
    """

    data: np.ndarray
    targets: np.ndarray

    def __init__(self, transform: Callable[[Any], Any] | None, target_transform: Callable[[Any], Any] | None):
        self.transform, self.target_transform = transform, target_transform

    @abc.abstractmethod
    def _chw(self, i: int) -> np.ndarray:
        """Image ``i`` as a (C, H, W) uint8 array."""

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        image = self._chw(i).astype(np.float32) / np.float32(255)
        label = int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} images of {self._chw(0).shape}, split={self.split!r})"


def _no_download(download: bool, name: str) -> None:
    if download:
        raise ValueError(f"{name}: tinygrad_cv downloads nothing; put the files in a folder and pass root=")


class MNIST(_ImageDataset):
    """MNIST digits: ``root=None`` is the shipped split; ``root=DIR`` reads full MNIST's IDX files there."""

    def __init__(self, root: str | os.PathLike[str] | None = None, train: bool = True,
                 transform: Callable[[Any], Any] | None = None, target_transform: Callable[[Any], Any] | None = None,
                 download: bool = False):
        _no_download(download, "MNIST")
        super().__init__(transform, target_transform)
        self.split = "train" if train else "test"
        self.data, self.targets = mnist(self.split, path=root)     # (N, 28, 28) uint8, (N,) int64
        self.classes = tuple(str(c) for c in range(10))

    def _chw(self, i: int) -> np.ndarray:
        return self.data[i][None]


def _cifar_files(root: Path, train: bool) -> list[Path]:
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] if train else ["test_batch.bin"]
    for folder in (root, root / "cifar-10-batches-bin"):
        found = [folder / n for n in names if (folder / n).is_file()]
        if found:
            return found
    if any(root.glob("*_batch*")) or (root / "cifar-10-batches-py").is_dir():
        raise DataError(f"CIFAR10: {root} holds no binary batches ({', '.join(names)}); only the binary version "
                        f"(cifar-10-binary.tar.gz) is read, never the pickled python version")
    raise FileNotFoundError(f"CIFAR10: no {names[0]} in {root} or {root / 'cifar-10-batches-bin'}")


def read_cifar10_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One binary CIFAR-10 batch file: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of CIFAR-10 records "
                        f"({_RECORD} bytes each: 1 label byte + 3072 pixel bytes)")
    records = raw.reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{path}: label {int(labels.max())} is not a CIFAR-10 class (0..9); is this the binary version?")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


class CIFAR10(_ImageDataset):
    """CIFAR-10 from the binary batches in ``root``: 50,000 train / 10,000 test images of 3x32x32.

    ``data`` is (N, 32, 32, 3) uint8 as torchvision has it; samples come out channels first.
    """

    def __init__(self, root: str | os.PathLike[str], train: bool = True,
                 transform: Callable[[Any], Any] | None = None, target_transform: Callable[[Any], Any] | None = None,
                 download: bool = False):
        _no_download(download, "CIFAR10")
        super().__init__(transform, target_transform)
        self.split = "train" if train else "test"
        parts = [read_cifar10_batch(p) for p in _cifar_files(Path(root).expanduser(), train)]
        self._images = np.concatenate([p[0] for p in parts])          # (N, 3, 32, 32)
        self.targets = np.concatenate([p[1] for p in parts])
        self.data = self._images.transpose(0, 2, 3, 1)                # (N, 32, 32, 3), a view
        self.classes = CIFAR10_CLASSES

    def _chw(self, i: int) -> np.ndarray:
        return self._images[i]


def cifar10(split: str = "train", path: str | os.PathLike[str] = ".") -> tuple[np.ndarray, np.ndarray]:
    """Like ``mnist(split, path)``: (images uint8 (N, 3, 32, 32), labels int64 (N,)) from the binary batches."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    ds = CIFAR10(path, train=split == "train")
    return ds._images.copy(), ds.targets.copy()
