#!/usr/bin/env python3
"""A deliberately faulty firmware server for the client's fault tests.

Serves a repository folder (SPEC §4 layout: ``.well-known/firmware/<m>/<model>/
manifest.cbor``, ``manifest.json`` and ``<version>/<file>``) over CoAP with
aiocoap, doing Block2 (RFC 7959) by hand so that it can break it on purpose.
Exactly one fault is injected, chosen with ``--fault``:

``none``
    a correct server (the baseline the other faults are measured against).
``flip-bit:N``
    flips the lowest bit of the first byte of block N of every image.
``etag-change:N``
    images answer with a different ETag from block N on.
``truncate:N``
    images end early: block N carries More=0.
``wrong-size2``
    every response carries Size2 = real size + 1000.
``stall:N``
    requests for image block N and later are never answered.
``silent``
    nothing is ever answered, not even with an empty ACK: a plain UDP socket
    that reads and drops every datagram (a black hole, unlike a closed port,
    which answers with ICMP).
``wrong-block:N``
    the answer to image block N says it is block N+1 (same payload).
``duplicate:N``
    the answer to image block N is block N-1 again (its number and payload):
    a duplicate, as a confused cache or a replay would send.
``confused-once:N``
    the first request for block N of each file (manifests too) is answered
    300 ms late with block 0 (its number and payload), as txThings' one
    block-wise state per peer answers the last request of a pipelined
    download; later requests for that block are answered correctly.
``busy-reports:S``
    the first POST (a fleet report) is answered 4.29 Too Many Requests with
    Max-Age S; later ones 2.04. Without it every POST gets 2.04. Each POST
    is logged with the time, its length and the SHA-256 of its payload.
``slow:MS``
    not a fault: every image block is answered MS milliseconds late (a slow
    but moving transfer, which a client's time-out must not cut).
``max-szx:S``
    not a fault either: image blocks are at most 16 << S bytes, whatever the
    request asks for (RFC 7959 §2.4 lets a server pick a smaller size).
``extend:K``
    images are served with K extra bytes appended (and no Size2, so only
    the body length can give the lie away).

Faults apply to image files (anything that is not ``manifest*``), except
``wrong-size2``, ``silent`` and ``confused-once``, which apply to every request. Block numbers N count in the
block size of the request (16 << SZX).

The server prints its port on stdout (one line, the number) once it listens,
logs every request on stderr (one line each), and stops on SIGTERM/SIGINT.
``/.well-known/core`` answers with a link-format list of the manifests, so
it can be probed like our own server.

    PYTHONPATH=Tests python3 Tests/support/malicious_server.py --repo DIR --fault truncate:3 [--host 127.0.0.1] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiocoap
import aiocoap.resource
from aiocoap import Code, Message
from aiocoap.optiontypes import BlockOption

from support.paths import CONTENT_FORMATS, content_format, repo_file

FAULTS_WITH_N = ("flip-bit", "etag-change", "truncate", "stall", "wrong-block", "duplicate", "extend", "slow", "max-szx",
                 "confused-once", "busy-reports")
FAULTS_PLAIN = ("none", "wrong-size2", "silent")


def parse_fault(text: str) -> tuple[str, int | None]:
    name, _, arg = text.partition(":")
    if name in FAULTS_PLAIN and not arg:
        return name, None
    if name in FAULTS_WITH_N and arg.isdigit():
        return name, int(arg)
    raise argparse.ArgumentTypeError(
        f"--fault {text}: expected one of {', '.join(FAULTS_PLAIN)} "
        f"or {', '.join(n + ':N' for n in FAULTS_WITH_N)}"
    )


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Repository(aiocoap.resource.Resource):
    """The whole URI space: maps Uri-Path onto the repository folder and
    answers Block2 itself (``needs_blockwise_assembly`` is False, so aiocoap
    neither caches nor re-blocks what ``render_get`` returns)."""

    def __init__(self, root: Path, fault: str, n: int | None):
        super().__init__()
        self.root = root.resolve()
        self.fault = fault
        self.n = n
        self.requests = 0
        self.confused: set[str] = set()

    async def needs_blockwise_assembly(self, request) -> bool:
        return False

    async def render_post(self, request: Message) -> Message:
        self.requests += 1
        self.posts = getattr(self, "posts", 0) + 1
        path_text = "/" + "/".join(request.opt.uri_path)
        digest = hashlib.sha256(request.payload).hexdigest()[:16]
        busy = self.fault == "busy-reports" and self.posts == 1
        log(f"POST {path_text} t={time.monotonic():.3f} len={len(request.payload)} sha={digest}: {'4.29' if busy else '2.04'}")
        if busy:
            response = Message(code=Code.TOO_MANY_REQUESTS, payload=b"too many reports")
            response.opt.max_age = self.n
            return response
        return Message(code=Code.CHANGED)

    def _core(self) -> bytes:
        links = []
        for p in sorted(self.root.glob(".well-known/firmware/*/*/manifest.*")):
            rel = p.relative_to(self.root).as_posix()
            links.append(f'</{rel}>;rt="firmware.manifest";ct={CONTENT_FORMATS.get(p.name, 0)}')
        return ",".join(links).encode()

    async def render_get(self, request: Message) -> Message:
        self.requests += 1
        segments = list(request.opt.uri_path)
        path_text = "/" + "/".join(segments)
        block = request.opt.block2
        szx = block.size_exponent if block is not None else 6
        if szx > 6:  # BERT is not for UDP
            szx = 6
        number = block.block_number if block is not None else 0
        if segments == [".well-known", "core"]:
            body, is_image, fmt = self._core(), False, 40
        else:
            found = repo_file(self.root, segments)
            if found is None:
                log(f"GET {path_text} block {number}/{16 << szx}: 4.04")
                return Message(code=Code.NOT_FOUND, payload=f"no such file: {path_text}".encode())
            body = found.read_bytes()
            is_image = not found.name.startswith("manifest")
            fmt = content_format(found.name)

        if self.fault == "max-szx" and is_image and szx > self.n:
            # RFC 7959 §2.4: a smaller answer covers the start of the block
            # asked for; its number counts in the smaller size.
            number = number << (szx - self.n)
            szx = self.n
        size = 16 << szx

        real_size = len(body)
        etag = hashlib.sha256(body).digest()[:8]
        fault = self.fault if (is_image or self.fault in ("wrong-size2", "confused-once")) else "none"
        n = self.n
        announce_size2 = True

        if fault == "slow":
            await asyncio.sleep(n / 1000)
        if fault == "extend":
            body = body + bytes((i * 7 + 1) & 0xFF for i in range(n))
            etag = hashlib.sha256(body).digest()[:8]
            announce_size2 = False
        if fault == "stall" and number >= n:
            log(f"GET {path_text} block {number}/{size}: stalling (never answered)")
            await asyncio.Event().wait()  # forever; cancelled at shutdown

        served = n - 1 if fault == "duplicate" and number == n and n > 0 else number
        if fault == "confused-once" and number == n > 0 and path_text not in self.confused:
            self.confused.add(path_text)
            await asyncio.sleep(0.3)
            served = 0
        reported_number = served
        start = served * size
        if start > len(body) or (start == len(body) and len(body) > 0):
            log(f"GET {path_text} block {number}/{size}: out of range, 4.02")
            return Message(code=Code.BAD_OPTION, payload=b"Block2 out of range")
        payload = bytearray(body[start:start + size])
        more = start + size < len(body)

        if fault == "flip-bit" and number == n and payload:
            payload[0] ^= 0x01
        if fault == "etag-change" and number >= n:
            etag = hashlib.sha256(b"changed" + body).digest()[:8]
        if fault == "truncate" and number == n:
            more = False
        if fault == "wrong-block" and number == n:
            reported_number = number + 1

        response = Message(code=Code.CONTENT, payload=bytes(payload))
        response.opt.content_format = fmt
        response.opt.etag = etag
        if block is not None or len(body) > size:
            response.opt.block2 = BlockOption.BlockwiseTuple(reported_number, more, szx)
        if fault == "wrong-size2":
            response.opt.size2 = real_size + 1000
        elif announce_size2 and (number == 0 or request.opt.size2 is not None):
            response.opt.size2 = real_size
        log(
            f"GET {path_text} block {number}/{size}: 2.05 block2=({reported_number},{int(more)},{szx}) "
            f"len={len(payload)} etag={etag.hex()} size2={response.opt.size2} fault={fault}"
        )
        return response


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True, type=Path, help="repository folder (SPEC §4 layout)")
    parser.add_argument("--fault", default="none", type=parse_fault, help="the one fault to inject")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=0, type=int, help="UDP port (0: any free one)")
    args = parser.parse_args()
    fault, n = args.fault

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if fault == "silent":
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((args.host, args.port))
        sock.setblocking(False)
        count = 0

        def drop():
            nonlocal count
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    return
                count += 1
                log(f"dropped datagram {count} ({len(data)} bytes)")

        loop.add_reader(sock.fileno(), drop)
        port = sock.getsockname()[1]
        log(f"silent on {args.host}:{port}")
        print(port, flush=True)
        await stop.wait()
        log(f"stopping after dropping {count} datagrams")
        return

    site = Repository(args.repo, fault, n)
    context = await aiocoap.Context.create_server_context(site, bind=(args.host, args.port), transports=["udp6"])
    interface = context.request_interfaces[0].token_interface.message_interface
    port = interface.transport.get_extra_info("socket").getsockname()[1]
    log(f"serving {args.repo} on {args.host}:{port} with fault {fault}{'' if n is None else ':' + str(n)}")
    print(port, flush=True)
    await stop.wait()
    log(f"stopping after {site.requests} requests")
    await context.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    # aiocoap may leave a stalled render behind; do not wait for it.
    sys.stdout.flush()
    os._exit(0)
