"""Reader (and a small writer) for the IDX format that MNIST ships in.

An IDX file is a 4-byte magic number -- two zero bytes, a type code, the number
of dimensions -- then one big-endian uint32 per dimension, then the payload in
row-major order, big-endian. Files may be gzip-compressed; that is detected from
the gzip magic bytes, not from the file name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataError", "read_idx", "write_idx", "IDX_TYPES"]

_GZIP_MAGIC = b"\x1f\x8b"

# type code -> big-endian numpy dtype
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_FOR_KIND: dict[tuple[str, int], int] = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPES.items()}


class DataError(ValueError):
    """A data file exists but its content is not what it should be."""


MAX_BYTES = 1 << 29          # 512 MiB of payload: full MNIST is 47 MB; more is refused (max_bytes=)
_MAX_DEFLATE_RATIO = 1100    # deflate cannot expand more than ~1032x: a bigger claim is impossible
_CHUNK = 1 << 22


def _open(path: Path):
    """The file, or its decompressed stream when it starts with the gzip magic bytes."""
    f = open(path, "rb")
    if f.read(2) == _GZIP_MAGIC:
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), True
    f.seek(0)
    return f, False


def _read_exact(stream, n: int, path: Path, what: str) -> bytes:
    """At most ``n`` bytes: memory grows only with the data that really arrives (no bomb preallocation)."""
    parts, got = [], 0
    try:
        while got < n:
            chunk = stream.read(min(_CHUNK, n - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: gzip stream is corrupt or truncated ({e})") from e
    return b"".join(parts)


def read_idx(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-endian numpy array.

    Raises FileNotFoundError if the file is missing and DataError if the header
    is malformed or the payload length does not match the header's dimensions.
    The header's dimensions are checked before any payload is read: against
    ``max_bytes``, against the file's size (what a gzip stream of that size can
    possibly hold) and then against the bytes that actually arrive, so a small
    file that claims a huge array never makes the reader allocate it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    size = path.stat().st_size
    stream, gz = _open(path)
    with stream:
        buf = _read_exact(stream, 4, path, "magic")
        if len(buf) < 4:
            raise DataError(f"{path}: file is {len(buf)} bytes, too short for the 4-byte IDX magic number")
        zero0, zero1, code, ndim = buf[0], buf[1], buf[2], buf[3]
        if zero0 != 0 or zero1 != 0:
            raise DataError(
                f"{path}: bad IDX magic number 0x{buf[:4].hex()}: the first two bytes must be zero "
                f"(is this an IDX file?)"
            )
        if code not in IDX_TYPES:
            known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
            raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
        if ndim == 0:
            raise DataError(f"{path}: IDX header declares 0 dimensions")
        raw_dims = _read_exact(stream, 4 * ndim, path, "dims")
        if len(raw_dims) < 4 * ndim:
            raise DataError(f"{path}: header declares {ndim} dims but the file ends after {4 + len(raw_dims)} bytes")
        dims = struct.unpack(f">{ndim}I", raw_dims)
        dtype = IDX_TYPES[code]
        expected = dtype.itemsize
        for d in dims:
            expected *= d                                   # Python ints: no overflow
        if expected > max_bytes:
            raise DataError(f"{path}: header dims {tuple(dims)} of {dtype.name} need {expected:,} bytes, more than "
                            f"the limit of {max_bytes:,} (read_idx(..., max_bytes=) to allow it)")
        if gz and expected > size * _MAX_DEFLATE_RATIO + 1024:
            raise DataError(
                f"{path}: a {size:,}-byte gzip file cannot hold the {expected:,} bytes that header dims "
                f"{tuple(dims)} of {dtype.name} need (truncated or forged)")
        payload = _read_exact(stream, expected, path, "payload")
        trailing = len(_read_exact(stream, 1, path, "end")) if len(payload) == expected else 0
    actual = len(payload) + trailing
    if actual != expected:
        raise DataError(
            f"{path}: payload is {'more than ' * bool(trailing)}{actual} bytes but header dims {tuple(dims)} of "
            f"{dtype.name} need {expected} bytes ({'truncated' if actual < expected else 'trailing data'})"
        )
    arr = np.frombuffer(payload, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file; gzip it if `compress` (default: path ends with .gz)."""
    path = Path(path)
    arr = np.asarray(array)
    key = (arr.dtype.kind if arr.dtype.kind != "b" else "u", arr.dtype.itemsize)
    if key not in _CODE_FOR_KIND:
        raise DataError(f"cannot write dtype {arr.dtype} as IDX (supported: u1, i1, i2, i4, f4, f8)")
    if arr.ndim == 0 or arr.ndim > 255:
        raise DataError(f"IDX needs 1..255 dimensions, got shape {arr.shape}")
    code = _CODE_FOR_KIND[key]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()
    data = header + payload
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
