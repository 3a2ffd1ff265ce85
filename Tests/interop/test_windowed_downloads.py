"""Windowed Block2 downloads (issue #11): several requests in flight, each
with its own token, congestion controlled.

- test_servers_answer_pipelined_requests: a hand-made burst of CON
  requests for every block of an image, from one socket with distinct
  tokens and Message IDs, sent before any answer is read, to our server,
  libcoap's coap-server and aiocoap-fileserver: every block answered,
  with the right bytes of the file at its offset.
- test_windowed_update_through_link: `update` with the default window
  through the relay's `lowpan` and `lossy-lowpan` links, from each of the
  three servers: exit 0, `updated`, the installed bytes are the image.
  That the window was really used is read off the lossless link: the
  relay's downstream queue held several responses at once (a lock-step
  client never has more than one on the link; checked too, so the measure
  can fail).
- test_pipelined_fault: the malicious server answers one block of a
  pipelined download wrongly (a flipped bit, a changed ETag, the block
  after it, a duplicate of the block before it): the same result codes as
  lock-step, the old firmware kept, and the server's log shows blocks past
  the faulty one asked for before the restart (the fault hit a window).
- test_kill9_mid_window_resumes_at_the_frontier: `update` killed with
  SIGKILL while a window is in flight over a slow link; the resume record
  offset is block aligned, the staged bytes before it are the image's, and
  the next run fetches exactly the rest.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from support import cli, coap
from support.cli import assert_updated
from support.files import seeded_bytes
from support.netns import relay_stats, start_relay
from support.paths import local_discovery_args, model_path
from support.ports import free_udp_port
from support.procs import wait_for

MODEL = "c7961"
IMAGE = "fw.bin"
SIZE = 8 * 1024 + 100  # 129 blocks of 64 bytes, the last one short
BLOCK = 64
MODEL_PATH = model_path(MODEL)


@pytest.fixture
def release(tmp_path: Path, bin_dir: Path, keygen):
    """A 1.0.0 release of SIZE bytes in tmp/repo; (repo, trust, image bytes)."""
    keys, _ = keygen("ES256", name="keys")
    image = seeded_bytes(SIZE, "windowed 1.0.0")
    src = tmp_path / "images" / IMAGE
    src.parent.mkdir(parents=True)
    src.write_bytes(image)
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, keys / "private.pem", MODEL, "1.0.0", image=src)
    return repo, keys / "public.pem", image


def libcoap_server(procs, repo: Path) -> tuple[int, str]:
    """libcoap's example server with the release PUT into it (it cannot
    serve files from disk, PEERS.md); returns its port and the manifest path."""
    port = free_udp_port()
    procs.start("coap-server-notls", ["coap-server-notls", "-A", "127.0.0.1", "-p", port, "-d", "8"],
                check_exit=False)
    wait_for(lambda: coap.probe("127.0.0.1", port) == "2.05", 10, what="coap-server-notls")
    base = repo / MODEL_PATH
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base).as_posix()
        subprocess.run(["coap-client-notls", "-m", "put", "-b", "1024", "-f", str(path),
                        f"coap://127.0.0.1:{port}/fw/{rel}"], check=True, capture_output=True, timeout=60)
    return port, "fw/manifest.cbor"


def start_server(kind: str, procs, repo: Path) -> tuple[int, str]:
    """One of the three servers; (port, manifest path under it)."""
    if kind == "coap-fw-server":
        return procs.server(repo).port, f"{MODEL_PATH}/manifest.cbor"
    if kind == "aiocoap-fileserver":
        manifest = f"{MODEL_PATH}/manifest.cbor"
        return procs.aiocoap_fileserver(repo, manifest).port, manifest
    return libcoap_server(procs, repo)


SERVERS = ["coap-fw-server", "libcoap coap-server", "aiocoap-fileserver"]


@pytest.mark.parametrize("kind", SERVERS)
def test_servers_answer_pipelined_requests(kind, procs, release):
    repo, _, image = release
    port, manifest = start_server(kind, procs, repo)
    path = manifest.rsplit("/", 1)[0] + f"/1.0.0/{IMAGE}"
    blocks = -(-len(image) // BLOCK)
    szx = BLOCK.bit_length() - 5
    got: dict[int, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        base_mid = int.from_bytes(os.urandom(2), "big")
        requests = {}
        for n in range(blocks):
            token = n.to_bytes(2, "big") + os.urandom(2)
            requests[token] = (n, coap.encode(coap.CON, coap.GET, (base_mid + n) & 0xFFFF, token,
                                              [*coap.uri_path_options(path), (coap.BLOCK2, coap.block2(n, szx))]))
        for _, datagram in requests.values():  # all in flight before one answer is read
            sock.sendto(datagram, ("127.0.0.1", port))
        deadline = time.monotonic() + 20
        resent = time.monotonic()
        while len(got) < blocks and time.monotonic() < deadline:
            sock.settimeout(0.5)
            try:
                data, _ = sock.recvfrom(4096)
            except socket.timeout:
                if time.monotonic() - resent > 2:  # UDP on loopback may still drop a burst: ask again for what is missing
                    for token, (n, datagram) in requests.items():
                        if n not in got:
                            sock.sendto(datagram, ("127.0.0.1", port))
                    resent = time.monotonic()
                continue
            message = coap.decode(data)
            if message.token not in requests:
                continue
            n = requests[message.token][0]
            assert message.code_text == "2.05", f"block {n}: {message.code_text} {message.payload[:80]!r}"
            option = message.option(coap.BLOCK2)
            value = int.from_bytes(option, "big")
            assert (value >> 4, value & 7) == (n, szx), f"block {n}: answered as block {value >> 4}, szx {value & 7}"
            assert bool(value & 8) == (n < blocks - 1), f"block {n}: More flag"
            got[n] = message.payload
    assert len(got) == blocks, f"{kind}: {blocks - len(got)} of {blocks} pipelined requests unanswered"
    for n in range(blocks):
        assert got[n] == image[n * BLOCK:(n + 1) * BLOCK], f"{kind}: block {n} has the wrong bytes"
    assert b"".join(got[n] for n in range(blocks)) == image


def through_link(procs, upstream: int, profile: str, *extra, seed: int = 3):
    listen = free_udp_port()
    relay = start_relay(lambda name, argv: procs.start(name, argv, check_exit=False), None, listen, upstream,
                        seed=seed, extra=["--profile", profile, *extra])
    return relay, listen


def read_json(path: Path):
    return json.loads(path.read_text())


def response_wire_bytes() -> int:
    """What one 64-byte block answer costs on the emulated link: payload, a
    CoAP header with token, ETag, Block2 and Content-Format options, UDP/IP
    not counted, and the profile's 40 bytes of overhead."""
    return BLOCK + 40 + 40


