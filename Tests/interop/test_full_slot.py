"""A staging slot that fills up mid-download (a 128 KiB tmpfs as the state
folder) ends the attempt with `transfer-failed` naming the file and the
error, not a misleading digest mismatch; nothing is installed."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import free_udp_port


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "slot"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_full_staging_slot(bin_dir, tmp_path, small_tmpfs):
    keys = tmp_path / "keys"
    subprocess.run([str(bin_dir / "coap-fw-server"), "keygen", "--alg", "ES256", "--out", str(keys)], check=True, capture_output=True)
    image = tmp_path / "fw.bin"
    image.write_bytes(os.urandom(300_000))
    repo = tmp_path / "repo"
    subprocess.run([str(bin_dir / "coap-fw-server"), "publish", "--repo", str(repo), "--key", str(keys / "private.pem"),
                    "--manufacturer", "example.com", "--model", "c7960", "--version", "1.0.0", "--image", str(image)],
                   check=True, capture_output=True)
    port = free_udp_port()
    server = subprocess.Popen([str(bin_dir / "coap-fw-server"), "serve", "--repo", str(repo), "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        state = small_tmpfs / "state"
        r = subprocess.run([str(bin_dir / "coap-fw-client"), "update", "--trust", str(keys / "public.pem"),
                            "--manufacturer", "example.com", "--model", "c7960", "--state", str(state),
                            "--origin", f"coap://127.0.0.1:{port}", "--timeout", "10", "--json"],
                           capture_output=True, text=True, timeout=60)
        doc = json.loads(r.stdout)
        assert r.returncode == 1 and doc["result"] == "transfer-failed", r.stdout + r.stderr
        assert "fw.bin.part" in doc["reason"] and "No space left" in doc["reason"], doc["reason"]
        status = subprocess.run([str(bin_dir / "coap-fw-client"), "status", "--state", str(state), "--json"],
                                capture_output=True, text=True)
        assert status.returncode == 0 and json.loads(status.stdout)["version"] is None
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
