"""A staging slot that fills up mid-download (a 128 KiB tmpfs as the state
folder) ends the attempt with `transfer-failed` naming the file and the
error, not a misleading digest mismatch; nothing is installed."""
import subprocess

import pytest

from support import cli


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "slot"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mount)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_full_staging_slot(bin_dir, tmp_path, small_tmpfs, server):
    rel = cli.make_release(bin_dir, tmp_path, size=300_000)
    srv = server(rel.repo)
    state = small_tmpfs / "state"
    r = cli.update(bin_dir, rel.trust, rel.model, state, "--origin", f"coap://127.0.0.1:{srv.port}",
                   "--timeout", "10", timeout=60)
    assert r.json is not None, r.describe()
    assert r.returncode == 1 and r.json["result"] == "transfer-failed", r.describe()
    assert "fw.bin.part" in r.json["reason"] and "No space left" in r.json["reason"], r.json["reason"]
    status = cli.status(bin_dir, state, check=False)
    assert status.returncode == 0 and status.json["version"] is None, status.describe()
