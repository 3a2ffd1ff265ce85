"""Shared fixtures for the coap-fw interop tests.

These tests drive the already-built binaries (``coap-fw-server`` and
``coap-fw-client``) and check what they write with independent Python
implementations (pycose, cbor2, cryptography). They never build anything.

The binaries are taken from ``$COAPFW_BIN`` (a folder), defaulting to
``<repo>/.build/debug``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = REPO_ROOT / "Vectors"

SERVER = "coap-fw-server"
CLIENT = "coap-fw-client"

# No single invocation should come anywhere near this; it only stops a hung
# binary from hanging the whole suite.
RUN_TIMEOUT = 20


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS_DIR


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    path = Path(os.environ.get("COAPFW_BIN", REPO_ROOT / ".build" / "debug"))
    missing = [name for name in (SERVER, CLIENT) if not (path / name).is_file()]
    if missing:
        pytest.fail(
            f"binaries {missing} not found in {path} "
            "(build the package first or point COAPFW_BIN at them)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def run(bin_dir: Path):
    """``run(program, *args, cwd=None, input=None)`` -> CompletedProcess.

    ``program`` is ``"coap-fw-server"`` / ``"coap-fw-client"`` (or the short
    forms ``"server"`` / ``"client"``) and is resolved in ``bin_dir``; every
    argument is converted with ``str``. Output is captured as text; the exit
    status is *not* checked, the tests look at it themselves.
    """

    def _run(program: str, *args, cwd=None, input=None) -> subprocess.CompletedProcess:
        name = {"server": SERVER, "client": CLIENT}.get(program, program)
        cmd = [str(bin_dir / name), *(str(a) for a in args)]
        return subprocess.run(
            cmd,
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    return _run


@pytest.fixture
def fw_repo(tmp_path: Path) -> Path:
    """An empty (not yet existing) repository folder for publish."""
    return tmp_path / "repo"


@pytest.fixture
def keygen(run, tmp_path: Path):
    """``keygen(alg, name=None)`` -> (dir, CompletedProcess); asserts success."""
    counter = {"n": 0}

    def _keygen(alg: str, name: str | None = None):
        counter["n"] += 1
        out = tmp_path / (name or f"keys-{alg.lower()}-{counter['n']}")
        proc = run(SERVER, "keygen", "--alg", alg, "--out", out)
        assert proc.returncode == 0, (
            f"keygen --alg {alg} failed ({proc.returncode}): {proc.stderr}"
        )
        return out, proc

    return _keygen



# ---------------------------------------------------------------------------
# coap-fw-server serve: processes, ports, and small CoAP helpers
# ---------------------------------------------------------------------------
#
# Everything below is used by test_server.py. The server runs as a real
# process on loopback; its stderr goes to a log file that failing tests print.

import hashlib
import signal
import socket
import struct
import time

LIBCOAP_CLIENT = "coap-client-notls"
LIBCOAP_DTLS_CLIENT = "coap-client-openssl"

# Exit codes / log texts that mean the server crashed instead of stopping.
CRASH_MARKERS = (
    "Fatal error",
    "Current stack trace",
    "Segmentation fault",
    "Illegal instruction",
    "Assertion failed",
    "AddressSanitizer",
    "Precondition failed",
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_etag(data: bytes) -> bytes:
    """The ETag the server promises: the first 8 bytes of SHA-256(content) as a
    number, without leading zero bytes (libcoap's encoding; docs/design.md)."""
    return hashlib.sha256(data).digest()[:8].lstrip(b"\x00") or b"\x01"


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free on ``host`` right now; ``host="both"`` asks for
    one free on 127.0.0.1 and on ::1 alike."""
    hosts = ["127.0.0.1", "::1"] if host == "both" else [host]
    for _ in range(50):
        socks = []
        try:
            port = 0
            for h in hosts:
                s = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((h, port))
                port = s.getsockname()[1]
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no free UDP port found on {hosts}")


def coap_message(mtype: int, code: int, mid: int, token: bytes = b"",
                 options=(), payload: bytes = b"") -> bytes:
    """Encode one CoAP message (RFC 7252 §3). ``options`` is a list of
    ``(number, bytes)``; they are sorted here. Used for probes and for the
    hand-made (also deliberately malformed) datagrams of the fault tests."""
    out = bytearray([0x40 | (mtype << 4) | len(token), code]) + struct.pack("!H", mid) + token
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        delta, length = number - last, len(value)
        last = number

        def nibble(n):
            if n < 13:
                return n, b""
            if n < 269:
                return 13, bytes([n - 13])
            return 14, struct.pack("!H", n - 269)

        dn, dx = nibble(delta)
        ln, lx = nibble(length)
        out += bytes([(dn << 4) | ln]) + dx + lx + value
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def uri_path_options(path: str):
    return [(11, seg.encode()) for seg in path.strip("/").split("/") if seg]


def coap_code(code: int) -> str:
    return f"{code >> 5}.{code & 31:02d}"


def coap_probe(host: str, port: int, path: str = ".well-known/core", timeout: float = 0.5):
    """One CON GET over a plain UDP socket; returns the response code string
    (e.g. ``"2.05"``) or None on time-out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        mid = int.from_bytes(os.urandom(2), "big")
        token = os.urandom(4)
        sock.sendto(coap_message(0, 1, mid, token, uri_path_options(path)), (host, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(2048)
            except (socket.timeout, ConnectionRefusedError):
                return None
            if len(data) >= 4 + (data[0] & 15) and data[4:4 + (data[0] & 15)] == token:
                return coap_code(data[1])
        return None


class ServerProcess:
    """One running ``coap-fw-server serve``."""

    def __init__(self, proc: subprocess.Popen, args, log_path: Path, host: str,
                 port: int | None, dtls_port: int | None):
        self.proc = proc
        self.args = args
        self.log_path = log_path
        self.host = host
        self.port = port
        self.dtls_port = dtls_port
        self.stopped_rc: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def authority(self, host: str | None = None, port: int | None = None) -> str:
        host = host or self.host
        port = port or self.port
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def uri(self, path: str, *, host: str | None = None) -> str:
        return f"coap://{self.authority(host)}/{path.lstrip('/')}"

    def coaps_uri(self, path: str, *, host: str | None = None) -> str:
        return f"coaps://{self.authority(host, self.dtls_port)}/{path.lstrip('/')}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        return f"server: {' '.join(map(str, self.args))}\n--- server log ---\n{self.log()[-6000:]}"

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait; returns the exit status (negative: killed)."""
        if self.stopped_rc is not None:
            return self.stopped_rc
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.stopped_rc = -9
                raise AssertionError(
                    f"server did not stop within {timeout} s of {signal.Signals(sig).name}\n"
                    + self.describe()
                )
        self.stopped_rc = self.proc.returncode
        return self.stopped_rc

    def assert_clean_exit(self, rc: int | None = None):
        rc = self.stopped_rc if rc is None else rc
        log = self.log()
        assert rc == 0, f"server exited with {rc} (expected 0)\n{self.describe()}"
        crashed = [m for m in CRASH_MARKERS if m in log]
        assert not crashed, f"server log shows a crash ({crashed})\n{self.describe()}"


class ServerLauncher:
    """Starts servers and, at teardown, stops each with SIGTERM and checks it
    exited 0 without crashing."""

    def __init__(self, bin_dir: Path, log_dir: Path):
        self.bin_dir = bin_dir
        self.log_dir = log_dir
        self.servers: list[ServerProcess] = []

    def start(self, repo: Path, *extra, host: str = "127.0.0.1", hosts=None,
              plain: bool = True, dtls: bool = False, psk_file: Path | None = None,
              verbose: int = 1, wait: bool = True, ready=None,
              ready_timeout: float = 15.0) -> ServerProcess:
        """Start ``serve --repo repo`` on free loopback port(s).

        ``hosts`` (default ``[host]``) are the plain-CoAP listen addresses, all
        on the same port; with ``dtls`` a coaps port is added (``psk_file`` is
        passed as --psk-file). ``ready`` is an optional callable(server) ->
        bool used instead of the plain /.well-known/core probe.
        """
        hosts = list(hosts or [host])
        host = hosts[0]
        port = free_udp_port("both" if len(hosts) > 1 else host) if plain else None
        args = [str(self.bin_dir / SERVER), "serve", "--repo", str(repo)]
        if plain:
            for h in hosts:
                args += ["--listen", f"[{h}]:{port}" if ":" in h else f"{h}:{port}"]
        else:
            args += ["--no-plain"]
        dtls_port = None
        if dtls:
            dtls_port = free_udp_port(host)
            args += ["--listen-dtls", f"[{host}]:{dtls_port}" if ":" in host else f"{host}:{dtls_port}"]
        if psk_file is not None:
            args += ["--psk-file", str(psk_file)]
        if verbose:
            args.append("-" + "v" * verbose)
        args += [str(a) for a in extra]
        log_path = self.log_dir / f"server-{len(self.servers) + 1}-{port or dtls_port}.log"
        log_file = open(log_path, "wb")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT)
        log_file.close()
        server = ServerProcess(proc, args, log_path, host, port, dtls_port)
        self.servers.append(server)
        if wait:
            deadline = time.monotonic() + ready_timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited early ({proc.returncode})\n{server.describe()}")
                if ready is not None:
                    if ready(server):
                        break
                elif all(coap_probe(h, port) == "2.05" for h in hosts):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not answering after {ready_timeout} s\n{server.describe()}")
                time.sleep(0.1)
        return server

    def stop_all(self):
        problems = []
        for server in self.servers:
            try:
                already = server.stopped_rc is not None
                rc = server.stop(signal.SIGTERM)
                if not already:
                    server.assert_clean_exit(rc)
            except AssertionError as e:
                problems.append(str(e))
        self.servers.clear()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(bin_dir: Path, tmp_path: Path):
    """``server(repo, *extra_args, host=..., hosts=[...], dtls=..., psk_file=...)``
    -> ServerProcess, already answering. Stopped with SIGTERM at teardown,
    which must give exit status 0 and no crash in its log."""
    launcher = ServerLauncher(bin_dir, tmp_path)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_server_launcher(bin_dir: Path, tmp_path_factory):
    """A ServerLauncher whose servers live for the whole test module."""
    launcher = ServerLauncher(bin_dir, tmp_path_factory.mktemp("servers"))
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="session")
def coap_get():
    """``coap_get(uri, out_path, *args, client=LIBCOAP_CLIENT, timeout=60)`` ->
    (CompletedProcess, bytes or None): runs libcoap's client with ``-o`` and
    returns what it wrote (None when it wrote no file). coap-client exits 0
    even on failure, so callers compare the bytes."""

    def _get(uri: str, out: Path, *args, client: str = LIBCOAP_CLIENT, timeout: float = 60):
        out = Path(out)
        if out.exists():
            out.unlink()
        proc = subprocess.run(
            [client, "-B", str(int(timeout)), *map(str, args), "-o", str(out), uri],
            capture_output=True, text=True, timeout=timeout + 10,
        )
        return proc, (out.read_bytes() if out.exists() else None)

    return _get


@pytest.fixture
def publish_release(run, keygen):
    """``publish_release(repo, version, image, manufacturer=..., model=...)``
    publishes with one ES256 key per test; asserts success; returns the
    CompletedProcess."""
    state = {}

    def _publish(repo: Path, version: str, image: Path, *, manufacturer: str = "example.com",
                 model: str = "c7960", extra=()):
        if "key" not in state:
            keys, _ = keygen("ES256", name="server-test-keys")
            state["key"] = keys / "private.pem"
        proc = run(SERVER, "publish", "--repo", repo, "--key", state["key"],
                   "--manufacturer", manufacturer, "--model", model,
                   "--version", version, "--image", image, *extra)
        assert proc.returncode == 0, (
            f"publish {manufacturer}/{model} {version} failed ({proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
        return proc

    return _publish
