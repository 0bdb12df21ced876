"""Checkpoints: a model's state_dict as ``.npz`` plus a small JSON header. No pickle, ever.

    tg.checkpoint.save(model, "lenet.npz", model_name="lenet5", epoch=3)
    ckpt = tg.checkpoint.load(model, "lenet.npz")     # loads in place; ckpt.meta["epoch"] == 3

The header (format, version, model, keys with shapes and dtypes, and any metadata)
is JSON stored as a uint8 array under the key ``__header__``. Files are written
to a temporary file in the same directory and moved into place with os.replace,
so a crash never leaves half a checkpoint; they are read with
``np.load(..., allow_pickle=False)`` only.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["save", "load", "Checkpoint", "HEADER_KEY", "FORMAT"]

HEADER_KEY = "__header__"
FORMAT = "tinygrad_cv-checkpoint"
VERSION = 1


class Checkpoint(NamedTuple):
    """What load() returns: the arrays by state_dict key, and the header's metadata."""

    state: dict[str, np.ndarray]
    meta: dict[str, Any]


def save(model: Any, path: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``model.state_dict()`` (or a dict of arrays) and ``meta`` (JSON values) to ``path``."""
    state = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    arrays = {k: np.asarray(getattr(v, "data", v)) for k, v in state.items()}
    for k, a in arrays.items():
        if k == HEADER_KEY:
            raise ValueError(f"checkpoint key {HEADER_KEY!r} is reserved for the header")
        if a.dtype == object:
            raise TypeError(f"checkpoint entry {k!r} is not a numeric array (dtype object)")
    header = {
        "format": FORMAT, "version": VERSION,
        "model": meta.pop("model_name", None) or type(model).__name__,
        "shapes": {k: list(a.shape) for k, a in arrays.items()},
        "dtypes": {k: str(a.dtype) for k, a in arrays.items()},
        "meta": meta,
    }
    try:
        text = json.dumps(header)
    except TypeError as e:
        raise TypeError(f"checkpoint metadata must be JSON values (numbers, strings, lists, dicts): {e}") from None
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot save checkpoint {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)                 # mkstemp's 0600 -> the usual file mode
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{HEADER_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = list(z.files)
            raw = z[HEADER_KEY] if HEADER_KEY in files else None
            arrays = {k: z[k] for k in files if k != HEADER_KEY}
        header = json.loads(raw.tobytes().decode("utf-8")) if raw is not None else None
    except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, ValueError) as e:
        # ValueError covers object arrays: they would need pickle, which is never used here
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
    if header is None:
        raise ValueError(f"{path} is not a tinygrad_cv checkpoint (no {HEADER_KEY!r} entry)")
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tinygrad_cv checkpoint (header format {header.get('format')!r})"
                         if isinstance(header, dict) else f"{path} has a malformed header")
    return header, arrays


def load(model: Any, path: str | os.PathLike[str], strict: bool = True) -> Checkpoint:
    """Read a checkpoint; with a model, check keys and shapes against it and load in place.

    A mismatch raises ValueError naming the missing keys, the unexpected keys and every
    shape difference. ``model=None`` only reads the file.
    """
    path = Path(path)
    header, arrays = _read(path)
    meta = dict(header.get("meta", {}))
    meta.setdefault("model", header.get("model"))
    if model is not None:
        own = model.state_dict()
        missing = [k for k in own if k not in arrays]
        unexpected = [k for k in arrays if k not in own]
        shapes = [f"{k}: model {tuple(own[k].shape)}, file {tuple(arrays[k].shape)}"
                  for k in own if k in arrays and tuple(own[k].shape) != tuple(arrays[k].shape)]
        problems = ([f"missing keys {missing}"] if missing and strict else []) + \
                   ([f"unexpected keys {unexpected}"] if unexpected and strict else []) + \
                   (["shape mismatch " + "; ".join(shapes)] if shapes else [])
        if problems:
            raise ValueError(f"checkpoint {path} (model {header.get('model')!r}) does not fit "
                             f"{type(model).__name__}: " + "; ".join(problems))
        model.load_state_dict({k: v for k, v in arrays.items() if k in own}, strict=False)
    return Checkpoint(arrays, meta)
