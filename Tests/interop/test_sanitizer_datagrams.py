"""The server under AddressSanitizer takes 10,000 malformed and truncated
CoAP datagrams (issue #5), then still serves a normal fetch, did not grow,
and ASan reported nothing.

The ASan build is made by `make test` (`make asan`):
    swift build --scratch-path .build-asan -Xswiftc -sanitize=address ... --product coap-fw-server
"""
import os
import random
import socket
import time
from pathlib import Path

import pytest

from support import cli, coap
from support.paths import REPO_ROOT, image_path
from support.procs import crashes, proc_status_kib

ASAN_SERVER = Path(os.environ.get("COAPFW_ASAN_SERVER", REPO_ROOT / ".build-asan" / "debug" / "coap-fw-server"))
IMAGE_PATH = image_path()


def request(mid, token, options, payload=b""):
    return coap.encode(coap.CON, coap.GET, mid, token, options, payload)


def lists_firmware(srv) -> bool:
    """/.well-known/core lists the published manifests: the repository was read."""
    response = coap.request("127.0.0.1", srv.port, ".well-known/core")
    return response is not None and b"firmware" in response.payload


@pytest.fixture(params=["asan", "plain"])
def asan_server(request, tmp_path, bin_dir, server):
    """The ASan build finds memory errors; the plain build is where growth is
    measured (ASan's quarantine holds freed memory, so its RSS only climbs).
    Stopped at teardown like every server: exit 0, no crash text in its log."""
    binary = ASAN_SERVER if request.param == "asan" else bin_dir / "coap-fw-server"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `make asan` (make test does)")
    rel = cli.make_release(bin_dir, tmp_path, size=64 * 1024)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1", SWIFT_BACKTRACE="enable=no")
    srv = server(rel.repo, binary=binary, env=env, verbose=0, ready=lists_firmware, ready_timeout=20)
    return srv, rel.image, request.param


def fetch(port, out):
    _, data = cli.coap_get(f"coap://127.0.0.1:{port}/{IMAGE_PATH}", out, "-b", 1024, timeout=20)
    return data or b""


def test_10000_malformed_datagrams(asan_server, tmp_path):
    srv, image, build = asan_server
    port = srv.port
    rng = random.Random(int(os.environ.get("COAPFW_DATAGRAM_SEED", "5683")))
    valid = [request(i, bytes([i & 0xFF, 7]), coap.uri_path_options(IMAGE_PATH) + [(23, bytes([(i % 4) << 4 | 6]))]) for i in range(1, 9)]
    valid.append(request(99, b"\x09", coap.uri_path_options(".well-known/core")))
    assert fetch(port, tmp_path / "before.bin") == image.read_bytes()
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)]
    sent = 0
    gen = coap.mutations(rng, valid, IMAGE_PATH)
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
                rss_warm = proc_status_kib(srv.pid)
            assert srv.alive(), f"server died after {sent} datagrams:\n{srv.log()[-4000:]}"
    finally:
        for s in sockets:
            s.close()
    time.sleep(1)
    assert srv.alive(), f"server died:\n{srv.log()[-4000:]}"
    rss_end = proc_status_kib(srv.pid)
    assert fetch(port, tmp_path / "after.bin") == image.read_bytes(), "a normal fetch failed after the datagrams"
    text = srv.log()
    assert not crashes(text), text[-4000:]
    print(f"{build}: {sent} datagrams survived; RSS {rss_warm} KiB after 1000, {rss_end} KiB after {sent}")
    if build == "plain":
        # libcoap keeps per-peer sessions (16 sockets here); a leak per datagram would show as MiBs.
        assert rss_end - rss_warm < 1024, f"server grew from {rss_warm} to {rss_end} KiB"
