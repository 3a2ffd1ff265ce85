#!/usr/bin/env python3
"""The one hand-written CoAP message encoder and decoder (RFC 7252 §3), for
probes and for the hand-made (also deliberately malformed) datagrams of the
tests, and a one-request client over a plain UDP socket.

Standard library only, so that it also runs as a script inside network
namespaces (``ip netns exec NS python3 coap.py probe HOST PORT PATH``: exit 0
on a 2.05).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST = 1, 2
ETAG, OBSERVE, URI_PATH, CONTENT_FORMAT, MAX_AGE, ACCEPT, BLOCK2, SIZE2, SIZE1 = 4, 6, 11, 12, 14, 17, 23, 28, 60


def _nibble(n: int) -> tuple[int, bytes]:
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, struct.pack("!H", n - 269)


def encode(mtype: int, code: int, mid: int, token: bytes = b"", options=(), payload: bytes = b"") -> bytes:
    """One CoAP message. ``options`` is a list of ``(number, bytes)``, sorted
    here; nothing is checked, so that malformed messages can be made too."""
    out = bytearray([0x40 | (mtype << 4) | len(token), code]) + struct.pack("!H", mid) + token
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        dn, dx = _nibble(number - last)
        ln, lx = _nibble(len(value))
        last = number
        out += bytes([(dn << 4) | ln]) + dx + lx + value
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def uint(value: int) -> bytes:
    """A uint option value: big-endian, no leading zero bytes (0 is empty)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def block2(num: int, szx: int, more: bool = False) -> bytes:
    """A Block2 option value (RFC 7959 §2.2)."""
    return uint((num << 4) | (int(more) << 3) | szx)


def uri_path_options(path: str) -> list[tuple[int, bytes]]:
    return [(URI_PATH, seg.encode()) for seg in path.strip("/").split("/") if seg]


def code_text(code: int) -> str:
    return f"{code >> 5}.{code & 31:02d}"


@dataclass
class Message:
    mtype: int
    code: int
    mid: int
    token: bytes
    options: list = field(default_factory=list)  # [(number, bytes)] in order
    payload: bytes = b""

    @property
    def code_text(self) -> str:
        return code_text(self.code)

    def option(self, number: int) -> bytes | None:
        """The value of the last option ``number``, None when absent."""
        values = [v for n, v in self.options if n == number]
        return values[-1] if values else None


def decode(data: bytes) -> Message:
    """Parses one message; ValueError when it is not well formed."""
    if len(data) < 4 or data[0] >> 6 != 1 or data[0] & 15 > 8:
        raise ValueError("not a CoAP message")
    tkl = data[0] & 15
    mid = struct.unpack_from("!H", data, 2)[0]
    token, pos, number, options = bytes(data[4:4 + tkl]), 4 + tkl, 0, []
    while pos < len(data) and data[pos] != 0xFF:
        byte = data[pos]
        pos += 1
        values = []
        for nib in (byte >> 4, byte & 15):
            if nib == 13:
                values.append(data[pos] + 13)
                pos += 1
            elif nib == 14:
                values.append(struct.unpack_from("!H", data, pos)[0] + 269)
                pos += 2
            elif nib == 15:
                raise ValueError("reserved option nibble")
            else:
                values.append(nib)
        number += values[0]
        options.append((number, bytes(data[pos:pos + values[1]])))
        pos += values[1]
    payload = bytes(data[pos + 1:]) if pos < len(data) else b""
    return Message((data[0] >> 4) & 3, data[1], mid, token, options, payload)


def request(host: str, port: int, path: str = "", *, options=(), code: int = GET,
            timeout: float = 0.5, resend: float | None = None, payload: bytes = b"",
            source: str | None = None) -> Message | None:
    """One CON request from a fresh socket (a new session at the server):
    Uri-Path from ``path`` plus ``options``, and ``payload``. The response
    whose token matches, or None on time-out or an ICMP refusal. With
    ``resend`` the same message (same Message ID) goes again every
    ``resend`` seconds until ``timeout``, as a retransmitting client would
    send it. ``source`` binds the socket to that address first (another
    127.0.0.x is another peer for the server)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    token = os.urandom(4)
    mid = int.from_bytes(os.urandom(2), "big")
    datagram = encode(CON, code, mid, token, [*uri_path_options(path), *options], payload)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if source:
            sock.bind((source, 0))
        deadline = time.monotonic() + timeout
        next_send = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return None
                if now >= next_send:
                    sock.sendto(datagram, (host, port))
                    next_send = now + resend if resend else deadline
                sock.settimeout(max(0.001, min(deadline, next_send) - now))
                try:
                    data, _ = sock.recvfrom(4096)
                except socket.timeout:
                    continue
                try:
                    message = decode(data)
                except ValueError:
                    continue
                if message.token == token:
                    return message
        except OSError:
            return None


def mutations(rng, valid, path: str):
    """Yields malformed datagrams, endlessly: random bytes, and the
    ``valid`` datagrams truncated, bit-flipped or crafted wrong (a bad
    option delta, huge Block2 numbers on ``path``, no token, a token length
    over 8, unknown critical options, an oversized option, a payload marker
    with no payload), and empty ones. ``rng`` is a random.Random."""
    kinds = ["random", "truncate", "flip", "bad-delta", "huge-block", "zero-token", "bad-token-length",
             "critical", "big-option", "payload-marker", "empty"]

    def con_get(mid, token, options):
        return encode(CON, GET, mid, token, options)

    while True:
        kind = rng.choice(kinds)
        base = rng.choice(valid)
        if kind == "random":
            yield bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 1200)))
        elif kind == "truncate":
            yield base[: rng.randint(0, len(base) - 1)]
        elif kind == "flip":
            b = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            yield bytes(b)
        elif kind == "bad-delta":
            # delta nibble 15 with a non-marker length: a message format error (RFC 7252 §3.1)
            yield base[:4] + bytes([0xF1, 0x00]) + base[4:]
        elif kind == "huge-block":
            num = rng.choice([0xFFFFF, 0xFFFFE, 1 << 19, rng.randrange(1 << 20)])
            yield con_get(rng.randrange(65536), b"\x01",
                          uri_path_options(path) + [(BLOCK2, struct.pack(">I", (num << 4) | 6)[1:])])
        elif kind == "zero-token":
            yield con_get(rng.randrange(65536), b"", uri_path_options(path) + [(BLOCK2, bytes([rng.randrange(256)]))])
        elif kind == "bad-token-length":
            yield bytes([0x40 | rng.randint(9, 15), 1]) + rng.randbytes(2 + rng.randint(0, 20))
        elif kind == "critical":
            yield con_get(rng.randrange(65536), b"\x02",
                          uri_path_options(path) + [(rng.choice([9, 25, 65001, 2049]), b"\x01")])
        elif kind == "big-option":
            yield con_get(rng.randrange(65536), b"\x03", [(URI_PATH, b"A" * rng.randint(256, 1100))])
        elif kind == "payload-marker":
            yield base + b"\xff"
        else:
            yield b""


def probe(host: str, port: int, path: str = ".well-known/core", timeout: float = 0.5) -> str | None:
    """One CON GET; the response code (e.g. ``"2.05"``) or None."""
    response = request(host, port, path, timeout=timeout)
    return None if response is None else response.code_text


def main(argv) -> int:
    if len(argv) != 4 or argv[0] != "probe":
        print("usage: coap.py probe HOST PORT PATH", file=sys.stderr)
        return 2
    return 0 if probe(argv[1], int(argv[2]), argv[3]) == "2.05" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