@pytest.mark.parametrize("profile", ["lowpan", "lossy-lowpan"])
@pytest.mark.parametrize("kind", SERVERS)
def test_windowed_update_through_link(kind, profile, procs, release, bin_dir, tmp_path):
    repo, trust, image = release
    port, manifest = start_server(kind, procs, repo)
    relay, listen = through_link(procs, port, profile)
    state = tmp_path / "state"
    run = cli.update(bin_dir, trust, MODEL, state, "--origin", f"coap://127.0.0.1:{listen}/{manifest}",
                     "--block-size", BLOCK, "--timeout", 60)
    relay.stop()
    stats = relay_stats(relay.log())
    context = f"{run.describe()}\nrelay: {stats}"
    assert_updated(run, "1.0.0")
    assert (state / "installed" / IMAGE).read_bytes() == image, context
    assert run.json["bytesTransferred"] == len(image), context
    if profile == "lowpan":
        # Several answers waited for the bottleneck at once: several requests
        # were in flight. (Not under loss, where the window may stay small.)
        assert stats["down"]["queue_peak_bytes"] >= 4 * response_wire_bytes(), context
    else:
        assert stats["up"]["dropped_loss"] + stats["down"]["dropped_loss"] > 0, "the link lost nothing: not a lossy test"


def test_lock_step_keeps_one_answer_on_the_link(procs, release, bin_dir, tmp_path):
    """The measure of the test above, failing for a client without a window."""
    repo, trust, image = release
    server = procs.server(repo)
    relay, listen = through_link(procs, server.port, "lowpan")
    state = tmp_path / "state"
    run = cli.update(bin_dir, trust, MODEL, state, "--origin", f"coap://127.0.0.1:{listen}",
                     "--block-size", BLOCK, "--lock-step", "--timeout", 60)
    relay.stop()
    stats = relay_stats(relay.log())
    assert_updated(run, "1.0.0")
    assert (state / "installed" / IMAGE).read_bytes() == image
    assert stats["down"]["queue_peak_bytes"] < 2 * response_wire_bytes(), stats


