"""`coap-fw-client update` against faulty servers (issue #4, SPEC §4-§7).

Real processes on loopback: our `coap-fw-server` for good releases and for
repositories published wrongly (another key, another model, an older
version), and `malicious_server.py` (aiocoap, Block2 by hand) for transfer
faults: a flipped bit, an ETag that changes mid-transfer, a body cut short
(More=0 early) or too long, a wrong Size2, a block number that does not match
the offset asked for, a stall after block N, and a server that never answers.

For each fault, two situations:

(a) the faulty server is the only one (the local server found through
    discovery with `--domain lan --resolve _firmware.lan:127.0.0.1:PORT`):
    the exact result code, exit status 1, and the firmware installed before
    (1.0.0) unchanged, both in `status --json` and in the bytes of
    STATE/installed/<name>;
(b) the faulty local server and a good origin (`--origin`, our server with
    the correct 1.1.0): `updated`, source = the origin's manifest URI,
    attempts[0] = the fault's code, attempts[1] = updated, and the installed
    bytes are the good image.

Also: a slot too small (too-large before any image byte), nothing listening
(no-server), a 4.04 at the local server, the final result when every server
fails (the last one that answered), faults at 64-byte blocks and with JSON
manifests, and two legal but unusual servers (slow but moving, smaller
blocks than asked for) that must still give `updated`.

Each test builds its own keys, repositories and state under tmp_path.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from support import cli
from support.files import seeded_bytes, sha256
from support.paths import local_discovery_args, local_manifest_uri, model_path
from support.ports import free_udp_port
from support.procs import Proc

MODEL = "c7960"
IMAGE_NAME = "fw.bin"
MODEL_PATH = model_path(MODEL)
LOCAL_URI = local_manifest_uri(MODEL)

# Small images (not multiples of the block size, so the last block is short).
V1_SIZE = 24 * 1024 + 100
V2_SIZE = 30 * 1024 + 300
TIMEOUT = 3  # --timeout where a test has to wait for a silent server


class Harness:
    """Keys, releases, servers and client runs for one test (the servers are
    the test's ``procs``: checked for a clean exit at teardown)."""

    def __init__(self, tmp: Path, bin_dir: Path, keygen, procs):
        self.tmp = tmp
        self.bin_dir = bin_dir
        self.procs = procs
        self.keys, _ = keygen("ES256", name="vendor-keys")
        self._keygen = keygen
        self._other_keys: Path | None = None
        self.state = tmp / "state"
        self.v1 = seeded_bytes(V1_SIZE, "release 1.0.0")
        self.v2 = seeded_bytes(V2_SIZE, "release 1.1.0")

    # -- keys and releases ------------------------------------------------

    @property
    def trust(self) -> Path:
        return self.keys / "public.pem"

    @property
    def other_keys(self) -> Path:
        if self._other_keys is None:
            self._other_keys, _ = self._keygen("ES256", name="impostor-keys")
        return self._other_keys

    def publish(self, repo_name: str, version: str, image: bytes, *, key_dir: Path | None = None,
                model: str = MODEL, timestamp: str | None = None) -> Path:
        """Publishes one release into tmp/<repo_name>; returns the repo folder."""
        repo = self.tmp / repo_name
        src = self.tmp / "images" / f"{repo_name}-{version}" / IMAGE_NAME
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(image)
        cli.publish(self.bin_dir, repo, (key_dir or self.keys) / "private.pem", model, version, image=src,
                    timestamp=timestamp)
        return repo

    # -- servers ----------------------------------------------------------

    def serve(self, repo: Path) -> Proc:
        """Our coap-fw-server on a free loopback port, answering."""
        repo.mkdir(parents=True, exist_ok=True)
        return self.procs.server(repo)

    def malicious(self, repo: Path, fault: str) -> Proc:
        return self.procs.malicious(repo, fault)

    @property
    def repo_v2(self) -> Path:
        return self.tmp / "repo-v2"

    def v2_behind(self, fault: str) -> Proc:
        """1.0.0 installed, and 1.1.0 (in ``repo_v2``) offered by a malicious
        server with ``fault``."""
        self.install_v1()
        return self.malicious(self.publish(self.repo_v2.name, "1.1.0", self.v2), fault)

    # -- client -------------------------------------------------------------

    def update(self, *, local: Proc | int | None = None, origin: str | Proc | None = None,
               timeout: float = TIMEOUT, extra=()) -> tuple[cli.Run, dict]:
        args = ["--timeout", timeout]
        if local is not None:
            args += local_discovery_args(local if isinstance(local, int) else local.port)
        if origin is not None:
            args += ["--origin", origin.manifest_uri() if isinstance(origin, Proc) else origin]
        proc = cli.update(self.bin_dir, self.trust, MODEL, self.state, *args, *extra)
        assert proc.json is not None, f"update printed no JSON\n{proc.describe()}"
        return proc, proc.json

    def status(self) -> dict:
        return cli.status(self.bin_dir, self.state).json

    def installed_bytes(self) -> bytes:
        return (self.state / "installed" / IMAGE_NAME).read_bytes()

    def install_v1(self) -> None:
        """Installs a good 1.0.0 from our own server, then stops that server."""
        repo = self.publish("repo-v1", "1.0.0", self.v1)
        server = self.serve(repo)
        proc, report = self.update(origin=server)
        assert (proc.returncode, report["result"]) == (0, "updated"), proc.describe()
        assert report["version"] == "1.0.0"
        assert self.installed_bytes() == self.v1
        server.assert_clean_exit()

    def assert_v1_still_installed(self, context: str = "") -> None:
        status = self.status()
        assert status["version"] == "1.0.0", f"{context}\nstatus: {status}"
        [component] = status["components"]
        assert component["name"] == IMAGE_NAME
        assert component["size"] == len(self.v1)
        assert component["sha256"] == sha256(self.v1)
        installed = self.installed_bytes()
        assert len(installed) == len(self.v1) and installed == self.v1, (
            f"installed image changed: {len(installed)} bytes, sha256 {sha256(installed)}\n{context}")

    def assert_v2_installed(self, context: str = "") -> None:
        status = self.status()
        assert status["version"] == "1.1.0", f"{context}\nstatus: {status}"
        [component] = status["components"]
        assert (component["name"], component["size"], component["sha256"]) == (
            IMAGE_NAME, len(self.v2), sha256(self.v2)), f"{context}\nstatus: {status}"
        installed = self.installed_bytes()
        assert installed == self.v2, f"installed {len(installed)} bytes sha256 {sha256(installed)}\n{context}"


@pytest.fixture
def h(tmp_path: Path, bin_dir: Path, keygen, procs):
    return Harness(tmp_path, bin_dir, keygen, procs)


def block_requests(log: str, number: int, name: str = IMAGE_NAME) -> int:
    """How many times the malicious server saw a request for block `number` of the image."""
    return len(re.findall(rf"GET /\S*/{re.escape(name)} block {number}/", log))


def image_requests(log: str, name: str = IMAGE_NAME) -> int:
    return len(re.findall(rf"GET /\S*/{re.escape(name)} block ", log))


# ---------------------------------------------------------------------------
# The malicious server itself is a correct server without a fault
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [1024, 128])
def test_malicious_server_without_fault_serves_a_good_update(h, block_size):
    local = h.v2_behind("none")
    proc, report = h.update(local=local, extra=["--block-size", block_size])
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-3000:]
    assert proc.returncode == 0, context
    assert report["result"] == "updated", context
    assert report["source"] == LOCAL_URI
    assert report["version"] == "1.1.0"
    assert report["bytesTransferred"] == len(h.v2)
    assert [a["result"] for a in report["attempts"]] == ["updated"]
    h.assert_v2_installed(context)
    blocks = -(-len(h.v2) // block_size)
    assert image_requests(local.log()) == blocks, "each block asked exactly once"
    assert f"block {blocks - 1}/{block_size}:" in local.log()


# ---------------------------------------------------------------------------
# Transfer faults
# ---------------------------------------------------------------------------

# fault (without its block number) -> the result code it must give
FAULT_CODES = {
    "flip-bit": "digest-mismatch",      # found when the digests are compared
    "etag-change": "transfer-failed",
    "truncate": "digest-mismatch",      # body shorter than the manifest's size
    "extend": "digest-mismatch",        # body longer than the manifest's size
    "wrong-size2": "transfer-failed",   # Size2 contradicts the signed size: rejected at once
    "wrong-block": "transfer-failed",   # block at an unexpected offset
    "stall": "transfer-failed",         # no next block within --timeout
    "silent": "no-server",              # never answered anything
}


def fault_code(fault: str) -> str:
    return FAULT_CODES[fault.partition(":")[0]]


# fault -> restarts expected: how often block 0 of the image is asked for
TRANSFER_FAULTS = {
    "flip-bit:5": 1,
    "flip-bit:0": 1,
    "flip-bit:30": 1,       # the last (short) block
    "etag-change:5": 4,     # restarts 3 times, then gives up on this server
    "truncate:5": 4,
    "extend:700": 4,
    "wrong-size2": 1,
    "wrong-block:5": 4,
    "stall:5": 1,
    "stall:0": 1,           # answered the manifest, then nothing
    "silent": 0,
}
WAITS = {"stall:5", "stall:0", "silent"}


def check_failed_attempt(attempt: dict, fault: str, code: str, image_size: int):
    assert attempt["uri"] == LOCAL_URI
    assert attempt["result"] == code, f"{fault}: attempt {attempt}"
    assert attempt["reason"], f"{fault}: a failed attempt names its reason: {attempt}"
    if fault.startswith("flip-bit"):
        assert attempt["bytes"] == image_size, f"{fault}: the whole image was fetched before the digest check"
    if fault in ("wrong-size2", "silent", "stall:0"):
        assert attempt["bytes"] == 0, f"{fault}: no image byte may be accepted: {attempt}"


@pytest.mark.parametrize("fault", list(TRANSFER_FAULTS))
def test_transfer_fault_with_no_other_server_keeps_old_firmware(h, fault):
    code, block0 = fault_code(fault), TRANSFER_FAULTS[fault]
    local = h.v2_behind(fault)
    started = time.monotonic()
    proc, report = h.update(local=local)
    elapsed = time.monotonic() - started
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-4000:]

    assert proc.returncode == 1, context
    assert report["result"] == code, context
    assert report["source"] is None, context
    assert report["version"] == "1.0.0", "version is what is installed now"
    assert len(report["attempts"]) == 1, context
    check_failed_attempt(report["attempts"][0], fault, code, len(h.v2))
    assert report["reason"], context
    assert report["bytesTransferred"] == report["attempts"][0]["bytes"]
    h.assert_v1_still_installed(context)
    assert block_requests(local.log(), 0) == block0, f"block 0 asked for {block_requests(local.log(), 0)} times\n{context}"
    if fault in WAITS:
        assert elapsed >= TIMEOUT - 0.5, f"gave up after {elapsed:.1f} s, before --timeout {TIMEOUT}"
    assert elapsed < TIMEOUT + 6, f"took {elapsed:.1f} s with --timeout {TIMEOUT}"


