"""Kernels behind one small interface, chosen at run time.

``"numpy"`` is the readable reference (backends/reference.py), ``"numba"`` the
JIT-compiled parallel CPU kernels (backends/cpu/: direct.py, gemm.py, pool.py),
``"cuda"`` numba.cuda kernels (backends/cuda.py). Every backend module implements
the one interface written down in backends/interface.py, arrays in and arrays out;
none of them knows about nodes. Shape helpers shared by all: backends/shapes.py.
A backend's module is imported on first use, so importing tinygrad_cv compiles and
loads nothing; kernels then compile on their first call (announced by
backends.compiling.CompileWatch) and are cached on disk.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

BACKENDS = {"numpy": "reference", "numba": "cpu", "cuda": "cuda"}
DEFAULT = "numba"

_selected: str | None = None
_loaded: dict[str, ModuleType] = {}    # every op asks for its kernels: a dict hit, not an import


def _check(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def set_backend(name: str) -> None:
    """Select the kernels that conv and pool run on: "numpy", "numba" or "cuda"."""
    global _selected
    module = load(_check(name))
    if hasattr(module, "ensure_available"):
        module.ensure_available()
    _selected = name


def get_backend() -> str:
    """The selected backend's name (from set_backend, else $TGCV_BACKEND, else "numba")."""
    global _selected
    if _selected is None:
        _selected = _check(os.environ.get("TGCV_BACKEND", DEFAULT).strip().lower() or DEFAULT)
    return _selected


def load(name: str) -> ModuleType:
    """The kernel module of backend ``name``, imported on first use."""
    module = _loaded.get(name)
    if module is None:
        module = importlib.import_module(f"{__name__}.{BACKENDS[_check(name)]}")
        if name != "numpy":
            from . import compiling
            compiling.install()      # hear numba's compile events from now on (once)
        _loaded[name] = module
    return module


def kernels() -> ModuleType:
    """The kernel module of the selected backend."""
    return load(get_backend())
