"""coaps with X.509 certificates (libcoap's OpenSSL backend): a client
holding a certificate from the configured CA fetches an image; a client
without one gets nothing. Certificates are made here with the openssl CLI."""
import subprocess

from support import cli
from support.files import sha256
from support.paths import LIBCOAP_DTLS_CLIENT, image_path


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=coap-fw test CA", cwd=d)
    for name in ("server", "device"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", cwd=d)


def test_x509_mutual_authentication(tmp_path, bin_dir, server):
    make_pki(tmp_path)
    rel = cli.make_release(bin_dir, tmp_path, size=20_000, alg="EdDSA")
    device = ["-c", tmp_path / "device.pem", "-j", tmp_path / "device.key", "-C", tmp_path / "ca.pem"]

    def device_fetch(srv, path, out, *args, timeout=10):
        return cli.coap_get(srv.coaps_uri(path), out, *args, *device, client=LIBCOAP_DTLS_CLIENT, timeout=timeout)

    srv = server(rel.repo, "--cert", tmp_path / "server.pem", "--cert-key", tmp_path / "server.key",
                 "--ca", tmp_path / "ca.pem", plain=False, dtls=True, verbose=0,
                 ready=lambda s: bool(device_fetch(s, ".well-known/core", tmp_path / "core.txt", timeout=2)[1]))
    _, good = device_fetch(srv, image_path(), tmp_path / "good.bin", "-b", 256)
    assert good is not None and sha256(good) == sha256(rel.data)
    _, bad = cli.coap_get(srv.coaps_uri(image_path()), tmp_path / "bad.bin", client=LIBCOAP_DTLS_CLIENT, timeout=3)
    assert not bad or rel.data not in bad
