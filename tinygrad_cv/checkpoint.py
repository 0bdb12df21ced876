"""Checkpoints: a model's state_dict as ``.npz`` plus a small JSON header. No pickle, ever.

    tg.checkpoint.save(model, "lenet.npz", model_name="lenet5", epoch=3)
    ckpt = tg.checkpoint.load(model, "lenet.npz")     # loads in place; ckpt.meta["epoch"] == 3

The header (format, version, model, keys with shapes and dtypes, and any metadata)
is JSON stored as a uint8 array under the key ``__header__``. Files are written
to a temporary file in the same directory and moved into place with os.replace,
so a crash never leaves half a checkpoint (a save stopped by SIGTERM or SIGHUP removes
its temporary file; one left by kill -9 is swept by the next save of the same file).

Reading never trusts the file: the zip directory and every member's .npy header are
checked (numeric dtype, declared shape against the member's size and against the
model's own shapes) before any data is decompressed, so a small file that claims a
huge array (a deflate bomb) is refused without using memory; values must be finite
and fit the model's dtype. Nothing is ever unpickled.
"""
from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["save", "load", "Checkpoint", "HEADER_KEY", "FORMAT", "check_array", "MAX_UNCHECKED_BYTES"]

HEADER_KEY = "__header__"
FORMAT = "tinygrad_cv-checkpoint"
VERSION = 1
MAX_HEADER_BYTES = 1 << 20          # the JSON header is small; more is not a checkpoint
MAX_UNCHECKED_BYTES = 1 << 30       # entries no model shape vouches for (load(None, ...)) together
_CHUNK = 1 << 22                    # decompressed 4 MiB at a time, straight into the array
_NUMERIC = "fiub"                   # float, int, uint, bool
_STALE_SECONDS = 3600               # a temp file without a live owner is swept after this long


class Checkpoint(NamedTuple):
    """What load() returns: the arrays by state_dict key, and the header's metadata."""

    state: dict[str, np.ndarray]
    meta: dict[str, Any]


