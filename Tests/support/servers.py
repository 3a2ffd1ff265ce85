"""A group of background processes started for one test (or module, or
fault-matrix cell): our server, aiocoap's file server, the malicious server,
the CoAPthon3 and txThings file servers (support/peers.py), anything else. ``stop_all()`` stops each and returns what went wrong."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from support import coap
from support.cli import serve_args
from support.paths import SERVER, SUPPORT_DIR, python_env
from support.ports import free_udp_port
from support.procs import Proc, start_process, wait_ready

MALICIOUS_SERVER = SUPPORT_DIR / "malicious_server.py"
PEERS = SUPPORT_DIR / "peers.py"


class Processes:
    """Starts processes with their logs in ``log_dir`` and keeps them for
    ``stop_all()``."""

    def __init__(self, bin_dir: Path, log_dir: Path):
        self.bin_dir = Path(bin_dir)
        self.log_dir = Path(log_dir)
        self.procs: list[Proc] = []

    def start(self, name: str, args, *, log_name: str | None = None, **kw) -> Proc:
        """``start_process`` with the log at LOG_DIR/<log_name or name-N>.log."""
        log_path = self.log_dir / f"{log_name or name.split()[0]}-{len(self.procs) + 1}.log"
        proc = start_process(name, args, log_path, **kw)
        self.procs.append(proc)
        return proc

    def server(self, repo: Path, *extra, host: str = "127.0.0.1", hosts=None, port: int | None = None,
               plain: bool = True, dtls: bool = False, dtls_port: int | None = None,
               psk_file: Path | None = None, verbose: int = 1, prefix=(), binary: Path | None = None,
               env: dict | None = None, ready=None, ready_timeout: float = 15.0) -> Proc:
        """``coap-fw-server serve --repo REPO`` on free loopback port(s), answering.

        ``hosts`` (default ``[host]``) are the plain-CoAP listen addresses,
        all on one port; ``dtls`` (or a ``dtls_port``) adds a coaps port.
        ``ready(server)`` replaces the default probe (a 2.05 for
        /.well-known/core at every host). ``prefix`` runs it behind e.g.
        ``ip netns exec NS``; ``binary`` is another build (the ASan one).
        A port taken by someone else between choosing and binding makes the
        server exit at once: then it is started again on other ports.
        """
        hosts = list(hosts or [host])
        for attempt in range(3):
            plain_port = (port or free_udp_port("both" if len(hosts) > 1 else hosts[0])) if plain else None
            secure_port = (dtls_port or free_udp_port(hosts[0])) if (dtls or dtls_port) else None
            args = [*prefix, binary or self.bin_dir / SERVER,
                    *serve_args(repo, *extra, hosts=hosts, port=plain_port, dtls_port=secure_port,
                                psk_file=psk_file, verbose=verbose)]
            proc = self.start("coap-fw-server", args, env=env, host=hosts[0], port=plain_port,
                              dtls_port=secure_port)
            probe = (lambda: ready(proc)) if ready else (
                lambda: all(coap.probe(h, plain_port) == "2.05" for h in hosts))
            try:
                wait_ready(proc, probe, ready_timeout)
                return proc
            except AssertionError:
                proc.checked = True  # reported here, not again by stop_all
                if proc.popen.returncode in (None, -9) or port or dtls_port or attempt == 2:
                    raise

    def aiocoap_fileserver(self, repo: Path, probe_path: str, *, host: str = "127.0.0.1",
                           ready_timeout: float = 30) -> Proc:
        """``aiocoap-fileserver --bind HOST:PORT REPO``, answering ``probe_path``."""
        exe = shutil.which("aiocoap-fileserver")
        assert exe, "aiocoap-fileserver not found on PATH (pip install aiocoap)"
        port = free_udp_port(host)
        proc = self.start("aiocoap-fileserver", [exe, "--bind", f"{host}:{port}", repo], host=host, port=port,
                          check_exit=False)
        wait_ready(proc, lambda: coap.probe(host, port, probe_path) == "2.05", ready_timeout)
        return proc

    def malicious(self, repo: Path, fault: str, *, host: str = "127.0.0.1") -> Proc:
        """support/malicious_server.py with one fault; its port comes on stdout."""
        Path(repo).mkdir(parents=True, exist_ok=True)
        return self.start(f"malicious_server ({fault})",
                          [sys.executable, MALICIOUS_SERVER, "--repo", repo, "--fault", fault, "--host", host],
                          log_name="malicious", host=host, port_on_stdout=True, env=python_env())

    def peer(self, stack: str, repo: Path, probe_path: str, *, host: str = "127.0.0.1",
             ready_timeout: float = 30) -> Proc:
        """support/peers.py's file server on ``stack`` (``coapthon3`` or
        ``txthings``), answering ``probe_path``; its port comes on stdout,
        and it must stop cleanly (exit 0, no traceback) like our server."""
        proc = self.start(f"{stack} file server",
                          [sys.executable, PEERS, "serve", "--stack", stack, "--repo", repo, "--host", host],
                          log_name=stack, host=host, port_on_stdout=True, env=python_env())
        wait_ready(proc, lambda: coap.probe(host, proc.port, probe_path) == "2.05", ready_timeout)
        return proc

    def stop_all(self) -> list[str]:
        """Stops every process; the problems of those that must end cleanly
        (exit 0, no crash text) and were not checked yet."""
        problems = []
        for proc in self.procs:
            if proc.check_exit and not proc.checked:
                problems += proc.problems()
            else:
                proc.stop()
        self.procs.clear()
        return problems
