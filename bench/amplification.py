#!/usr/bin/env python3
"""Amplification table (issue #13 server item 5): how many bytes one
unverified request gets back, from our server with its defaults and with
`--echo all`, and from libcoap's and aiocoap's servers in the same run, plus
which peer clients still complete against each of our settings.

    PYTHONPATH=Tests python3 bench/amplification.py [--bin .build/release]

A request is one CON GET from a fresh socket (a new peer to the server);
every datagram that comes back within half a second is counted. Loopback
only; the figures go to docs/security.md.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from support import cli, coap
from support.paths import image_path, manifest_path

HOST = "127.0.0.1"


def exchange(port, path, options=()):
    """(request bytes, response bytes, codes) for one request from a fresh socket."""
    message = coap.encode(coap.CON, coap.GET, int.from_bytes(os.urandom(2), "big"), b"",
                          [*coap.uri_path_options(path), *options])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(message, (HOST, port))
        got = []
        try:
            while True:
                got.append(sock.recv(65536))
        except socket.timeout:
            pass
    return len(message), sum(map(len, got)), [coap.decode(g).code_text for g in got]


def row(server, what, port, path, options=()):
    sent, back, codes = exchange(port, path, options)
    return [server, what, sent, back, f"{back / sent:.1f}x", " ".join(codes) or "-"]


def session_cost_kib(port, pid, sessions=1000):
    """VmRSS growth of the server after `sessions` fresh sockets each asked
    for /.well-known/core once (one session each at the server)."""
    before = common.rss_kib(pid)[0]
    socks = []
    try:
        for i in range(sessions):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1)
            socks.append(sock)
            sock.sendto(coap.encode(coap.CON, coap.GET, i, b"ab", coap.uri_path_options(".well-known/core")), (HOST, port))
            try:
                sock.recv(4096)
            except socket.timeout:
                pass
        return common.rss_kib(pid)[0] - before
    finally:
        for sock in socks:
            sock.close()


def completes(argv, expect=None, out=None):
    """Whether a client command exits 0 (and wrote `expect` to `out`)."""
    try:
        ok = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        return "no (hangs)"
    if ok and expect is not None:
        ok = out.exists() and out.read_bytes() == expect
    return "yes" if ok else "no"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=common.BIN)
    args = parser.parse_args()
    server_bin = str(args.bin / "coap-fw-server")
    client_bin = str(args.bin / "coap-fw-client")
    work = Path(tempfile.mkdtemp(prefix="coapfw-amp-"))
    image = common.random_file(work / "fw.bin", 300_000)
    cli.keygen(args.bin, work / "keys")
    repo = work / "repo"
    for model in ("c7960", "c7961", "c7962"):
        cli.publish(args.bin, repo, work / "keys" / "private.pem", model, "1.0.0", image=image)
    block = [(coap.BLOCK2, coap.block2(0, 6))]
    rows, peers, memory = [], [], []
    for mode in ("off", "all"):
        port = common.free_udp_port()
        proc = common.background([server_bin, *cli.serve_args(repo, "--echo", mode, port=port, verbose=0)])
        try:
            common.wait_coap(port)
            rows.append(row(f"coap-fw --echo {mode}", "/.well-known/core", port, ".well-known/core"))
            rows.append(row(f"coap-fw --echo {mode}", "image block 0 (1024)", port, image_path("c7960"), block))
            rows.append(row(f"coap-fw --echo {mode}", "manifest.cbor", port, manifest_path("c7960")))
            if mode == "off":
                memory.append(["coap-fw", session_cost_kib(port, proc.popen.pid)])
        finally:
            proc.stop()
        # Each client against a server of its own: one that echoes verifies
        # the address (127.0.0.1) for the next ones.
        results = {}
        peers_py = str(Path(cli.__file__).with_name("peers.py"))
        out = work / f"out-{mode}.bin"
        for name in ("coap-fw-client", "libcoap coap-client", "aiocoap-client", "CoAPthon3", "txThings"):
            port = common.free_udp_port()
            base, uri_path = f"coap://{HOST}:{port}", "/" + image_path("c7960")
            argv = {
                "coap-fw-client": [client_bin, "update", "--trust", str(work / "keys" / "public.pem"), "--manufacturer",
                                   "example.com", "--model", "c7960", "--state", str(work / f"state-{mode}"),
                                   "--origin", base, "--domain", "invalid.", "--timeout", "10"],
                "libcoap coap-client": ["coap-client-openssl", "-b", "1024", "-o", str(out), base + uri_path],
                "aiocoap-client": ["aiocoap-client", "-q", base + uri_path],
                "CoAPthon3": [sys.executable, peers_py, "get", "--stack", "coapthon3", "--out", str(out), "--timeout", "20",
                              HOST, str(port), uri_path],
                "txThings": [sys.executable, peers_py, "get", "--stack", "txthings", "--out", str(out), "--timeout", "20",
                             HOST, str(port), uri_path],
            }[name]
            if out.exists():
                out.unlink()
            proc = common.background([server_bin, *cli.serve_args(repo, "--echo", mode, port=port, verbose=0)])
            try:
                common.wait_coap(port)
                expect = None if name in ("coap-fw-client", "aiocoap-client") else image.read_bytes()
                results[name] = completes(argv, expect, out)
            finally:
                proc.stop()
        peers.append([f"--echo {mode}", *results.values()])
        peer_names = list(results)
    # The peers' own servers, same requests where they have the resources.
    port = common.free_udp_port()
    proc = common.background(["coap-server-openssl", "-A", HOST, "-p", str(port)])
    try:
        common.wait_coap(port)
        rows.append(row("libcoap coap-server", "/.well-known/core", port, ".well-known/core"))
        memory.append(["libcoap coap-server", session_cost_kib(port, proc.popen.pid)])
    finally:
        proc.stop()
    port = common.free_udp_port()
    proc = common.background(["aiocoap-fileserver", "--bind", f"{HOST}:{port}", str(repo)])
    try:
        common.wait_coap(port, image_path("c7960"))
        rows.append(row("aiocoap-fileserver", "/.well-known/core", port, ".well-known/core"))
        rows.append(row("aiocoap-fileserver", "image block 0 (1024)", port, image_path("c7960"), block))
    finally:
        proc.stop()
    print(common.table(["server", "request", "request B", "answer B", "factor", "codes"], rows))
    print()
    print(common.table(["our server", *peer_names], peers))
    print()
    print(common.table(["server", "VmRSS growth, 1000 sessions asking for /.well-known/core (KiB)"], memory))


if __name__ == "__main__":
    main()
