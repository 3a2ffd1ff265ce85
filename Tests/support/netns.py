"""Network namespaces for link-fault tests: a veth pair between two fresh
namespaces, netem on it, and, where the kernel has no netem, the user-space
relay (Tests/faults/relay.py) with one reader of its counters."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys

from support.paths import FAULTS_DIR, SUPPORT_DIR, authority
from support.procs import Proc, wait_for

RELAY = FAULTS_DIR / "relay.py"
COAP_SCRIPT = SUPPORT_DIR / "coap.py"


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


class NetnsPair:
    """Two fresh network namespaces joined by a veth pair, ``<net>.<n>.1/24``
    in ``server_ns`` and ``<net>.<n>.2/24`` in ``client_ns`` (``net`` is a
    /16 of private addresses that exist only inside these namespaces).
    Nothing outside them is touched; ``close()`` deletes both (and with them
    the veth)."""

    _counter = itertools.count(1)

    def __init__(self, tag: str = "cfw", net: str = "10.77"):
        k = next(NetnsPair._counter)
        name = f"{tag}{os.getpid() % 100000}x{k}"[-11:]
        self.server_ns, self.client_ns = f"{name}s", f"{name}c"
        self.server_if, self.client_if = f"{name}a", f"{name}b"
        subnet = (os.getpid() + k) % 250 + 1
        self.server_addr, self.client_addr = f"{net}.{subnet}.1", f"{net}.{subnet}.2"
        self.created: list[str] = []
        self.netem: bool | None = None
        self.netem_error = ""

    def _ip(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["ip", *map(str, args)], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"ip {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
        return proc

    @staticmethod
    def exec_prefix(ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns]

    def ends(self):
        """(namespace, interface) of the server's and the client's veth end."""
        return ((self.server_ns, self.server_if), (self.client_ns, self.client_if))

    def open(self) -> "NetnsPair":
        for ns in (self.server_ns, self.client_ns):
            self._ip("netns", "add", ns)
            self.created.append(ns)
        # The veth is created directly inside the server namespace, so no
        # interface ever appears in the namespace the tests run in.
        self._ip("-n", self.server_ns, "link", "add", self.server_if, "type", "veth",
                 "peer", "name", self.client_if, "netns", self.client_ns)
        for (ns, ifname), addr in zip(self.ends(), (self.server_addr, self.client_addr)):
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            self._ip("-n", ns, "link", "set", ifname, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
        return self

    def add_netem(self, spec=("loss", "10%", "delay", "20ms")) -> bool:
        """netem on both veth ends; False (reason in netem_error) when the
        kernel has no netem qdisc."""
        for ns, ifname in self.ends():
            proc = subprocess.run([*self.exec_prefix(ns), "tc", "qdisc", "add", "dev", ifname,
                                   "root", "netem", *spec], capture_output=True, text=True)
            if proc.returncode != 0:
                self.netem, self.netem_error = False, proc.stderr.strip() or f"exit {proc.returncode}"
                return False
        self.netem = True
        return True

    def tc_stats(self) -> str:
        """`tc -s qdisc show` of both veth ends, one line."""
        parts = []
        for ns, ifname in self.ends():
            proc = subprocess.run([*self.exec_prefix(ns), "tc", "-s", "qdisc", "show", "dev", ifname],
                                  capture_output=True, text=True)
            parts.append(" ".join(proc.stdout.split()))
        return " | ".join(parts)

    def probe_from_client(self, port: int, path: str = ".well-known/core") -> bool:
        """A CoAP GET from the client's namespace to the server address: a 2.05?"""
        return subprocess.run([*self.exec_prefix(self.client_ns), sys.executable, str(COAP_SCRIPT), "probe",
                               self.server_addr, str(port), path], capture_output=True).returncode == 0

    def close(self):
        errors = []
        for ns in reversed(self.created):
            proc = self._ip("netns", "del", ns, check=False)
            if proc.returncode != 0:
                errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
        self.created.clear()
        if errors:
            raise AssertionError("; ".join(errors))


def netem_args(loss: float, delay: float, dup: float = 0.0, reorder: float = 0.0) -> list[str]:
    """The faults of one direction as `tc qdisc add dev IF root netem ...`
    arguments (netem shapes a device's egress; put it on both veth ends).

    netem only reorders while other packets wait in its delay queue
    (reordered ones skip the delay), so reordering with no delay gets a 1 ms
    delay to have something to jump ahead of."""
    spec = []
    if loss:
        spec += ["loss", f"{loss * 100:g}%"]
    if delay or reorder:
        spec += ["delay", f"{max(delay * 1000, 1 if reorder else 0):g}ms"]
    if dup:
        spec += ["duplicate", f"{dup * 100:g}%"]
    if reorder:
        spec += ["reorder", f"{reorder * 100:g}%"]
    return spec or ["delay", "0ms"]


def start_relay(start, pair: NetnsPair | None, listen_port: int, upstream_port: int, *, loss: float | None = None,
                delay: float | None = None, dup: float | None = None, reorder: float | None = None, seed: int,
                stats_file=None, host: str = "127.0.0.1", extra=()) -> Proc:
    """The user-space relay from ``listen_port`` to the server at
    ``upstream_port``: in the server's namespace of ``pair`` on the server
    address, or (``pair`` None) on ``host`` right here, e.g. on loopback.
    Started with ``start(name, args)`` (``Processes.start`` or the like)
    and waited for; ``extra`` are more relay.py arguments (e.g.
    ``--profile lowpan``). A fault left None is not passed, so a profile's
    value stands (the relay's default is 0)."""
    prefix, addr = (pair.exec_prefix(pair.server_ns), pair.server_addr) if pair else ([], host)
    faults = [a for name, value in (("--loss", loss), ("--delay", delay), ("--dup", dup), ("--reorder", reorder))
              if value is not None for a in (name, value)]
    args = [*prefix, sys.executable, RELAY,
            "--listen", authority(addr, listen_port), "--upstream", authority(addr, upstream_port),
            *faults, "--seed", seed, *extra]
    if stats_file is not None:
        args += ["--stats-file", stats_file]
    relay = start("relay", args)
    wait_for(lambda: "relay " in relay.log() or not relay.alive(), 10, what="relay start")
    if not relay.alive():
        raise AssertionError(f"relay did not start\n{relay.describe()}")
    return relay


def relay_stats(log: str) -> dict | None:
    """The counters of the relay's last "relay stats {...}" line (printed when
    it stops), None if there is none."""
    found = None
    for line in log.splitlines():
        if line.startswith("relay stats "):
            found = json.loads(line[len("relay stats "):])
    return found