@pytest.mark.parametrize("fault", list(TRANSFER_FAULTS))
def test_transfer_fault_falls_back_to_good_origin(h, fault):
    code = fault_code(fault)
    local = h.v2_behind(fault)
    good = h.serve(h.repo_v2)  # the same release, served correctly
    proc, report = h.update(local=local, origin=good)
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-4000:]

    assert proc.returncode == 0, context
    assert report["result"] == "updated", context
    assert report["source"] == good.manifest_uri(), context
    assert report["version"] == "1.1.0", context
    assert report["reason"] is None
    assert [a["uri"] for a in report["attempts"]] == [LOCAL_URI, good.manifest_uri()], context
    check_failed_attempt(report["attempts"][0], fault, code, len(h.v2))
    second = report["attempts"][1]
    assert second["result"] == "updated", context
    if fault.startswith("stall"):
        # What the stalled server delivered was right; a resume is allowed (same manifest).
        assert 0 < second["bytes"] <= len(h.v2), context
    else:
        assert second["bytes"] == len(h.v2), "nothing of the faulty transfer may be kept\n" + context
    assert report["bytesTransferred"] == sum(a["bytes"] for a in report["attempts"]), context
    h.assert_v2_installed(context)


def test_fault_then_good_run_installs_the_right_bytes(h):
    """Nothing the faulty run staged leaks into the next run's install."""
    bad = h.v2_behind("flip-bit:3")
    proc, report = h.update(local=bad)
    assert (proc.returncode, report["result"]) == (1, "digest-mismatch"), proc.describe()
    h.assert_v1_still_installed()
    bad.stop()
    good = h.malicious(h.repo_v2, "none")
    proc, report = h.update(local=good)
    assert (proc.returncode, report["result"]) == (0, "updated"), proc.describe()
    assert report["bytesTransferred"] == len(h.v2), "a failed digest leaves nothing to resume"
    h.assert_v2_installed(proc.describe())


