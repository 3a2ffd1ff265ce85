"""A strict, independent CBOR reader (RFC 8949), written for the tests so
that what our publisher writes is not only checked with cbor2.

Tags come back as ``Tag(tag, value)`` (no semantic conversion, so tag 1
stays an integer). With ``deterministic`` the RFC 8949 §4.2.1 core
deterministic rules are enforced: shortest-form arguments, definite lengths
only, map keys in bytewise lexicographic order of their encodings, and (for
this profile) no floating point. Duplicate map keys and trailing bytes are
always errors.
"""

from __future__ import annotations

import struct
from collections import namedtuple

Tag = namedtuple("Tag", "tag value")


class CBORError(ValueError):
    pass


def decode(data: bytes, *, deterministic: bool = True):
    """Decode exactly one CBOR item spanning all of ``data``."""
    value, pos = _item(data, 0, deterministic)
    if pos != len(data):
        raise CBORError(f"{len(data) - pos} trailing byte(s) after the item at offset {pos}")
    return value


def _item(data: bytes, pos: int, det: bool):
    if pos >= len(data):
        raise CBORError("truncated: item expected")
    start = pos
    ib = data[pos]
    pos += 1
    major, ai = ib >> 5, ib & 0x1F
    if ai < 24:
        arg = ai
    elif ai <= 27:
        n = 1 << (ai - 24)
        if pos + n > len(data):
            raise CBORError(f"truncated argument at offset {start}")
        raw = data[pos : pos + n]
        pos += n
        if major == 7 and ai >= 25:
            if det:
                raise CBORError(f"floating point value at offset {start}")
            fmt = {25: ">e", 26: ">f", 27: ">d"}[ai]
            return struct.unpack(fmt, raw)[0], pos
        arg = int.from_bytes(raw, "big")
        if det and arg < (24 if ai == 24 else 1 << (8 * (n // 2))):
            raise CBORError(f"argument {arg} not in shortest form at offset {start}")
    elif ai == 31:
        raise CBORError(f"indefinite length / break at offset {start}")
    else:
        raise CBORError(f"reserved additional information {ai} at offset {start}")

    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(data):
            raise CBORError(f"truncated string at offset {start}")
        raw = bytes(data[pos : pos + arg])
        pos += arg
        if major == 3:
            try:
                return raw.decode("utf-8", errors="strict"), pos
            except UnicodeDecodeError as e:
                raise CBORError(f"invalid UTF-8 at offset {start}") from e
        return raw, pos
    if major == 4:
        items = []
        for _ in range(arg):
            v, pos = _item(data, pos, det)
            items.append(v)
        return items, pos
    if major == 5:
        result = {}
        previous = None
        for _ in range(arg):
            kstart = pos
            k, pos = _item(data, pos, det)
            kenc = bytes(data[kstart:pos])
            if isinstance(k, (list, dict)):
                raise CBORError(f"unhashable map key at offset {kstart}")
            if k in result:
                raise CBORError(f"duplicate map key {k!r} at offset {kstart}")
            if det and previous is not None and kenc <= previous:
                raise CBORError(f"map key {k!r} out of deterministic order at offset {kstart}")
            previous = kenc
            v, pos = _item(data, pos, det)
            result[k] = v
        return result, pos
    if major == 6:
        v, pos = _item(data, pos, det)
        return Tag(arg, v), pos
    # major 7, simple values
    simple = {20: False, 21: True, 22: None}
    if ai < 24 and arg in simple:
        return simple[arg], pos
    raise CBORError(f"unexpected simple value {arg} at offset {start}")
