"""Digests, random images, content ETags, snapshots of folders."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def seeded_bytes(size: int, seed) -> bytes:
    """``size`` incompressible-looking bytes, the same for the same seed (any str or int)."""
    return random.Random(seed).randbytes(size)


def write_random_file(path: Path, size: int, seed=None, chunk: int = 1 << 20) -> str:
    """Streams ``size`` random bytes to ``path`` (os.urandom, or reproducible
    from ``seed``); returns their SHA-256."""
    digest = hashlib.sha256()
    rng = None if seed is None else random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            data = os.urandom(n) if rng is None else rng.randbytes(n)
            digest.update(data)
            f.write(data)
            left -= n
    return digest.hexdigest()


def content_etag(data: bytes) -> bytes:
    """The ETag the server promises: the first 8 bytes of SHA-256(content) as a
    number, without leading zero bytes (libcoap's encoding; docs/design.md)."""
    return hashlib.sha256(data).digest()[:8].lstrip(b"\x00") or b"\x01"


def snapshot(root: Path, *, dirs: bool = True) -> dict:
    """Everything under ``root``: relative path -> file bytes (and "<dir>" for
    folders when ``dirs``); {} when root does not exist."""
    root = Path(root)
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = p.read_bytes()
        elif dirs:
            out[p.relative_to(root).as_posix()] = "<dir>"
    return out