@pytest.mark.parametrize("fault", ["flip-bit:100", "etag-change:40", "truncate:40", "wrong-block:40", "extend:30"])
def test_transfer_fault_at_64_byte_blocks(h, fault):
    """Block numbers count in the block size the client asked for."""
    code = fault_code(fault)
    local = h.v2_behind(fault)
    proc, report = h.update(local=local, extra=["--block-size", 64])
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-3000:]
    assert proc.returncode == 1, context
    assert report["result"] == code, context
    assert [a["result"] for a in report["attempts"]] == [code]
    assert re.search(rf"{IMAGE_NAME} block 1/64: 2.05", local.log()), "64-byte blocks asked for"
    assert not re.search(rf"{IMAGE_NAME} block \d+/(128|256|512|1024):", local.log())
    h.assert_v1_still_installed(context)


@pytest.mark.parametrize("fault", ["flip-bit:5", "etag-change:5", "truncate:5", "wrong-size2"])
def test_transfer_fault_with_json_manifests(h, fault):
    code = fault_code(fault)
    local = h.v2_behind(fault)
    good = h.malicious(h.repo_v2, "none")
    good_uri = f"coap://{good.authority()}/{MODEL_PATH}/manifest.json"
    proc, report = h.update(local=local, origin=good_uri, extra=["--format", "json"])
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-3000:]
    assert proc.returncode == 0, context
    assert report["result"] == "updated" and report["source"] == good_uri, context
    local_json = LOCAL_URI.replace("manifest.cbor", "manifest.json")
    assert [(a["uri"], a["result"]) for a in report["attempts"]] == [(local_json, code), (good_uri, "updated")], context
    assert "manifest.json block 0" in local.log() and "manifest.cbor" not in local.log()
    h.assert_v2_installed(context)


