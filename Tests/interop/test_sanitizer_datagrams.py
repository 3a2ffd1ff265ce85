"""The server under AddressSanitizer takes 10,000 malformed and truncated
CoAP datagrams (issue #5), then still serves a normal fetch, did not grow,
and ASan reported nothing.

The ASan build is made by `make test` (`make asan`):
    swift build --scratch-path .build-asan -Xswiftc -sanitize=address ... --product coap-fw-server
"""
import os
import random
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASAN_SERVER = Path(os.environ.get("COAPFW_ASAN_SERVER", REPO / ".build-asan" / "debug" / "coap-fw-server"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def option(delta_number, value, last):
    """Encodes one option (RFC 7252 §3.1) given its number and the previous one."""
    delta = delta_number - last
    def nib(v):
        if v < 13:
            return v, b""
        if v < 269:
            return 13, bytes([v - 13])
        return 14, struct.pack(">H", v - 269)
    d, dx = nib(delta)
    l, lx = nib(len(value))
    return bytes([(d << 4) | l]) + dx + lx + value


def request(mid, token, options, payload=b"", code=1, mtype=0):
    head = bytes([0x40 | (mtype << 4) | len(token), code]) + struct.pack(">H", mid) + token
    body = b""
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        body += option(number, value, last)
        last = number
    return head + body + ((b"\xff" + payload) if payload else b"")


def path_options(path):
    return [(11, seg.encode()) for seg in path.strip("/").split("/")]


def mutations(rng, valid):
    """Yields malformed datagrams: random, truncated, bit-flipped, and crafted."""
    kinds = ["random", "truncate", "flip", "bad-delta", "huge-block", "zero-token", "bad-token-length",
             "critical", "big-option", "payload-marker", "empty"]
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
            yield request(rng.randrange(65536), b"\x01", path_options(IMAGE_PATH) + [(23, struct.pack(">I", (num << 4) | 6)[1:])])
        elif kind == "zero-token":
            yield request(rng.randrange(65536), b"", path_options(IMAGE_PATH) + [(23, bytes([rng.randrange(256)]))])
        elif kind == "bad-token-length":
            yield bytes([0x40 | rng.randint(9, 15), 1]) + os.urandom(2 + rng.randint(0, 20))
        elif kind == "critical":
            yield request(rng.randrange(65536), b"\x02", path_options(IMAGE_PATH) + [(rng.choice([9, 25, 65001, 2049]), b"\x01")])
        elif kind == "big-option":
            yield request(rng.randrange(65536), b"\x03", [(11, b"A" * rng.randint(256, 1100))])
        elif kind == "payload-marker":
            yield base + b"\xff"
        else:
            yield b""


IMAGE_PATH = ".well-known/firmware/example.com/c7960/1.0.0/fw.bin"


@pytest.fixture(params=["asan", "plain"])
def asan_server(request, tmp_path, bin_dir):
    """The ASan build finds memory errors; the plain build is where growth is
    measured (ASan's quarantine holds freed memory, so its RSS only climbs)."""
    binary = ASAN_SERVER if request.param == "asan" else bin_dir / "coap-fw-server"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `make asan` (make test does)")
    keys = tmp_path / "keys"
    subprocess.run([str(bin_dir / "coap-fw-server"), "keygen", "--alg", "ES256", "--out", str(keys)], check=True, capture_output=True)
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(64 * 1024))
    repo = tmp_path / "repo"
    subprocess.run([str(bin_dir / "coap-fw-server"), "publish", "--repo", str(repo), "--key", str(keys / "private.pem"),
                    "--manufacturer", "example.com", "--model", "c7960", "--version", "1.0.0", "--image", str(image)],
                   check=True, capture_output=True)
    port = free_port()
    log = open(tmp_path / "asan.log", "w")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1", SWIFT_BACKTRACE="enable=no")
    proc = subprocess.Popen([str(binary), "serve", "--repo", str(repo), "--listen", f"127.0.0.1:{port}"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        out = subprocess.run(["coap-client-notls", "-B", "1", f"coap://127.0.0.1:{port}/.well-known/core"], capture_output=True)
        if b"firmware" in out.stdout:
            break
        time.sleep(0.2)
    yield proc, port, image, tmp_path / "asan.log", request.param
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    log.close()


def fetch(port, out):
    subprocess.run(["coap-client-notls", "-B", "20", "-b", "1024", "-o", str(out), f"coap://127.0.0.1:{port}/{IMAGE_PATH}"],
                   capture_output=True, timeout=60)
    return out.read_bytes() if out.exists() else b""


def test_10000_malformed_datagrams(asan_server, tmp_path):
    proc, port, image, log, build = asan_server
    rng = random.Random(int(os.environ.get("COAPFW_DATAGRAM_SEED", "5683")))
    valid = [request(i, bytes([i & 0xFF, 7]), path_options(IMAGE_PATH) + [(23, bytes([(i % 4) << 4 | 6]))]) for i in range(1, 9)]
    valid.append(request(99, b"\x09", path_options(".well-known/core")))
    assert fetch(port, tmp_path / "before.bin") == image.read_bytes()
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
    sent = 0
    gen = mutations(rng, valid)
    rss_warm = None
    try:
        for n in range(10_000):
            s = sockets[n % len(sockets)]
            s.sendto(next(gen), ("127.0.0.1", port))
            sent += 1
            if n % 200 == 199:
                time.sleep(0.02)  # let the server drain its socket; loss here is not the point
                for s2 in sockets:
                    s2.setblocking(False)
                    try:
                        while s2.recv(2048):
                            pass
                    except BlockingIOError:
                        pass
            if n == 1000:
                rss_warm = rss_kib(proc.pid)
            assert proc.poll() is None, f"server died after {sent} datagrams:\n{log.read_text()[-4000:]}"
    finally:
        for s in sockets:
            s.close()
    time.sleep(1)
    assert proc.poll() is None, f"server died:\n{log.read_text()[-4000:]}"
    rss_end = rss_kib(proc.pid)
    assert fetch(port, tmp_path / "after.bin") == image.read_bytes(), "a normal fetch failed after the datagrams"
    text = log.read_text()
    assert "AddressSanitizer" not in text and "runtime error" not in text, text[-4000:]
    print(f"{build}: {sent} datagrams survived; RSS {rss_warm} KiB after 1000, {rss_end} KiB after {sent}")
    if build == "plain":
        # libcoap keeps per-peer sessions (16 sockets here); a leak per datagram would show as MiBs.
        assert rss_end - rss_warm < 1024, f"server grew from {rss_warm} to {rss_end} KiB"