# fault -> (result, times block 0 of the image is asked for)
PIPELINED_FAULTS = {
    "flip-bit:40": ("digest-mismatch", 1),
    "etag-change:40": ("transfer-failed", 4),
    "wrong-block:40": ("transfer-failed", 4),
    "duplicate:40": ("transfer-failed", 4),
}


@pytest.mark.parametrize("mode", ["window", "lock-step"])
@pytest.mark.parametrize("fault", list(PIPELINED_FAULTS))
def test_pipelined_fault(fault, mode, procs, release, bin_dir, tmp_path):
    repo, trust, image = release
    code, block0 = PIPELINED_FAULTS[fault]
    bad = procs.malicious(repo, fault)
    state = tmp_path / "state"
    extra = ["--lock-step"] if mode == "lock-step" else []
    run = cli.update(bin_dir, trust, MODEL, state, *local_discovery_args(bad.port), "--block-size", BLOCK,
                     "--timeout", 10, *extra)
    log = bad.log()
    context = f"{run.describe()}\n--- malicious server ---\n{log[-3000:]}"
    assert run.returncode == 1, context
    assert run.json["result"] == code, context
    assert not (state / "installed" / IMAGE).exists(), context
    asked = [int(n) for n in re.findall(rf"GET /\S*/{IMAGE} block (\d+)/{BLOCK}:", log)]
    assert asked.count(0) == block0, f"block 0 asked {asked.count(0)} times\n{context}"
    n = int(fault.split(":")[1])
    first_restart = asked.index(0, 1) if block0 > 1 else len(asked)
    ahead = [b for b in asked[:first_restart] if b > n]
    if mode == "window":
        assert ahead, f"no block past {n} asked before the restart: the fault did not hit a window\n{context}"
    else:
        assert not ahead or block0 == 1, f"lock-step asked ahead of block {n}\n{context}"


@pytest.mark.parametrize("mode", ["window", "lock-step"])
@pytest.mark.parametrize("target", ["manifest", "image"])
def test_confused_answer_to_a_windows_last_request(target, mode, procs, release, bin_dir, tmp_path):
    """The last block of a pipelined manifest or image, alone in flight by
    then, answered with block 0 (txThings' one block-wise state per peer;
    CI saw it on a manifest). A window asks for that block again alone, and
    the server gets lock-step. In lock-step from the start the same answer
    breaks the block rules: the body, manifest or image, starts over (before,
    a manifest's server failed)."""
    repo, trust, image = release
    name = "manifest.cbor" if target == "manifest" else IMAGE
    size = (repo / MODEL_PATH / name).stat().st_size if target == "manifest" else len(image)
    last = (size - 1) // BLOCK
    bad = procs.malicious(repo, f"confused-once:{last}")
    state = tmp_path / "state"
    extra = ["--lock-step"] if mode == "lock-step" else []
    run = cli.update(bin_dir, trust, MODEL, state, *local_discovery_args(bad.port), "--block-size", BLOCK,
                     "--timeout", 10, *extra)
    log = bad.log()
    context = f"{run.describe()}\n--- malicious server ---\n{log[-3000:]}"
    asked = [int(n) for n in re.findall(rf"GET /\S*/{re.escape(name)} block (\d+)/{BLOCK}:", log)]
    assert run.returncode == 0 and run.json["result"] == "updated", context
    assert (state / "installed" / IMAGE).read_bytes() == image, context
    assert asked.count(last) == 2, f"{name}: block {last} asked {asked.count(last)} times\n{context}"
    starts = 1 if mode == "window" else 2
    assert asked.count(0) == starts, f"{name}: block 0 asked {asked.count(0)} times, not {starts}\n{context}"