@pytest.mark.parametrize("mode", ["lock-step", "window"])
def test_slow_but_moving_transfer_is_not_cut_by_the_timeout(h, mode):
    """--timeout bounds the wait without progress, not the whole transfer.
    Lock-step waits for each block in turn (31 blocks at 150 ms: about 4.7 s,
    more than --timeout 3); a window of 4 blocks hides most of each wait, so
    there every block is 600 ms late."""
    local = h.v2_behind("slow:150" if mode == "lock-step" else "slow:600")
    started = time.monotonic()
    proc, report = h.update(local=local, extra=["--lock-step"] if mode == "lock-step" else [])
    elapsed = time.monotonic() - started
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-3000:]
    assert elapsed > TIMEOUT, f"the transfer took only {elapsed:.1f} s; the test proves nothing"
    assert proc.returncode == 0, context
    assert report["result"] == "updated", context
    assert report["bytesTransferred"] == len(h.v2)
    h.assert_v2_installed(context)


def test_server_answering_with_smaller_blocks(h):
    """RFC 7959 §2.4: a server may answer with a smaller block than asked for."""
    local = h.v2_behind("max-szx:4")
    proc, report = h.update(local=local, extra=["--block-size", 1024])
    context = proc.describe() + "\n--- malicious server ---\n" + local.log()[-3000:]
    assert proc.returncode == 0, context
    assert report["result"] == "updated", context
    # Each 256-byte block once, plus at most the window's other requests at
    # 1024 bytes (3), which were in flight when the first smaller answer came.
    blocks = -(-len(h.v2) // 256)
    assert blocks <= image_requests(local.log()) <= blocks + 3, context
    for n in range(blocks):
        assert f"block {n}/256: 2.05" in local.log(), f"block {n} of 256 bytes never served\n{context}"
    h.assert_v2_installed(context)


# ---------------------------------------------------------------------------
# Manifest faults (our own server serving a wrongly published repository)
# ---------------------------------------------------------------------------


def bad_release(h: Harness, kind: str) -> Path:
    """A repository whose manifest for example.com/c7960 must be refused."""
    if kind == "other-key":
        return h.publish("repo-bad", "1.1.0", h.v2, key_dir=h.other_keys)
    if kind == "other-model":
        # Published for c7961, then put where a c7960 looks for its manifest.
        scratch = h.publish("repo-scratch", "1.1.0", h.v2, model="c7961")
        repo = h.tmp / "repo-bad"
        shutil.copytree(scratch / model_path("c7961"), repo / MODEL_PATH)
        return repo
    if kind == "older-version":
        return h.publish("repo-bad", "0.9.0", seeded_bytes(V2_SIZE, "release 0.9.0"))
    if kind == "older-timestamp":
        # A higher version, signed earlier than the installed 1.0.0.
        return h.publish("repo-bad", "1.1.0", h.v2, timestamp="2020-01-01T00:00:00Z")
    raise ValueError(kind)


MANIFEST_FAULTS = {
    "other-key": "bad-signature",
    "other-model": "wrong-device",
    "older-version": "rollback",
    "older-timestamp": "rollback",
}


@pytest.mark.parametrize("kind", list(MANIFEST_FAULTS))
def test_manifest_fault_with_no_other_server_keeps_old_firmware(h, kind):
    code = MANIFEST_FAULTS[kind]
    h.install_v1()
    local = h.serve(bad_release(h, kind))
    proc, report = h.update(local=local)
    context = proc.describe()
    assert proc.returncode == 1, context
    assert report["result"] == code, context
    assert report["source"] is None and report["version"] == "1.0.0", context
    assert [(a["uri"], a["result"], a["bytes"]) for a in report["attempts"]] == [(LOCAL_URI, code, 0)], context
    assert report["bytesTransferred"] == 0, "a refused manifest fetches no image byte"
    assert report["reason"], context
    h.assert_v1_still_installed(context)


@pytest.mark.parametrize("kind", list(MANIFEST_FAULTS))
def test_manifest_fault_falls_back_to_good_origin(h, kind):
    code = MANIFEST_FAULTS[kind]
    h.install_v1()
    local = h.serve(bad_release(h, kind))
    good = h.serve(h.publish("repo-v2", "1.1.0", h.v2))
    proc, report = h.update(local=local, origin=f"coap://{good.authority()}")  # origin as a bare server URI
    context = proc.describe()
    assert proc.returncode == 0, context
    assert report["result"] == "updated", context
    assert report["source"] == good.manifest_uri(), "a bare origin means the standard manifest path"
    assert [(a["uri"], a["result"]) for a in report["attempts"]] == [
        (LOCAL_URI, code), (good.manifest_uri(), "updated")], context
    assert report["attempts"][0]["bytes"] == 0
    assert report["bytesTransferred"] == len(h.v2)
    h.assert_v2_installed(context)


def test_same_version_is_up_to_date_and_stops_discovery(h):
    h.install_v1()
    local = h.serve(h.publish("repo-same", "1.0.0", h.v1))
    # An origin with a newer release is not asked: the local manifest validated.
    origin = h.malicious(h.publish("repo-v2", "1.1.0", h.v2), "none")
    proc, report = h.update(local=local, origin=origin)
    context = proc.describe()
    assert proc.returncode == 0, context
    assert report["result"] == "up-to-date", context
    assert report["source"] == LOCAL_URI
    assert report["version"] == "1.0.0"
    assert report["bytesTransferred"] == 0
    assert [(a["uri"], a["result"]) for a in report["attempts"]] == [(LOCAL_URI, "up-to-date")], context
    h.assert_v1_still_installed(context)
    assert "GET " not in origin.log(), "origin not contacted"


# ---------------------------------------------------------------------------
# Slot size, nobody listening, CoAP errors
# ---------------------------------------------------------------------------


def test_slot_too_small_is_refused_before_any_image_byte(h):
    local = h.v2_behind("none")
    proc, report = h.update(local=local, extra=["--slot-size", len(h.v2) - 1])
    context = proc.describe() + "\n--- server ---\n" + local.log()[-3000:]
    assert proc.returncode == 1, context
    assert report["result"] == "too-large", context
    assert report["bytesTransferred"] == 0, context
    assert [(a["result"], a["bytes"]) for a in report["attempts"]] == [("too-large", 0)], context
    assert image_requests(local.log()) == 0, "the image was asked for\n" + context
    assert "manifest.cbor block 0" in local.log()
    h.assert_v1_still_installed(context)


def test_slot_exactly_the_image_size_is_enough(h):
    local = h.v2_behind("none")
    proc, report = h.update(local=local, extra=["--slot-size", len(h.v2)])
    assert (proc.returncode, report["result"]) == (0, "updated"), proc.describe()
    h.assert_v2_installed(proc.describe())


def test_nothing_listening_anywhere_is_no_server(h):
    h.install_v1()
    local_port, origin_port = free_udp_port(), free_udp_port()
    origin = f"coap://127.0.0.1:{origin_port}/{MODEL_PATH}/manifest.cbor"
    started = time.monotonic()
    proc, report = h.update(local=local_port, origin=origin)
    elapsed = time.monotonic() - started
    context = proc.describe()
    assert proc.returncode == 1, context
    assert report["result"] == "no-server", context
    assert report["source"] is None
    assert report["version"] == "1.0.0"
    assert report["bytesTransferred"] == 0
    assert [(a["uri"], a["result"], a["bytes"]) for a in report["attempts"]] == [
        (LOCAL_URI, "no-server", 0), (origin, "no-server", 0)], context
    assert elapsed < 2 * TIMEOUT + 4, f"{elapsed:.1f} s"
    h.assert_v1_still_installed(context)


def test_nothing_installed_and_no_server(h):
    proc, report = h.update(local=free_udp_port())
    assert proc.returncode == 1, proc.describe()
    assert report["result"] == "no-server"
    assert report["version"] is None
    assert h.status()["version"] is None


def test_local_404_falls_back_to_good_origin(h):
    h.install_v1()
    empty = h.tmp / "repo-empty"
    empty.mkdir()
    local = h.serve(empty)
    good = h.serve(h.publish("repo-v2", "1.1.0", h.v2))
    proc, report = h.update(local=local, origin=good)
    context = proc.describe()
    assert proc.returncode == 0, context
    assert report["result"] == "updated", context
    assert report["source"] == good.manifest_uri()
    first, second = report["attempts"]
    assert first["uri"] == LOCAL_URI and first["bytes"] == 0
    assert first["result"] not in ("updated", "up-to-date", "no-server"), f"a 4.04 is an answer: {first}"
    assert "4.04" in (first["reason"] or ""), f"the reason names the CoAP error: {first}"
    assert second["result"] == "updated"
    h.assert_v2_installed(context)


def test_local_404_only_fails_with_the_answering_servers_result(h):
    h.install_v1()
    empty = h.tmp / "repo-empty"
    empty.mkdir()
    local = h.serve(empty)
    proc, report = h.update(local=local, origin=f"coap://127.0.0.1:{free_udp_port()}")
    context = proc.describe()
    assert proc.returncode == 1, context
    first, second = report["attempts"]
    assert second["result"] == "no-server", context
    # Every server failed: the result is the failure at the last one that answered.
    assert report["result"] == first["result"] != "no-server", context
    h.assert_v1_still_installed(context)


@pytest.mark.parametrize("local_kind,origin_kind,expected", [
    ("flip-bit:5", "closed", "digest-mismatch"),       # origin never answered: the local failure counts
    ("wrong-size2", "other-model", "wrong-device"),   # both answered: the last one counts
    ("silent", "truncate:5", "digest-mismatch"),      # local never answered
])
def test_every_server_fails_result_is_the_last_answering_servers(h, local_kind, origin_kind, expected):
    local = h.v2_behind(local_kind)
    if origin_kind == "closed":
        origin_uri = f"coap://127.0.0.1:{free_udp_port()}/{MODEL_PATH}/manifest.cbor"
    elif origin_kind == "other-model":
        origin_uri = h.serve(bad_release(h, "other-model")).manifest_uri()
    else:
        origin_uri = h.malicious(h.repo_v2, origin_kind).manifest_uri()
    proc, report = h.update(local=local, origin=origin_uri)
    context = proc.describe()
    assert proc.returncode == 1, context
    assert report["result"] == expected, context
    assert report["source"] is None and report["version"] == "1.0.0", context
    assert [a["uri"] for a in report["attempts"]] == [LOCAL_URI, origin_uri], context
    h.assert_v1_still_installed(context)
