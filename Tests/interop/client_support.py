"""Helpers for test_client_interop.py: real `coap-fw-client` runs against our
server and aiocoap-fileserver, and a network-namespace pair for the
lossy-link test (where the kernel has no netem, that test uses the fault
matrix's relay, Tests/faults/relay.py).

Run as a script it offers a tool that the tests start inside network
namespaces (``ip netns exec NS python3 client_support.py ...``):

    probe HOST PORT PATH            one CoAP GET; exit 0 on a 2.05
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = "coap-fw-server"
CLIENT = "coap-fw-client"
MANUFACTURER = "example.com"
DOMAIN = "lan"
LOCAL_HOST = f"_firmware.{DOMAIN}"
HERE = Path(__file__).resolve()

CRASH_MARKERS = (
    "Fatal error",
    "Current stack trace",
    "Segmentation fault",
    "Illegal instruction",
    "Assertion failed",
    "Precondition failed",
    "AddressSanitizer",
)


# ---------------------------------------------------------------------------
# files and digests
# ---------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_random_file(path: Path, size: int, chunk: int = 1 << 20) -> str:
    """Streams ``size`` bytes of os.urandom to ``path``; returns the SHA-256."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            data = os.urandom(min(chunk, left))
            digest.update(data)
            f.write(data)
            left -= len(data)
    return digest.hexdigest()


def model_path(model: str, manufacturer: str = MANUFACTURER) -> str:
    return f".well-known/firmware/{manufacturer}/{model}"


def manifest_path(model: str, fmt: str = "cbor", manufacturer: str = MANUFACTURER) -> str:
    return f"{model_path(model, manufacturer)}/manifest.{fmt}"


def local_manifest_uri(model: str, fmt: str = "cbor") -> str:
    return f"coap://{LOCAL_HOST}/{manifest_path(model, fmt)}"


# ---------------------------------------------------------------------------
# running the binaries
# ---------------------------------------------------------------------------

@dataclass
class ClientRun:
    """One finished `coap-fw-client` invocation."""

    args: list
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    json: dict | None = None

    def describe(self) -> str:
        return (f"command: {' '.join(map(str, self.args))}\n"
                f"exit status: {self.returncode} after {self.elapsed:.1f} s\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-6000:]}")


