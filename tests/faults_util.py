"""Hostile files for the fault tests and for benchmarks/probe_faults.py (no pickle is ever written).

Every builder writes a small file that lies about what it holds: a .npy header that
declares more data than there is, a deflate/gzip stream that expands to gigabytes,
arrays of strings, objects, complex numbers or NaN inside an otherwise valid checkpoint.
"""
from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tinygrad_cv import checkpoint

ROOT = Path(__file__).resolve().parents[1]


def npy_header(shape: tuple[int, ...], descr: str, fortran: bool = False) -> bytes:
    """A version 1.0 .npy header (magic, length, dict) for ``shape`` of dtype ``descr``."""
    text = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)})
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def header_member(model: str = "LeNet5", **extra: Any) -> bytes:
    raw = json.dumps({"format": checkpoint.FORMAT, "version": 1, "model": model, "meta": {}, **extra}).encode()
    return npy_header((len(raw),), "|u1") + raw


def write_members(path: Path, members: dict[str, bytes | tuple[bytes, int]], deflate: bool = False) -> Path:
    """A zip of ``name.npy`` members; a value ``(header, n)`` streams ``n`` zero bytes after the header."""
    comp = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=comp, allowZip64=True) as zf:
        for name, body in members.items():
            if isinstance(body, tuple):
                head, n = body
                with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                    f.write(head)
                    zero = bytes(1 << 22)
                    while n > 0:
                        f.write(zero[:min(n, len(zero))])
                        n -= len(zero)
            else:
                zf.writestr(f"{name}.npy", body)
    return path


def checkpoint_of(path: Path, arrays: dict[str, tuple[str, tuple[int, ...], bytes]], model: str = "LeNet5") -> Path:
    """A tinygrad_cv checkpoint whose entries are raw (descr, shape, payload) triples, written by hand."""
    members: dict[str, bytes | tuple[bytes, int]] = {checkpoint.HEADER_KEY: header_member(model)}
    for k, (descr, shape, payload) in arrays.items():
        members[k] = npy_header(shape, descr) + payload
    return write_members(path, members)


def lenet_state() -> dict[str, np.ndarray]:
    from tinygrad_cv import models
    return models.lenet5().state_dict()


def lenet_checkpoint_with(path: Path, key: str, descr: str, shape: tuple[int, ...], payload: bytes) -> Path:
    """A LeNet-5 checkpoint, every entry right except ``key``."""
    arrays = {k: (np.lib.format.dtype_to_descr(a.dtype), a.shape, a.tobytes()) for k, a in lenet_state().items()}
    arrays[key] = (descr, shape, payload)
    return checkpoint_of(path, arrays)


def deflate_bomb(path: Path, nbytes: int, key: str = "features.0.weight") -> Path:
    """A LeNet-5-like checkpoint whose ``key`` declares (and really holds) ``nbytes`` of zeros, deflated."""
    n = nbytes // 4
    members: dict[str, bytes | tuple[bytes, int]] = {checkpoint.HEADER_KEY: header_member()}
    members[key] = (npy_header((n,), "<f4"), n * 4)
    return write_members(path, members, deflate=True)


def idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def gzip_bomb_idx(path: Path, dims: tuple[int, ...], real_bytes: int | None = None) -> Path:
    """A gzipped uint8 IDX file declaring ``dims``, holding ``real_bytes`` zeros (default: all of them)."""
    n = int(np.prod(dims, dtype=np.int64)) if real_bytes is None else real_bytes
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(idx_header(0x08, dims))
        zero = bytes(1 << 22)
        while n > 0:
            f.write(zero[:min(n, len(zero))])
            n -= len(zero)
    return path


def mnist_dir(d: Path, n_train: int = 64, n_test: int = 32, labels: np.ndarray | None = None) -> Path:
    from tinygrad_cv.data import write_idx

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(d / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        y = rng.integers(0, 10, n).astype(np.uint8) if labels is None or prefix == "t10k" else labels
        write_idx(d / f"{prefix}-labels-idx1-ubyte", y)
    return d


def run_tgcv(args: list[str], timeout: float = 120, env: dict[str, str] | None = None, stdin: Any = None,
             cwd: Path | None = None) -> dict[str, Any]:
    """Run ``python -m tinygrad_cv ARGS`` with a timeout; the result has rc, out, err, seconds, max_rss_mb
    (of that process alone, from wait4) and hung (its process group is killed on a timeout, so nothing
    is left running)."""
    return run_process([sys.executable, "-m", "tinygrad_cv", *args], timeout, env, stdin, cwd)


def run_process(argv: list[str], timeout: float = 120, env: dict[str, str] | None = None, stdin: Any = None,
                cwd: Path | None = None) -> dict[str, Any]:
    import threading

    full_env = dict(os.environ, NO_COLOR="1", **(env or {}))
    start = time.perf_counter()
    closed = stdin == "closed"                       # as the shell's <&-: the child has no fd 0 at all
    p = subprocess.Popen(argv, cwd=cwd or ROOT, env=full_env,
                         stdin=subprocess.DEVNULL if stdin is None or closed else stdin, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         preexec_fn=(lambda: os.close(0)) if closed else None)
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    readers = [threading.Thread(target=drain, args=(n, s), daemon=True) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in readers:
        t.start()
    hung, status, usage = False, 0, None
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - start > timeout:
            hung = True
            os.killpg(p.pid, 9)
            _, status, usage = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    try:
        os.killpg(p.pid, 9)                 # anything the command left behind (a dot child...) goes too
    except (ProcessLookupError, PermissionError):
        pass
    for t in readers:
        t.join(5)
    return {"rc": p.returncode, "out": chunks.get("out", b"").decode(errors="replace"),
            "err": chunks.get("err", b"").decode(errors="replace"), "seconds": time.perf_counter() - start,
            "max_rss_mb": (usage.ru_maxrss / 1024) if usage else 0.0, "hung": hung}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def leftover_temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))