def test_fetch_starts_a_confused_body_over(procs, release, bin_dir, tmp_path):
    """`fetch` has the same rule: a block out of place starts the body again
    at block 0."""
    repo, _, image = release
    last = (len(image) - 1) // BLOCK
    bad = procs.malicious(repo, f"confused-once:{last}")
    out = tmp_path / "fetched.bin"
    run = cli.run_binary(bin_dir, "coap-fw-client", "fetch", "-o", out, "--block-size", BLOCK, "--lock-step",
                         "--timeout", 10, f"coap://127.0.0.1:{bad.port}/{MODEL_PATH}/1.0.0/{IMAGE}")
    log = bad.log()
    assert run.returncode == 0, f"{run.describe()}\n{log[-2000:]}"
    assert out.read_bytes() == image
    asked = [int(n) for n in re.findall(rf"GET /\S*/{IMAGE} block (\d+)/{BLOCK}:", log)]
    assert asked.count(0) == 2 and asked.count(last) == 2, asked
    # The same restart into an output that is no file to truncate (a benchmark's /dev/null).
    other = procs.malicious(repo, f"confused-once:{last}")
    discarded = cli.run_binary(bin_dir, "coap-fw-client", "fetch", "-o", "/dev/null", "--block-size", BLOCK,
                               "--lock-step", "--timeout", 10, f"coap://127.0.0.1:{other.port}/{MODEL_PATH}/1.0.0/{IMAGE}")
    assert discarded.returncode == 0, discarded.describe()
    assert re.findall(rf"GET /\S*/{IMAGE} block (\d+)/{BLOCK}:", other.log()).count("0") == 2, "no restart"


def test_kill9_mid_window_resumes_at_the_frontier(procs, release, bin_dir, tmp_path):
    repo, trust, image = release
    server = procs.server(repo)
    # 10 kbit/s: the 8 KiB image at 64-byte blocks takes about 15 s, with a window always in flight.
    _, listen = through_link(procs, server.port, "lowpan", "--rate", "10000")
    state = tmp_path / "state"
    args = cli.update_args(bin_dir, trust, MODEL, state, "--origin", f"coap://127.0.0.1:{listen}",
                           "--block-size", BLOCK, "--timeout", 60)
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record_file = state / "staging" / "resume.json"
    wait_for(lambda: record_file.exists() and read_json(record_file)["offset"] >= 2048, 60,
             what="a resume record past 2 KiB")
    time.sleep(0.7)  # mid-window, between records
    first.send_signal(signal.SIGKILL)
    first.wait()
    record = read_json(record_file)
    offset = record["offset"]
    assert 0 < offset < len(image) and offset % BLOCK == 0, record
    staged = (state / "staging" / f"{IMAGE}.part").read_bytes()
    assert staged[:offset] == image[:offset], "the bytes the record covers are the image's"
    run = cli.update(bin_dir, trust, MODEL, state, "--origin", f"coap://127.0.0.1:{listen}",
                     "--block-size", BLOCK, "--timeout", 60)
    assert_updated(run, "1.0.0")
    assert (state / "installed" / IMAGE).read_bytes() == image
    staged_then = len(staged)
    assert run.json["bytesTransferred"] == len(image) - offset, (
        f"resumed with {run.json['bytesTransferred']} bytes; record {record}, {staged_then} bytes were staged")