def run_binary(bin_dir: Path, program: str, *args, timeout: float = 120,
               prefix=(), parse_json: bool = False) -> ClientRun:
    """Runs a binary from ``bin_dir`` (optionally behind ``prefix``, e.g.
    ``ip netns exec NS``); never raises on a non-zero exit."""
    cmd = [*map(str, prefix), str(Path(bin_dir) / program), *map(str, args)]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"{program} did not finish within {timeout} s\ncommand: {' '.join(cmd)}\n"
                             f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-6000:]}") from None
    result = ClientRun(cmd, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    if parse_json:
        try:
            result.json = json.loads(proc.stdout)
        except ValueError:
            result.json = None
    return result


def client_update(bin_dir: Path, trust: Path, model: str, state: Path, *extra,
                  manufacturer: str = MANUFACTURER, timeout: float = 120, prefix=()) -> ClientRun:
    """``coap-fw-client update ... --json`` -> ClientRun with ``.json`` parsed."""
    return run_binary(bin_dir, CLIENT, "update", "--trust", trust, "--manufacturer", manufacturer,
                      "--model", model, "--state", state, "--json", *extra,
                      timeout=timeout, prefix=prefix, parse_json=True)


def client_status(bin_dir: Path, state: Path) -> dict:
    run = run_binary(bin_dir, CLIENT, "status", "--state", state, "--json", timeout=30, parse_json=True)
    assert run.returncode == 0 and run.json is not None, f"status --json failed\n{run.describe()}"
    return run.json


def local_discovery_args(port: int, host: str = "127.0.0.1") -> list[str]:
    return ["--domain", DOMAIN, "--resolve", f"{LOCAL_HOST}:{host}:{port}"]


def keygen(bin_dir: Path, out: Path, alg: str = "ES256") -> Path:
    run = run_binary(bin_dir, SERVER, "keygen", "--alg", alg, "--out", out, timeout=30)
    assert run.returncode == 0, f"keygen failed\n{run.describe()}"
    return out


def publish(bin_dir: Path, repo: Path, key: Path, model: str, version: str, *,
            image: Path | None = None, components=(), manufacturer: str = MANUFACTURER) -> ClientRun:
    args = ["publish", "--repo", repo, "--key", key, "--manufacturer", manufacturer,
            "--model", model, "--version", version]
    if image is not None:
        args += ["--image", image]
    for name, path in components:
        args += ["--component", f"{name}={path}"]
    run = run_binary(bin_dir, SERVER, *args, timeout=300)
    assert run.returncode == 0, f"publish {model} {version} failed\n{run.describe()}"
    return run


def assert_updated(run: ClientRun, version: str, size: int | None = None):
    """Exit 0, result updated, version, and (if given) bytesTransferred == size."""
    doc = run.json
    assert doc is not None, f"client printed no JSON\n{run.describe()}"
    assert run.returncode == 0 and doc.get("result") == "updated", f"expected updated\n{run.describe()}"
    assert doc.get("version") == version, f"version {doc.get('version')!r} != {version!r}\n{run.describe()}"
    if size is not None:
        assert doc.get("bytesTransferred") == size, (
            f"bytesTransferred {doc.get('bytesTransferred')} != {size}\n{run.describe()}")
    assert doc.get("source"), f"no source\n{run.describe()}"
    assert doc["attempts"] and doc["attempts"][-1]["uri"] == doc["source"], run.describe()
    assert doc["attempts"][-1]["result"] == "updated", run.describe()
    assert not any(m in run.stderr for m in CRASH_MARKERS), f"client crashed?\n{run.describe()}"


def assert_installed(bin_dir: Path, state: Path, version: str, expected: list[tuple[str, Path | str, int]]):
    """STATE/installed/<name> holds each expected image (name, sha256 or
    source file, size), and `status --json` lists exactly these, in order."""
    wanted = []
    for name, source, size in expected:
        digest = sha256_file(source) if isinstance(source, Path) else source
        wanted.append((name, digest, size))
        installed = state / "installed" / name
        assert installed.is_file(), f"{installed} missing; state: {sorted(map(str, state.rglob('*')))}"
        assert installed.stat().st_size == size, f"{installed}: {installed.stat().st_size} bytes, expected {size}"
        assert sha256_file(installed) == digest, f"{installed}: SHA-256 differs from the published image"
    status = client_status(bin_dir, state)
    assert status.get("version") == version, status
    assert status.get("manufacturer") == MANUFACTURER, status
    got = [(c.get("name"), c.get("sha256"), c.get("size")) for c in status.get("components", [])]
    assert got == wanted, f"status components {got} != {wanted}"
    for comp in status["components"]:
        path = Path(comp["path"])
        path = path if path.is_absolute() else Path.cwd() / path
        assert path.resolve() == (state / "installed" / comp["name"]).resolve(), comp
    return status


# ---------------------------------------------------------------------------
# CoAP probe and UDP ports
# ---------------------------------------------------------------------------

def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def coap_get_code(host: str, port: int, path: str, timeout: float = 0.5) -> str | None:
    """One CON GET (Uri-Path only) over UDP; the response code or None."""
    token = os.urandom(4)
    mid = int.from_bytes(os.urandom(2), "big")
    msg = bytearray([0x40 | len(token), 0x01]) + struct.pack("!H", mid) + token
    last = 0
    for seg in [s for s in path.strip("/").split("/") if s]:
        value = seg.encode()
        delta, length = 11 - last, len(value)
        last = 11
        ext = b""
        if length >= 13:
            length, ext = 13, bytes([len(value) - 13])
        msg += bytes([(delta << 4) | length]) + ext + value
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(bytes(msg), (host, port))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data, _ = sock.recvfrom(4096)
                tkl = data[0] & 15
                if data[4:4 + tkl] == token:
                    return f"{data[1] >> 5}.{data[1] & 31:02d}"
        except (socket.timeout, ConnectionRefusedError, OSError):
            return None
    return None


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# server processes
# ---------------------------------------------------------------------------

@dataclass
class Proc:
    """A background process with its output in a log file."""

    name: str
    args: list
    popen: subprocess.Popen
    log_path: Path
    port: int | None = None
    host: str = "127.0.0.1"
    extra: dict = field(default_factory=dict)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe(self) -> str:
        return f"{self.name}: {' '.join(map(str, self.args))}\n--- {self.name} log ---\n{self.log()[-6000:]}"

    def stop(self, sig=signal.SIGTERM, timeout: float = 10) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                return -9
        return self.popen.returncode


def start_process(name: str, args, log_path: Path, **kw) -> Proc:
    log_file = open(log_path, "wb")
    popen = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                             stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    return Proc(name, list(args), popen, log_path, **kw)


def start_our_server(bin_dir: Path, repo: Path, log_dir: Path, *extra, host: str = "127.0.0.1",
                     port: int | None = None, dtls_port: int | None = None, psk_file: Path | None = None,
                     prefix=(), ready=None, ready_timeout: float = 15) -> Proc:
    """`coap-fw-server serve` on plain CoAP (and DTLS when ``dtls_port``)."""
    port = port or free_udp_port(host)
    args = [*prefix, Path(bin_dir) / SERVER, "serve", "--repo", repo, "--listen", f"{host}:{port}", "-v"]
    if dtls_port:
        args += ["--listen-dtls", f"{host}:{dtls_port}"]
    if psk_file:
        args += ["--psk-file", psk_file]
    args += list(extra)
    proc = start_process("coap-fw-server", args, log_dir / f"server-{port}.log", port=port, host=host)
    proc.extra["dtls_port"] = dtls_port
    probe = ready or (lambda: coap_get_code(host, port, ".well-known/core") == "2.05")
    _wait_ready(proc, probe, ready_timeout)
    return proc


def start_aiocoap_fileserver(repo: Path, log_dir: Path, probe_path: str, *, host: str = "127.0.0.1",
                             ready_timeout: float = 30) -> Proc:
    """`aiocoap-fileserver --bind HOST:PORT repo`, answering ``probe_path``."""
    exe = shutil.which("aiocoap-fileserver")
    assert exe, "aiocoap-fileserver not found on PATH (pip install aiocoap)"
    port = free_udp_port(host)
    args = [exe, "--bind", f"{host}:{port}", repo]
    proc = start_process("aiocoap-fileserver", args, log_dir / f"aiocoap-{port}.log", port=port, host=host)
    _wait_ready(proc, lambda: coap_get_code(host, port, probe_path) == "2.05", ready_timeout)
    return proc


def _wait_ready(proc: Proc, probe, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited early ({proc.popen.returncode})\n{proc.describe()}")
        if probe():
            return
        if time.monotonic() > deadline:
            proc.stop(signal.SIGKILL)
            raise AssertionError(f"{proc.name} not answering after {timeout} s\n{proc.describe()}")
        time.sleep(0.1)


def stop_our_server(proc: Proc) -> list[str]:
    """SIGTERM; problems (non-zero exit, crash text in the log) as strings."""
    rc = proc.stop(signal.SIGTERM)
    problems = []
    if rc != 0:
        problems.append(f"coap-fw-server exited with {rc} on SIGTERM (expected 0)\n{proc.describe()}")
    crashed = [m for m in CRASH_MARKERS if m in proc.log()]
    if crashed:
        problems.append(f"coap-fw-server log shows a crash {crashed}\n{proc.describe()}")
    return problems


# ---------------------------------------------------------------------------
# network namespaces
# ---------------------------------------------------------------------------

def netns_unavailable_reason() -> str | None:
    """None when `ip netns` can be used here, else why not."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return f"not root (euid {os.geteuid()}): cannot create network namespaces"
    name = f"cfwprobe{os.getpid()}"
    add = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if add.returncode != 0:
        return f"`ip netns add` failed: {add.stderr.strip() or add.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
    return None


_pair_counter = itertools.count(1)


class NetnsPair:
    """Two fresh network namespaces joined by a veth pair, 10.77.<n>.1/24 in
    ``server_ns`` and 10.77.<n>.2/24 in ``client_ns``. Nothing outside these
    namespaces is touched; ``close()`` deletes both (and with them the veth)."""

    def __init__(self):
        k = next(_pair_counter)
        tag = f"cfw{os.getpid()}{k}"[-11:]
        self.server_ns, self.client_ns = f"{tag}s", f"{tag}c"
        self.server_if, self.client_if = f"{tag}a", f"{tag}b"
        subnet = (os.getpid() + k) % 250 + 1
        self.server_addr, self.client_addr = f"10.77.{subnet}.1", f"10.77.{subnet}.2"
        self.created: list[str] = []
        self.netem: bool | None = None
        self.netem_error = ""

    def _ip(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["ip", *map(str, args)], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"ip {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
        return proc

    def exec_prefix(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def open(self) -> "NetnsPair":
        for ns in (self.server_ns, self.client_ns):
            self._ip("netns", "add", ns)
            self.created.append(ns)
        # The veth is created directly inside the server namespace, so no
        # interface ever appears in the namespace the tests run in.
        self._ip("-n", self.server_ns, "link", "add", self.server_if, "type", "veth",
                 "peer", "name", self.client_if, "netns", self.client_ns)
        for ns, ifname, addr in ((self.server_ns, self.server_if, self.server_addr),
                                 (self.client_ns, self.client_if, self.client_addr)):
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            self._ip("-n", ns, "link", "set", ifname, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
        return self

    def add_netem(self, spec=("loss", "10%", "delay", "20ms")) -> bool:
        """netem on both veth ends; False (reason in netem_error) when the
        kernel has no netem qdisc."""
        for ns, ifname in ((self.server_ns, self.server_if), (self.client_ns, self.client_if)):
            proc = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", ifname,
                                   "root", "netem", *spec], capture_output=True, text=True)
            if proc.returncode != 0:
                self.netem, self.netem_error = False, proc.stderr.strip() or f"exit {proc.returncode}"
                return False
        self.netem = True
        return True

    def close(self):
        errors = []
        for ns in reversed(self.created):
            proc = self._ip("netns", "del", ns, check=False)
            if proc.returncode != 0:
                errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
        self.created.clear()
        if errors:
            raise AssertionError("; ".join(errors))


# ---------------------------------------------------------------------------
# script entry points (run inside namespaces)
# ---------------------------------------------------------------------------

def parse_relay_stats(log: str) -> dict | None:
    for line in log.splitlines():
        if line.startswith("relay stats "):
            return json.loads(line[len("relay stats "):])
    return None


def _main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("path")
    args = parser.parse_args(argv)
    return 0 if coap_get_code(args.host, args.port, args.path) == "2.05" else 1


if __name__ == "__main__":
    sys.exit(_main())
