"""coaps with X.509 certificates (libcoap's OpenSSL backend): a client
holding a certificate from the configured CA fetches an image; a client
without one gets nothing. Certificates are made here with the openssl CLI."""
import hashlib
import os
import signal
import socket
import subprocess
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=coap-fw test CA", cwd=d)
    for name in ("server", "device"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", cwd=d)


def test_x509_mutual_authentication(tmp_path, bin_dir):
    make_pki(tmp_path)
    keys = tmp_path / "keys"
    subprocess.run([str(bin_dir / "coap-fw-server"), "keygen", "--alg", "EdDSA", "--out", str(keys)], check=True, capture_output=True)
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(20_000))
    repo = tmp_path / "repo"
    subprocess.run([str(bin_dir / "coap-fw-server"), "publish", "--repo", str(repo), "--key", str(keys / "private.pem"),
                    "--manufacturer", "example.com", "--model", "c7960", "--version", "1.0.0", "--image", str(image)],
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen([str(bin_dir / "coap-fw-server"), "serve", "--repo", str(repo), "--no-plain",
                               "--cert", str(tmp_path / "server.pem"), "--cert-key", str(tmp_path / "server.key"),
                               "--ca", str(tmp_path / "ca.pem"), "--listen-dtls", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        assert server.poll() is None, server.stderr.read().decode()
        url = f"coaps://127.0.0.1:{port}/.well-known/firmware/example.com/c7960/1.0.0/fw.bin"
        good = tmp_path / "good.bin"
        subprocess.run(["coap-client-openssl", "-B", "10", "-b", "256", "-c", str(tmp_path / "device.pem"),
                        "-j", str(tmp_path / "device.key"), "-C", str(tmp_path / "ca.pem"), "-o", str(good), url],
                       capture_output=True, timeout=30)
        assert good.exists() and hashlib.sha256(good.read_bytes()).digest() == hashlib.sha256(image.read_bytes()).digest()
        bad = tmp_path / "bad.bin"
        subprocess.run(["coap-client-openssl", "-B", "3", "-o", str(bad), url], capture_output=True, timeout=30)
        assert not bad.exists() or image.read_bytes() not in bad.read_bytes()
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0
