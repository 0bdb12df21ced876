"""TensorDataset and DataLoader, with PyTorch's names.

The fast path indexes whole numpy arrays once per batch; there is no per-sample
Python loop. Batches come out as tuples of ``tinygrad_cv.tensors.Tensor``:
floating arrays as float32, integer arrays as int64, except that uint8 batches
shaped (N, H, W) or (N, C, H, W) are taken as pixels and go through
:func:`to_float` (scaled to [0, 1], (N, H, W) gains a channel axis), so ``DataLoader(TensorDataset(*mnist()), 64)`` yields
((64, 1, 28, 28) float32, (64,) int64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from ..random import rng as _library_rng
from ..tensors import Tensor
from .transforms import to_float

__all__ = ["TensorDataset", "DataLoader", "Dataset"]


class Dataset(Protocol):
    """Anything with a length and per-sample indexing returning a tuple of arrays/numbers."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Any: ...


def _as_array(a: Any) -> np.ndarray:
    data = getattr(a, "data", None)  # a Tensor: take its ndarray
    return data if isinstance(data, np.ndarray) else np.asarray(a)


class TensorDataset:
    """Wraps arrays that share their first dimension; ``ds[i]`` is a tuple of their i-th rows.

    Indexing with an integer array returns whole batches (a tuple of arrays).
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_array(a) for a in arrays)
        for a in self.arrays:
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: arrays need a first (sample) dimension, got a scalar {a!r}")
        shapes = [a.shape for a in self.arrays]
        if len({s[0] for s in shapes}) != 1:
            raise ValueError(
                f"TensorDataset: all arrays must have the same first dimension (number of samples), "
                f"got shapes {', '.join(map(str, shapes))}"
            )

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)

    def __repr__(self) -> str:
        return f"TensorDataset({', '.join(f'{a.dtype}{a.shape}' for a in self.arrays)})"


def _convert(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8 and a.ndim in (3, 4):  # a batch of pixel images
        return to_float(a)
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    if a.dtype.kind in "iub":
        return a.astype(np.int64, copy=False)
    raise TypeError(f"DataLoader: cannot turn an array of dtype {a.dtype} into a Tensor")


class DataLoader:
    """Iterate over a dataset in batches of Tensors.

    shuffle: a new permutation every epoch from a numpy Generator seeded with `seed`
    (same seed -> same sequence of epochs); with seed=None the seed is drawn from the
    library generator, so ``tg.manual_seed`` makes it reproducible too. transform: a callable (batch, rng) -> batch
    (see transforms.Compose) applied to the first array of each batch (the images)
    after dtype conversion, with its own Generator derived from `seed`.
    """

    def __init__(
        self,
        dataset: Dataset | TensorDataset | tuple[np.ndarray, ...],
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    ) -> None:
        if isinstance(dataset, tuple) and all(isinstance(a, np.ndarray) for a in dataset):
            dataset = TensorDataset(*dataset)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must support len() and indexing, got {type(dataset).__name__}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable (batch, rng) -> batch, got {transform!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.transform = transform
        # separate streams, so adding a transform does not change the shuffle order
        entropy = seed if seed is not None else int(_library_rng().integers(2**63))
        shuffle_ss, aug_ss = np.random.SeedSequence(entropy).spawn(2)
        self._shuffle_rng = np.random.default_rng(shuffle_ss)
        self._aug_rng = np.random.default_rng(aug_ss)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _batches(self) -> Iterator[np.ndarray]:
        n = len(self.dataset)
        order = self._shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]

    def _fetch(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        if isinstance(self.dataset, TensorDataset):
            return self.dataset[idx]
        samples = [self.dataset[int(i)] for i in idx]  # generic datasets: one sample at a time
        if not isinstance(samples[0], tuple):
            return (np.stack([_as_array(s) for s in samples]),)
        return tuple(np.stack([_as_array(s[k]) for s in samples]) for k in range(len(samples[0])))

    def numpy_batches(self) -> Iterator[tuple[np.ndarray, ...]]:
        """Like iterating the loader, but yields converted numpy arrays instead of Tensors."""
        for idx in self._batches():
            arrays = [_convert(a) for a in self._fetch(idx)]
            if self.transform is not None:
                arrays[0] = np.asarray(self.transform(arrays[0], self._aug_rng))
            yield tuple(arrays)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        for arrays in self.numpy_batches():
            yield tuple(Tensor(a) for a in arrays)

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last}, transform={self.transform!r})"
        )