def check_array(key: str, a: np.ndarray, dtype: np.dtype | None = None) -> None:
    """Refuse (ValueError naming ``key``) an array that is not real numbers, holds NaN/inf, or does
    not fit ``dtype`` (the model's): what a checkpoint or ``load_state_dict`` may put into a model."""
    if a.dtype.kind not in _NUMERIC:
        what = {"O": "objects, which would need pickle", "c": "complex numbers", "U": "strings",
                "S": "bytes", "V": "structured records", "M": "dates", "m": "time deltas"}
        raise ValueError(f"entry {key!r} holds {what.get(a.dtype.kind, 'non-numbers')} (dtype {a.dtype}), "
                         f"not real numbers")
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"entry {key!r} holds {bad} NaN or infinite value{'s' * (bad != 1)} of {a.size}")
    if dtype is not None and np.dtype(dtype).kind == "f" and a.size and a.dtype.kind in "fiu":
        limit = float(np.finfo(dtype).max)
        big = float(np.max(np.abs(a)))
        if big > limit:
            raise ValueError(f"entry {key!r} holds {big:.3g}, too large for the model's {np.dtype(dtype)} "
                             f"(max {limit:.3g})")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _sweep_stale(path: Path) -> None:
    """Remove temporary files a killed save of ``path`` left behind (owner gone, or old)."""
    prefix = _temp_prefix(path)
    try:
        entries = list(os.scandir(path.parent if str(path.parent) else "."))
    except OSError:
        return
    pattern = re.compile(re.escape(prefix) + r"(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp$")
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(m[1]) if m[1] else None
        try:
            if pid is not None and pid != os.getpid() and _alive(pid):
                continue
            if pid is None and time.time() - entry.stat().st_mtime < _STALE_SECONDS:
                continue
            if pid == os.getpid():
                continue
            os.unlink(entry.path)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Signalled(BaseException):
    """Raised inside save() when SIGTERM/SIGHUP arrive, so the temporary file is removed first."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _catch_signals() -> dict[int, Any]:
    """While a save runs, turn SIGTERM and SIGHUP into an exception (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: Any) -> None:
        raise _Signalled(signum)

    old = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                old[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
    return old


def _make_temp(path: Path, directory: Path, made: list[str]) -> int:
    """mkstemp with signals held back until its name is in ``made``, so that the cleanup can find the file."""
    held = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if held:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        fd, name = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=directory)
        made.append(name)
        return fd
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def save(model: Any, path: str | os.PathLike[str], **meta: Any) -> Path:
    """Write ``model.state_dict()`` (or a dict of arrays) and ``meta`` (JSON values) to ``path``."""
    state = model.state_dict() if hasattr(model, "state_dict") else dict(model)
    arrays = {k: np.asarray(getattr(v, "data", v)) for k, v in state.items()}
    for k, a in arrays.items():
        if k == HEADER_KEY:
            raise ValueError(f"checkpoint key {HEADER_KEY!r} is reserved for the header")
        try:
            check_array(k, a)
        except ValueError as e:
            raise (TypeError if a.dtype.kind not in _NUMERIC else ValueError)(f"checkpoint {e}") from None
    header = {
        "format": FORMAT, "version": VERSION,
        "model": meta.pop("model_name", None) or type(model).__name__,
        "shapes": {k: list(a.shape) for k, a in arrays.items()},
        "dtypes": {k: str(a.dtype) for k, a in arrays.items()},
        "meta": meta,
    }
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint metadata must be JSON values (numbers, strings, lists, dicts): {e}") from None
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot save checkpoint {path}: directory {directory} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot save checkpoint {path}: it is a directory")
    _sweep_stale(path)
    old_handlers = _catch_signals()
    signalled = None
    made: list[str] = []
    try:
        fd = _make_temp(path, directory, made)
        tmp = made[0]
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                 # mkstemp's 0600 -> the usual file mode
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{HEADER_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if made and os.path.exists(made[0]):
            os.unlink(made[0])
        if not isinstance(e, _Signalled):
            raise
        signalled = e.signum
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    if signalled is not None:                         # the temp file is gone: now let the signal act
        os.kill(os.getpid(), signalled)
        raise KeyboardInterrupt(f"signal {signalled} during save")
    return path


class _Member(NamedTuple):
    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int                 # where the data starts inside the member

    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for d in self.shape:
            n *= d
        return n


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> _Member:
    """A member's .npy header, read without decompressing its data; its size must match it exactly."""
    fmt = np.lib.format
    with zf.open(info) as m:
        try:
            version = fmt.read_magic(m)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(m, max_header_size=10_000)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(m, max_header_size=10_000)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as e:
            if "pickle" in str(e).lower() or "object" in str(e).lower():
                raise ValueError(f"entry {key!r} holds objects, which would need pickle (never read)") from None
            raise ValueError(f"entry {key!r} has a malformed .npy header ({e})") from None
        offset = m.tell()
    member = _Member(info, tuple(int(d) for d in shape), np.dtype(dtype), bool(fortran), offset)
    if member.dtype.kind not in _NUMERIC or member.dtype.hasobject:
        check_array(key, np.empty(0, member.dtype))       # raises, naming the key and what it holds
    if info.file_size != offset + member.nbytes:
        raise ValueError(f"entry {key!r} declares shape {member.shape} of {member.dtype} ({member.nbytes:,} bytes) "
                         f"but its member holds {info.file_size - offset:,} bytes")
    return member


def _read_member(zf: zipfile.ZipFile, member: _Member) -> np.ndarray:
    """The array, decompressed chunk by chunk into its own buffer (peak memory: the array)."""
    flat = np.empty(member.nbytes, dtype=np.uint8)
    with zf.open(member.info) as m:
        m.read(member.offset)
        pos = 0
        while pos < member.nbytes:
            chunk = m.read(min(_CHUNK, member.nbytes - pos))
            if not chunk:
                raise EOFError(f"member {member.info.filename} ends early")
            flat[pos:pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            pos += len(chunk)
    return flat.view(member.dtype).reshape(member.shape, order="F" if member.fortran else "C")


def _open_checked(path: Path, expected: dict[str, tuple[tuple[int, ...], np.dtype]] | None, strict: bool,
                  max_bytes: int, model_name: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Header and arrays of ``path``, every size checked before anything is decompressed."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] != b"PK":
        raise ValueError(f"{path} is not a readable checkpoint: not a .npz (zip) file "
                         f"(it starts with {magic!r}, a .npz starts with b'PK')")
    with zipfile.ZipFile(path) as zf:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ValueError(f"{path} is not a readable checkpoint: unexpected member {info.filename!r}")
            infos[info.filename[:-4]] = info
        if HEADER_KEY not in infos:
            raise ValueError(f"{path} is not a tinygrad_cv checkpoint (no {HEADER_KEY!r} entry)")
        if infos[HEADER_KEY].file_size > MAX_HEADER_BYTES:
            raise ValueError(f"{path} has a malformed header ({infos[HEADER_KEY].file_size:,} bytes, "
                             f"more than {MAX_HEADER_BYTES:,})")
        hm = _npy_header(zf, infos[HEADER_KEY], HEADER_KEY)
        raw = _read_member(zf, hm)
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ValueError(f"{path} has a malformed header (not JSON text)") from None
        if not isinstance(header, dict):
            raise ValueError(f"{path} has a malformed header")
        if header.get("format") != FORMAT:
            raise ValueError(f"{path} is not a tinygrad_cv checkpoint (header format {header.get('format')!r})")
        members = {k: _npy_header(zf, info, k) for k, info in infos.items() if k != HEADER_KEY}
        if expected is not None:
            missing = [k for k in expected if k not in members]
            unexpected = [k for k in members if k not in expected]
            shapes = [f"{k}: model {expected[k][0]}, file {m.shape}"
                      for k, m in members.items() if k in expected and m.shape != expected[k][0]]
            problems = ([f"missing keys {missing}"] if missing and strict else []) + \
                       ([f"unexpected keys {unexpected}"] if unexpected and strict else []) + \
                       (["shape mismatch " + "; ".join(shapes)] if shapes else [])
            if problems:
                raise ValueError(f"checkpoint {path} (model {header.get('model')!r}) does not fit "
                                 f"{model_name}: " + "; ".join(problems))
        unchecked = sum(m.nbytes for k, m in members.items() if expected is None or k not in expected)
        if unchecked > max_bytes:
            raise ValueError(f"{path}: its entries declare {unchecked:,} bytes that no model shape accounts for, "
                             f"more than the limit of {max_bytes:,} (max_bytes=)")
        arrays = {}
        for k, m in members.items():
            a = _read_member(zf, m)
            check_array(k, a, expected[k][1] if expected is not None and k in expected else None)
            arrays[k] = a
    return header, arrays


def _read(path: Path, expected: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None, strict: bool = True,
          max_bytes: int = MAX_UNCHECKED_BYTES, model_name: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        return _open_checked(path, expected, strict, max_bytes, model_name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, UnicodeDecodeError, NotImplementedError) as e:
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
    except ValueError as e:
        text = str(e)
        if text.startswith("entry "):
            raise ValueError(f"{path} is not a readable checkpoint: {text}") from None
        raise
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None


def load(model: Any, path: str | os.PathLike[str], strict: bool = True,
         max_bytes: int = MAX_UNCHECKED_BYTES) -> Checkpoint:
    """Read a checkpoint; with a model, check keys and shapes against it and load in place.

    A mismatch raises ValueError naming the missing keys, the unexpected keys and every
    shape difference, before any array is decompressed. ``model=None`` only reads the file;
    entries that no model shape accounts for may hold ``max_bytes`` together. Non-numeric,
    complex or non-finite arrays, and values too large for the model's dtype, are refused
    with their key named.
    """
    path = Path(path)
    expected = None
    if model is not None:
        own = model.state_dict()
        expected = {k: (tuple(np.shape(v)), np.asarray(getattr(v, "data", v)).dtype) for k, v in own.items()}
    header, arrays = _read(path, expected, strict, max_bytes, type(model).__name__)
    meta = dict(header.get("meta", {})) if isinstance(header.get("meta", {}), dict) else {}
    meta.setdefault("model", header.get("model"))
    if model is not None:
        model.load_state_dict({k: v for k, v in arrays.items() if k in expected}, strict=False)
    return Checkpoint(arrays, meta)


def load_state(path: str | os.PathLike[str], max_bytes: int = MAX_UNCHECKED_BYTES) -> dict[str, np.ndarray]:
    """``tg.load(path)``: the arrays of a checkpoint as a state_dict, in the order they were saved,
    for ``model.load_state_dict(tg.load(path))`` (PyTorch's idiom; ``tg.save(state_dict, path)``
    writes the file)."""
    return dict(load(None, path, max_bytes=max_bytes).state)
