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
GET = 1
ETAG, OBSERVE, URI_PATH, CONTENT_FORMAT, ACCEPT, BLOCK2, SIZE2 = 4, 6, 11, 12, 17, 23, 28


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
            timeout: float = 0.5) -> Message | None:
    """One CON request from a fresh socket (a new session at the server):
    Uri-Path from ``path`` plus ``options``. The response whose token
    matches, or None on time-out or an ICMP refusal."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    token = os.urandom(4)
    mid = int.from_bytes(os.urandom(2), "big")
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            sock.sendto(encode(CON, code, mid, token, [*uri_path_options(path), *options]), (host, port))
            while time.monotonic() < deadline:
                data, _ = sock.recvfrom(4096)
                try:
                    message = decode(data)
                except ValueError:
                    continue
                if message.token == token:
                    return message
        except (socket.timeout, OSError):
            return None
    return None


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
