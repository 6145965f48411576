"""Structural check of a MATLAB level-5 .mat file before scipy reads it.

``scipy.io.loadmat`` trusts the type and size fields of a data element: a
single flipped bit in a data type (e.g. miDOUBLE 9 -> the reserved 8) makes
its compiled reader fault the whole process (SIGBUS, found by
tests/test_fuzz_spcup.py), which no ``except`` can catch. This walks the
element tags (inflating miCOMPRESSED elements, bounded) and refuses, with a
:class:`~streams.cohort.CohortError` naming the file and variable, anything
whose numeric data does not have a valid type and exactly the size its
dimensions say. Only numeric and char arrays are accepted: the SP Cup files
hold nothing else.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from streams.cohort import CohortError

__all__ = ["check_mat5"]

#: bytes per element of the numeric miTYPEs
_MI_SIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_MX_CHAR = 4
_MX_NUMERIC = set(range(6, 16))  # mxDOUBLE .. mxUINT64
_COMPLEX = 0x0800
MAX_INFLATED = 512 * 1024**2


def _tag(b: bytes, pos: int, end: str) -> tuple[int, int, int, int]:
    """(type, nbytes, data start, next element) of the tag at ``pos``; small elements included."""
    if pos + 8 > len(b):
        raise ValueError("truncated element tag")
    first, second = struct.unpack_from(end + "II", b, pos)
    if first >> 16:  # small data element: 2-byte size, 2-byte type, data in the 4 bytes after
        return first & 0xFFFF, first >> 16, pos + 4, pos + 8
    return first, second, pos + 8, pos + 8 + second + (-second % 8)


def _check_matrix(m: bytes, end: str) -> str:
    t, n, d, nxt = _tag(m, 0, end)
    if t != 6 or n != 8 or d + 8 > len(m):
        raise ValueError("array flags missing")
    flags = struct.unpack_from(end + "I", m, d)[0]
    cls = flags & 0xFF
    t, n, d, nxt2 = _tag(m, nxt, end)
    if t != 5 or n % 4 or n < 8 or d + n > len(m):
        raise ValueError("dimensions missing")
    dims = struct.unpack_from(end + f"{n // 4}i", m, d)
    t, n, d, nxt3 = _tag(m, nxt2, end)
    if t not in (1, 2) or d + n > len(m):
        raise ValueError("array name missing")
    name = m[d : d + n].decode("ascii", "replace")
    if cls not in _MX_NUMERIC and cls != _MX_CHAR:
        raise ValueError(f"field {name!r}: MATLAB class {cls} is not a numeric or char array")
    if any(x < 0 for x in dims):
        raise ValueError(f"field {name!r}: negative dimension {dims}")
    count = 1
    for x in dims:
        count *= x
    pos = nxt3
    for part in ("real", "imaginary") if flags & _COMPLEX else ("real",):
        t, n, d, pos = _tag(m, pos, end)
        if t not in _MI_SIZE:
            raise ValueError(f"field {name!r}: {part} part has invalid data type {t}")
        if t < 16 and n != count * _MI_SIZE[t]:
            raise ValueError(f"field {name!r}: {part} part holds {n} bytes, dimensions {dims} need {count * _MI_SIZE[t]}")
        if d + n > len(m):
            raise ValueError(f"field {name!r}: {part} part runs past the element")
    return name


def check_mat5(path: str | Path) -> None:
    """Raise CohortError unless ``path`` is a well-formed MATLAB 5 file of numeric/char arrays."""
    path = Path(path)
    b = path.read_bytes()
    try:
        if len(b) < 128 or not b.startswith(b"MATLAB 5.0 MAT-file"):
            raise ValueError("header: not a MATLAB 5.0 MAT-file")
        end = {b"IM": "<", b"MI": ">"}.get(b[126:128])
        if end is None:
            raise ValueError("header: bad endian indicator")
        pos = 128
        while pos < len(b):
            t, n, d, nxt = _tag(b, pos, end)
            if d + n > len(b):
                raise ValueError(f"element at byte {pos} runs past the end of the file (truncated)")
            if t == _MI_COMPRESSED:
                z = zlib.decompressobj()
                m = z.decompress(b[d : d + n], MAX_INFLATED)
                if z.unconsumed_tail:
                    raise ValueError(f"element at byte {pos} inflates past {MAX_INFLATED} bytes")
                t2, n2, d2, _ = _tag(m, 0, end)
                if t2 != _MI_MATRIX or d2 + n2 > len(m):
                    raise ValueError(f"compressed element at byte {pos} is not a whole array")
                _check_matrix(m[d2 : d2 + n2], end)
                nxt = d + n  # compressed elements are not padded
            elif t == _MI_MATRIX:
                _check_matrix(b[d : d + n], end)
            else:
                raise ValueError(f"element at byte {pos}: unexpected top-level data type {t}")
            pos = nxt
    except (ValueError, struct.error, zlib.error) as e:
        raise CohortError(f"{path}: not a readable MATLAB .mat file: {str(e)[:160]}") from None
