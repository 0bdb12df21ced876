"""The one random generator behind initialization, dropout and tg.randn."""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed every random draw the library makes (init, dropout, randn, shuffles without a seed)."""
    global _rng
    _rng = np.random.default_rng(seed)


def rng() -> np.random.Generator:
    """The library's generator."""
    return _rng
