"""Issue #13 (hardening round 2), the client items 6-14: what an attacker
(or a careless signer) found on the device side, each as a test that failed
before the fix.

Real processes on loopback: `coap-fw-server publish`/`serve` for genuine
releases, manifests re-signed with the release key after a field was changed
(support.envelopes.resign_cose / resign_jws: cbor2 + cryptography, ES256),
and `coap-fw-client update`/`status` run as a device runs them. Checked: exit
codes, result codes in `--json`, what the reasons name, and the bytes on disk
(STATE/installed/<name> against SHA-256 of the published image, staging files
byte for byte, files outside the state folder).

- item 6: a signed timestamp outside the years 0000-9999 (milliseconds, the
  first second of 10000, before year 0; JSON offsets that cross the range)
  is `bad-manifest` naming `timestamp`; nothing installed; `status` and the
  next update still work, and the boundary values install.
- item 7: `release.json`, `manifest.cbor`, `manifest.json` as image names:
  refused by `publish` (usage) and, in a crafted signed manifest (single
  image location and component name, CBOR and JSON), by the client
  (`bad-manifest`); STATE/installed/ keeps the verified bytes.
- item 8: a resume record with a number >= 2^63 is ignored (no trap).
- item 9: symlinks planted in STATE/staging/ are not written through.
- item 10: `--state ''` and `--state FILE` are usage errors (exit 2); the
  empty one runs chrooted into an empty folder (a private mount namespace),
  so that a client that writes into "/" writes there.
- item 11: a replayed genuine manifest (the installed one, an older one,
  another model's) leaves a resumable download in staging untouched.
- item 12: a local server replaying the installed manifest cannot freeze the
  device: the origin is asked when `--origin-check` is due.
- item 13: traps and silent acceptances become usage errors.
- item 14: a JWS protected header with a member twice, and a `#fragment` in
  a location, are `bad-manifest`, with nothing fetched.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import cbor, cli
from support.cli import assert_installed
from support.envelopes import read_cose, read_jws, resign_cose, resign_jws
from support.files import sha256_file, snapshot, write_random_file
from support.paths import MANUFACTURER, local_discovery_args, local_manifest_uri, model_dir
from support.ports import free_udp_port
from support.procs import crashes, wait_for

MODEL = "c7960"
IMAGE = "fw.bin"
TIMEOUT = 5  # the client's --timeout: every server here answers at once
RESERVED = ("release.json", "manifest.cbor", "manifest.json")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def origin(server) -> list[str]:
    return ["--origin", f"coap://127.0.0.1:{server.port}"]


def update(bin_dir: Path, rel: cli.Release, state: Path, *extra, fmt: str = "cbor") -> cli.Run:
    return cli.update(bin_dir, rel.trust, rel.model, state, "--format", fmt, "--timeout", TIMEOUT, *extra,
                      timeout=60)


def assert_no_crash(run: cli.Run):
    assert run.returncode >= 0 and run.returncode != 132, f"killed by a signal / trapped\n{run.describe()}"
    assert not crashes(run.stderr + run.stdout), f"crash text in the output\n{run.describe()}"


def assert_refused(run: cli.Run, code: str, *names: str):
    """Exit 1, `result` = code, nothing fetched, and the reason names each of ``names``."""
    assert_no_crash(run)
    doc = run.json
    assert doc is not None, f"no JSON on stdout\n{run.describe()}"
    assert (run.returncode, doc.get("result")) == (1, code), f"expected exit 1 and {code}\n{run.describe()}"
    assert doc.get("bytesTransferred") == 0, f"image bytes fetched for a refused manifest\n{run.describe()}"
    for name in names:
        assert name in (doc.get("reason") or ""), f"the reason does not name {name!r}\n{run.describe()}"


def assert_nothing_installed(bin_dir: Path, state: Path):
    assert not (state / "installed").exists(), f"installed: {sorted(map(str, state.rglob('*')))}"
    releases = sorted(p.name for p in (state / "releases").iterdir()) if (state / "releases").exists() else []
    assert not releases, f"a release folder was built: {releases}"
    status = cli.status(bin_dir, state, check=False)
    assert status.returncode == 0 and status.json is not None, f"status fails afterwards\n{status.describe()}"
    assert status.json.get("version") is None and status.json.get("components") == [], status.json


def assert_installed_is_verified(bin_dir: Path, state: Path):
    """Every image `status` lists is on disk under STATE/installed/ with
    exactly the size and SHA-256 it reports (the verified ones): no image
    overwritten by one of the client's records, nor a record by an image."""
    status = cli.status(bin_dir, state, check=False)
    assert status.returncode == 0 and status.json is not None, f"status fails\n{status.describe()}"
    for comp in status.json.get("components", []):
        path = state / "installed" / comp["name"]
        assert path.is_file(), f"{path} listed by status is missing"
        size, digest = path.stat().st_size, sha256_file(path)
        assert (size, digest) == (comp["size"], comp["sha256"]), (
            f"STATE/installed/{comp['name']} holds {size} bytes sha256 {digest[:16]}..., but status reports the "
            f"verified {comp['size']} bytes sha256 {comp['sha256'][:16]}... (an image overwritten by a record?)")
    return status.json


def install(bin_dir: Path, rel: cli.Release, state: Path, server, *extra):
    run = update(bin_dir, rel, state, *origin(server), *extra)
    cli.assert_updated(run, rel.version, len(rel.data))
    assert_installed(bin_dir, state, rel.version, [(rel.image.name, rel.digest, len(rel.data))])
    return run


def publish_into(bin_dir: Path, root: Path, repo: str, version: str, size: int, *, name: str = IMAGE,
                 model: str = MODEL, keys: Path, timestamp: str | None = None, seed=None) -> cli.Release:
    """A release of ``version`` published into ROOT/<repo> with the keys in ``keys``."""
    image = root / "images" / f"{repo}-{version}" / name
    digest = write_random_file(image, size, seed=seed)
    rel = cli.Release(keys, root / repo, model, version, image, digest)
    cli.publish(bin_dir, rel.repo, rel.key, model, version, image=image, timestamp=timestamp)
    return rel


def read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def interrupt_download(procs, bin_dir: Path, rel: cli.Release, state: Path, server) -> dict:
    """Starts `update` of ``rel`` at 64-byte blocks and kills it (-9) as soon
    as STATE/staging/resume.json records progress; returns that record."""
    resume = state / "staging" / "resume.json"
    args = cli.update_args(bin_dir, rel.trust, rel.model, state, *origin(server), "--block-size", 64,
                           "--timeout", 10)
    client = procs.start("client-interrupted", args, check_exit=False)
    record = wait_for(lambda: (r := read_json(resume)) and isinstance(r, dict) and r.get("offset", 0) > 0 and r
                      or (not client.alive() and "exited"), timeout=30, what="a resume record with offset > 0")
    assert record != "exited", f"the download finished before it could be interrupted\n{client.describe()}"
    assert client.stop(signal.SIGKILL) == -signal.SIGKILL, client.describe()
    record = read_json(resume)
    assert isinstance(record, dict) and 0 < record["offset"] < len(rel.data), f"resume record: {record}"
    return record


# ===========================================================================
# item 6: timestamps outside the years 0000-9999
# ===========================================================================

# (format, bad timestamp, a boundary value of the same side that must install, what status shows for it)
TIMESTAMP_CASES = {
    "cbor-milliseconds": ("cbor", 1733000000000, 253402300799, "9999-12-31T23:59:59Z"),
    "cbor-year-10000": ("cbor", 253402300800, 253402300799, "9999-12-31T23:59:59Z"),
    "cbor-before-year-0": ("cbor", -62167219201, -62167219200, "0000-01-01T00:00:00Z"),
    "json-offset-into-10000": ("json", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    "json-offset-before-0": ("json", "0000-01-01T00:00:00+01:00", "0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
}


def _set_timestamp(rel: cli.Release, fmt: str, value):
    folder = model_dir(rel.repo, rel.model)
    if fmt == "cbor":
        resign_cose(folder / "manifest.cbor", rel.key, lambda p: p.__setitem__(2, cbor.Tag(1, value)))
    else:
        resign_jws(folder / "manifest.json", rel.key, lambda p: p.__setitem__("timestamp", value))


@pytest.mark.parametrize("case", list(TIMESTAMP_CASES))
def test_item6_timestamp_outside_years_0000_9999_is_bad_manifest(bin_dir, procs, tmp_path, case):
    """issue #13 client item 6: a correctly signed manifest whose timestamp
    cannot be written as an RFC 3339 year 0000-9999 (a signer writing
    milliseconds, the first second of year 10000, before year 0, a JSON
    offset that crosses the range) is refused as bad-manifest naming
    `timestamp`, nothing is installed, and the device is not bricked: status
    works, and the next (legal, boundary-valued) manifest installs and is
    reported with that timestamp. Before the fix it was installed with
    "version": null and every later status/update failed."""
    fmt, bad, boundary, shown = TIMESTAMP_CASES[case]
    rel = cli.make_release(bin_dir, tmp_path, size=3000 + 17)
    _set_timestamp(rel, fmt, bad)
    server = procs.server(rel.repo)
    state = tmp_path / "state"

    run = update(bin_dir, rel, state, *origin(server), fmt=fmt)
    assert_refused(run, "bad-manifest", "timestamp")
    assert_nothing_installed(bin_dir, state)

    # Not bricked: the same device takes the next good manifest.
    _set_timestamp(rel, fmt, boundary)
    again = update(bin_dir, rel, state, *origin(server), fmt=fmt)
    cli.assert_updated(again, rel.version, len(rel.data))
    doc = assert_installed(bin_dir, state, rel.version, [(IMAGE, rel.digest, len(rel.data))])
    assert doc["timestamp"] == shown, doc


# ===========================================================================
# item 7: image names the device keeps its records under
# ===========================================================================

@pytest.mark.parametrize("form", ["component", "image"])
@pytest.mark.parametrize("name", RESERVED)
def test_item7_publish_refuses_reserved_image_names(bin_dir, run, keygen, tmp_path, name, form):
    """issue #13 client item 7 (publisher side): `publish --component
    release.json=FILE` (and an --image file called so, and manifest.cbor,
    manifest.json) is a usage error naming the option and the name, and
    nothing is published: such an image would overwrite the device's own
    record of what it verified. Before the fix it was published (exit 0)."""
    keys, _ = keygen("ES256")
    repo = tmp_path / "repo"
    source = tmp_path / "src" / (name if form == "image" else "app.bin")
    write_random_file(source, 1000)
    choice = {"image": source} if form == "image" else {"components": [(name, source)]}
    result = run("server", *cli.publish_args(repo, keys / "private.pem", MODEL, "1.0.0", **choice))
    assert_no_crash(result)
    assert result.returncode == 2, f"expected a usage error (exit 2)\n{result.describe()}"
    option = "--image" if form == "image" else "--component"
    assert option in result.stderr and name in result.stderr, result.describe()
    assert not list(repo.rglob("manifest.*")), f"published anyway: {sorted(map(str, repo.rglob('*')))}"


def _craft_reserved(rel_root: Path, bin_dir: Path, keys: Path, name: str, shape: str) -> Path:
    """A genuine 1.1.0 release re-signed so that one image is called ``name``:
    the single image's location ends in it, or the second component is named so."""
    repo = rel_root / "repo-v2"
    if shape == "single":
        rel = publish_into(bin_dir, rel_root, "repo-v2", "1.1.0", 4000 + 3, keys=keys)
        folder = model_dir(repo)
        shutil.copy(folder / "1.1.0" / IMAGE, folder / "1.1.0" / name)  # served under that name too
        resign_cose(folder / "manifest.cbor", rel.key, lambda p: p.__setitem__(6, f"1.1.0/{name}"))
        resign_jws(folder / "manifest.json", rel.key, lambda p: p.__setitem__("firmwareLocation", f"1.1.0/{name}"))
    else:
        parts = []
        for part, size in (("boot", 2000 + 1), ("app", 3000 + 5)):
            path = rel_root / "images" / "1.1.0" / f"{part}.bin"
            write_random_file(path, size)
            parts.append((part, path))
        cli.publish(bin_dir, repo, keys / "private.pem", MODEL, "1.1.0", components=parts)
        folder = model_dir(repo)

        def rename_cbor(p):
            p[10][1][1] = name

        def rename_json(p):
            p["components"][1]["name"] = name

        resign_cose(folder / "manifest.cbor", keys / "private.pem", rename_cbor)
        resign_jws(folder / "manifest.json", keys / "private.pem", rename_json)
    return repo


@pytest.mark.parametrize("name,shape,fmt", [
    *[(name, shape, "cbor") for name in RESERVED for shape in ("single", "component")],
    ("release.json", "single", "json"), ("release.json", "component", "json"),
])
def test_item7_client_refuses_reserved_image_names(bin_dir, procs, tmp_path, name, shape, fmt):
    """issue #13 client item 7 (device side): a signed 1.1.0 whose image is
    called release.json / manifest.cbor / manifest.json (the last segment of
    a single image's location, or a component's name) is refused as
    bad-manifest; 1.0.0 stays installed and every file status lists under
    STATE/installed/ holds exactly the verified bytes. Before the fix the
    record overwrote the image (or the image the record) while status kept
    reporting the verified digest."""
    rel = cli.make_release(bin_dir, tmp_path, size=2500 + 9)
    state = tmp_path / "state"
    install(bin_dir, rel, state, procs.server(rel.repo))

    crafted = procs.server(_craft_reserved(tmp_path, bin_dir, rel.keys, name, shape))
    result = update(bin_dir, rel, state, *origin(crafted), fmt=fmt)
    assert_installed_is_verified(bin_dir, state)
    assert_refused(result, "bad-manifest")
    assert result.json["version"] == "1.0.0", result.describe()
    assert_installed(bin_dir, state, "1.0.0", [(IMAGE, rel.digest, len(rel.data))])


# ===========================================================================
# item 8: a resume record with numbers >= 2^63
# ===========================================================================

@pytest.fixture(scope="module")
def interrupted(bin_dir, module_procs, tmp_path_factory):
    """A 2 MiB release and a state folder holding the client's own
    interrupted download of it (kill -9 after the first resume record)."""
    root = tmp_path_factory.mktemp("interrupted")
    rel = cli.make_release(bin_dir, root, size=2 * 1024 * 1024 + 123)
    server = module_procs.server(rel.repo)
    state = root / "state"
    record = interrupt_download(module_procs, bin_dir, rel, state, server)
    return {"rel": rel, "server": server, "state": state, "record": record}


HUGE = {
    "component-2^63": {"component": 2**63},
    "blockSize-2^63": {"blockSize": 2**63},
    "all-2^63": {"component": 2**63, "offset": 2**63, "blockSize": 2**63},
}


@pytest.mark.parametrize("case", list(HUGE))
def test_item8_resume_record_with_huge_number_is_ignored(bin_dir, interrupted, tmp_path, case):
    """issue #13 client item 8: the client's own resume record (written by an
    interrupted download) with a numeric field set to 2^63 is an unusable
    record and is ignored like garbage JSON: the update succeeds from the
    start (the whole image fetched), the right bytes are installed, and no
    run dies of a trap (before the fix: exit 132 / SIGILL, no output, on
    every run)."""
    rel = interrupted["rel"]
    state = tmp_path / "state"
    shutil.copytree(interrupted["state"], state, symlinks=True)
    resume = state / "staging" / "resume.json"
    record = json.loads(resume.read_text())
    assert set(record) >= {"manifest", "component", "offset", "blockSize"}, record
    record.update(HUGE[case])
    resume.write_text(json.dumps(record))

    run = update(bin_dir, rel, state, *origin(interrupted["server"]))
    assert_no_crash(run)
    cli.assert_updated(run, rel.version, len(rel.data))
    assert_installed(bin_dir, state, rel.version, [(IMAGE, rel.digest, len(rel.data))])
    assert not resume.exists(), "resume record left behind after the install"


# ===========================================================================
# item 9: symlinks planted in staging
# ===========================================================================

@pytest.mark.parametrize("planted", ["part-to-file", "part-dangling"])
def test_item9_symlink_in_staging_is_not_written_through(bin_dir, procs, tmp_path, planted):
    """issue #13 client item 9: a symlink planted in STATE/staging/ under the
    name the client stages the image at (fw.bin.part, to an existing file or
    to a file that does not exist yet) or keeps its resume record at
    (resume.json), pointing outside the state folder: after the update the
    outside file is untouched (bytes and mtime) or still absent, and the
    installed image is the verified bytes. Before the fix the staging file
    was opened through the link: the outside file was overwritten (or
    created) with the image."""
    rel = cli.make_release(bin_dir, tmp_path, size=600 * 1024 + 11)  # > 256 KiB: a resume record is written
    server = procs.server(rel.repo)
    state = tmp_path / "state"
    (state / "staging").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.bin"
    original = b"precious bytes outside the state folder\n" * 100
    victim.write_bytes(original)
    os.utime(victim, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    link_name, target = {
        "part-to-file": (f"{IMAGE}.part", victim),
        "part-dangling": (f"{IMAGE}.part", outside / "created.bin"),
        "resume-to-file": ("resume.json", victim),
    }[planted]
    os.symlink(target, state / "staging" / link_name)

    run = update(bin_dir, rel, state, *origin(server))
    assert_no_crash(run)
    assert victim.read_bytes() == original, f"{victim} (outside the state folder) was written through the link"
    assert victim.stat().st_mtime_ns == 1_000_000_000_000_000_000, f"{victim} was modified"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.bin"], (
        f"created outside the state folder: {sorted(p.name for p in outside.iterdir())}")
    cli.assert_updated(run, rel.version, len(rel.data))
    assert_installed(bin_dir, state, rel.version, [(IMAGE, rel.digest, len(rel.data))])
    assert not (state / "installed" / IMAGE).is_symlink()


# ===========================================================================
# item 10: unusable --state
# ===========================================================================

FAKE_ROOT_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt", "etc", "dev", "proc", "tmp")


def _sandbox_unavailable() -> str | None:
    if not shutil.which("unshare") or not shutil.which("chroot"):
        return "unshare/chroot not installed"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no private mount namespace: {probe.stderr.strip()}"


def _fake_root(fake: Path, *needed: Path) -> list[str]:
    """Prepares ``fake`` as the root of a chroot: symlinks for the top-level
    symlinks of "/", empty mount points for the folders (bound in the
    sandbox), the top-level folders of ``needed`` too. Returns the shell
    commands that bind them."""
    fake.mkdir()
    names = list(FAKE_ROOT_DIRS)
    for path in needed:
        top = Path(path).resolve().parts[1]
        if top not in names:
            names.append(top)
    binds = []
    for name in names:
        real = Path("/") / name
        if real.is_symlink():
            os.symlink(os.readlink(real), fake / name)
        elif real.is_dir():
            (fake / name).mkdir()
            flag = "--rbind" if name in ("dev", "proc") else "--bind"
            binds.append(f"mount {flag} /{name} {fake / name}")
    return binds


def _run_chrooted(fake: Path, binds: list[str], args: list[str], timeout: float = 60) -> cli.Run:
    script = " && ".join([*binds, f'exec chroot {fake} "$@"'])
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *map(str, args)]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    result = cli.Run(cmd, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    try:
        result.json = json.loads(proc.stdout)
    except ValueError:
        pass
    return result


def test_item10_empty_state_is_a_usage_error_and_writes_nothing_to_root(bin_dir, procs, tmp_path):
    """issue #13 client item 10: `--state ''` (with a server offering a good
    release) is a usage error, exit 2, naming --state, and nothing is written
    into "/". The client runs chrooted into an empty folder inside a private
    mount namespace (the system folders bound in), so a client that treats
    '' as "/" writes into that folder, not into this machine's root; before
    the fix it created staging/, releases/, lock and installed there."""
    reason = _sandbox_unavailable()
    if reason:
        pytest.skip(f"cannot run the client chrooted: {reason}")
    rel = cli.make_release(bin_dir, tmp_path, size=2000 + 1)
    server = procs.server(rel.repo)
    fake = tmp_path / "fake-root"
    binds = _fake_root(fake, bin_dir, tmp_path)
    before = sorted(os.listdir(fake))
    real_before = sorted(os.listdir("/"))

    run = _run_chrooted(fake, binds, cli.update_args(bin_dir, rel.trust, rel.model, "", *origin(server),
                                                     "--timeout", TIMEOUT))
    assert "unshare:" not in run.stderr and "chroot:" not in run.stderr and "mount:" not in run.stderr, (
        f"the sandbox failed\n{run.describe()}")
    assert_no_crash(run)
    written = sorted(set(os.listdir(fake)) - set(before))
    assert not written, f"written into the (fake) root folder: {written}\n{run.describe()}"
    assert sorted(os.listdir("/")) == real_before
    assert run.returncode == 2, f"expected a usage error (exit 2)\n{run.describe()}"
    assert "--state" in run.stderr, run.describe()


def test_item10_state_naming_a_regular_file_is_a_usage_error(bin_dir, procs, tmp_path):
    """issue #13 client item 10: `--state FILE` (an existing regular file) is a
    usage error, exit 2, naming --state, and the file is left as it was
    (before the fix: exit 1, a failure like any failed update)."""
    rel = cli.make_release(bin_dir, tmp_path, size=2000 + 1)
    server = procs.server(rel.repo)
    state = tmp_path / "state-file"
    state.write_bytes(b"not a folder\n")
    run = update(bin_dir, rel, state, *origin(server))
    assert_no_crash(run)
    assert run.returncode == 2, f"expected a usage error (exit 2)\n{run.describe()}"
    assert "--state" in run.stderr, run.describe()
    assert state.read_bytes() == b"not a folder\n"


# ===========================================================================
# item 11: nothing touches staging before the manifest passed every check
# ===========================================================================

REPLAYS = {
    # kind: (expected result, exit status)
    "installed": ("up-to-date", 0),
    "older": ("rollback", 1),
    "other-model": ("wrong-device", 1),
}


@pytest.mark.parametrize("replay", list(REPLAYS))
def test_item11_replayed_manifest_leaves_staging_untouched(bin_dir, procs, tmp_path, replay):
    """issue #13 client item 11: 1.0.0 installed, a download of 2.0.0
    interrupted (kill -9) with a resume record; then a server replays a
    genuine, correctly signed manifest that must be refused or is already
    installed (the installed 1.0.0 -> up-to-date, an older 0.9.0 -> rollback,
    another model's -> wrong-device): staging is byte for byte what it was
    (the .part file, resume.json, no new empty .part file for the replay's
    image), and afterwards 2.0.0 resumes where it stopped. Before the fix
    the staging slot was opened and truncated before identity and freshness
    were checked."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    v1 = publish_into(bin_dir, tmp_path, "repo-v1", "1.0.0", 3000 + 7, keys=keys)
    v2 = publish_into(bin_dir, tmp_path, "repo-v2", "2.0.0", 2 * 1024 * 1024 + 77, keys=keys)
    state = tmp_path / "state"
    v1_server = procs.server(v1.repo)
    install(bin_dir, v1, state, v1_server)
    v2_server = procs.server(v2.repo)
    record = interrupt_download(procs, bin_dir, v2, state, v2_server)

    if replay == "installed":
        replay_server = v1_server
    elif replay == "older":
        old = publish_into(bin_dir, tmp_path, "repo-old", "0.9.0", 2000 + 3, name="old.bin", keys=keys,
                           timestamp="2020-01-01T00:00:00Z")
        replay_server = procs.server(old.repo)
    else:
        other = publish_into(bin_dir, tmp_path, "repo-scratch", "3.0.0", 2000 + 5, name="other.bin",
                             model="c7961", keys=keys)
        repo = tmp_path / "repo-other"
        shutil.copytree(model_dir(other.repo, "c7961"), model_dir(repo, MODEL))
        replay_server = procs.server(repo)

    staged = snapshot(state / "staging")
    assert f"{IMAGE}.part" in staged and "resume.json" in staged, sorted(staged)
    code, exit_status = REPLAYS[replay]
    run = update(bin_dir, v1, state, *origin(replay_server))
    assert_no_crash(run)
    after = snapshot(state / "staging")
    assert sorted(after) == sorted(staged), f"staging files changed: {sorted(staged)} -> {sorted(after)}"
    for name, data in staged.items():
        assert after[name] == data, (f"staging/{name} changed: {len(data)} -> {len(after[name])} bytes"
                                     if isinstance(data, bytes) and isinstance(after[name], bytes) else name)
    assert run.json is not None and (run.returncode, run.json["result"]) == (exit_status, code), run.describe()
    assert_installed(bin_dir, state, "1.0.0", [(IMAGE, v1.digest, len(v1.data))])

    resumed = update(bin_dir, v2, state, *origin(v2_server))
    cli.assert_updated(resumed, "2.0.0")
    assert resumed.json["bytesTransferred"] == len(v2.data) - record["offset"], (
        f"did not resume from offset {record['offset']}\n{resumed.describe()}")
    assert_installed(bin_dir, state, "2.0.0", [(IMAGE, v2.digest, len(v2.data))])


# ===========================================================================
# item 12: a local server replaying the installed manifest cannot freeze the device
# ===========================================================================

def _origin_checked(state: Path) -> int | None:
    try:
        return int((state / "origin-checked").read_text().strip())
    except (OSError, ValueError):
        return None


def test_item12_local_replay_cannot_freeze_the_device(bin_dir, procs, tmp_path):
    """issue #13 client item 12: a local server (found by discovery) keeps
    replaying the installed 1.0.0 manifest, the origin offers 2.0.0.
    (a) the first run with --origin asks the origin too (never asked
    before) and updates from it, writing STATE/origin-checked (epoch
    seconds); (b) after an origin answer, `--origin-check 86400` does not ask
    the origin again (up-to-date from the local server, one attempt, nothing
    fetched), (c) `--origin-check 0` asks it every time and updates. Before
    the fix the origin was never asked after a local up-to-date (and the
    option did not exist). (d) an origin whose image cannot be fetched has
    not settled anything: origin-checked is not written, the next run asks
    it again."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    v1 = publish_into(bin_dir, tmp_path, "repo-v1", "1.0.0", 3000 + 7, keys=keys)
    v2 = publish_into(bin_dir, tmp_path, "repo-v2", "2.0.0", 5000 + 9, keys=keys)
    local = procs.server(v1.repo)
    origin_v1 = procs.server(v1.repo)   # an origin with nothing newer
    origin_v2 = procs.server(v2.repo)   # an origin with 2.0.0
    discovery = local_discovery_args(local.port)
    origin_v2_uri = origin_v2.manifest_uri(MODEL)

    def run_update(state: Path, *extra) -> cli.Run:
        return update(bin_dir, v1, state, *discovery, *extra)

    # (a) device A: 1.0.0 from the local server (no origin configured), then the first run with an origin.
    state_a = tmp_path / "state-a"
    first = run_update(state_a)
    cli.assert_updated(first, "1.0.0", len(v1.data))
    assert _origin_checked(state_a) is None, "origin-checked written although no origin was asked"
    before = int(time.time())
    freeze = run_update(state_a, *origin(origin_v2))
    after = int(time.time())
    cli.assert_updated(freeze, "2.0.0", len(v2.data))
    assert freeze.json["source"] == origin_v2_uri, freeze.describe()
    assert [(a["uri"], a["result"]) for a in freeze.json["attempts"]] == [
        (local_manifest_uri(MODEL), "up-to-date"), (origin_v2_uri, "updated")], freeze.describe()
    assert_installed(bin_dir, state_a, "2.0.0", [(IMAGE, v2.digest, len(v2.data))])
    checked = _origin_checked(state_a)
    assert checked is not None and before - 1 <= checked <= after + 1, (
        f"STATE/origin-checked: {checked!r}, expected the time of the origin's answer ({before}..{after})")

    # (b) device B: 1.0.0 installed, the origin (nothing newer) just answered; then the origin has 2.0.0
    # but is not due for a day: the local up-to-date stands and the origin is not asked.
    state_b = tmp_path / "state-b"
    cli.assert_updated(run_update(state_b), "1.0.0", len(v1.data))
    checked_run = run_update(state_b, *origin(origin_v1), "--origin-check", 86400)
    assert checked_run.returncode == 0 and checked_run.json["result"] == "up-to-date", checked_run.describe()
    assert [a["result"] for a in checked_run.json["attempts"]] == ["up-to-date", "up-to-date"], (
        f"the origin was not asked although never asked before\n{checked_run.describe()}")
    assert _origin_checked(state_b) is not None
    not_due = run_update(state_b, *origin(origin_v2), "--origin-check", 86400)
    assert not_due.returncode == 0 and not_due.json["result"] == "up-to-date", not_due.describe()
    assert [a["uri"] for a in not_due.json["attempts"]] == [local_manifest_uri(MODEL)], (
        f"the origin was asked although it answered less than --origin-check ago\n{not_due.describe()}")
    assert not_due.json["bytesTransferred"] == 0 and not_due.json["version"] == "1.0.0", not_due.describe()

    # (c) --origin-check 0: every time.
    due = run_update(state_b, *origin(origin_v2), "--origin-check", 0)
    cli.assert_updated(due, "2.0.0", len(v2.data))
    assert due.json["source"] == origin_v2_uri, due.describe()
    assert_installed(bin_dir, state_b, "2.0.0", [(IMAGE, v2.digest, len(v2.data))])

    # (d) device C: the origin offers 2.0.0 but its image cannot be fetched (4.04): that is not an
    # answer that settles anything, so origin-checked is not written and the next run asks again.
    v2_broken = publish_into(bin_dir, tmp_path, "repo-v2-broken", "2.0.0", 5000 + 9, keys=keys)
    (model_dir(v2_broken.repo) / "2.0.0" / IMAGE).unlink()
    origin_broken = procs.server(v2_broken.repo)
    state_c = tmp_path / "state-c"
    cli.assert_updated(run_update(state_c), "1.0.0", len(v1.data))
    failed = run_update(state_c, *origin(origin_broken), "--origin-check", 86400)
    assert failed.json["result"] == "up-to-date", failed.describe()
    assert [a["result"] for a in failed.json["attempts"]] == ["up-to-date", "transfer-failed"], failed.describe()
    assert _origin_checked(state_c) is None, "origin-checked written after a failed download from the origin"
    again = run_update(state_c, *origin(origin_broken), "--origin-check", 86400)
    assert len(again.json["attempts"]) == 2, f"the origin was not asked again after a failed download\n{again.describe()}"


# ===========================================================================
# item 13: usage errors instead of traps
# ===========================================================================

@pytest.fixture(scope="module")
def kit(bin_dir, tmp_path_factory):
    """Keys, an image, an existing repository folder, a FIFO, a plain file."""
    root = tmp_path_factory.mktemp("usage")
    cli.keygen(bin_dir, root / "keys")
    image = root / IMAGE
    write_random_file(image, 1000)
    hidden = root / ".x"
    shutil.copy(image, hidden)
    fifo = root / "fifo"
    os.mkfifo(fifo)
    (root / "served").mkdir()
    plain = root / "plain-file"
    plain.write_bytes(b"a file, not a folder\n")
    return {"root": root, "keys": root / "keys", "image": image, "hidden": hidden, "fifo": fifo,
            "served": root / "served", "plain": plain}


def _publish(k, tmp_path, *extra, image=None, components=()):
    kw = {"components": components} if components else {"image": image or k["image"]}
    return ["server", *cli.publish_args(tmp_path / "repo", k["keys"] / "private.pem", MODEL, "1.0.0", **kw,
                                        extra=extra)]


def _serve(k, *extra):
    return ["server", "serve", "--repo", k["served"], "--listen", f"127.0.0.1:{free_udp_port()}", *extra]


def _update(k, tmp_path, *extra, state=None, manufacturer=MANUFACTURER, model=MODEL, scheme="coap"):
    return ["client", *cli.update_args(Path("."), k["keys"] / "public.pem", model, state or tmp_path / "state",
                                       "--origin", f"{scheme}://127.0.0.1:{free_udp_port()}", *extra,
                                       manufacturer=manufacturer)[1:]]


# id: (command builder (kit, tmp_path) -> [program, args...], texts the error message must contain)
USAGE_CASES = {
    "publish-timestamp-253402300800": (lambda k, t: _publish(k, t, "--timestamp", "253402300800"), ["--timestamp"]),
    "update-timeout-inf": (lambda k, t: _update(k, t, "--timeout", "inf"), ["--timeout"]),
    "update-timeout-1e300": (lambda k, t: _update(k, t, "--timeout", "1e300"), ["--timeout"]),
    "serve-idle-timeout-99999999999": (lambda k, t: _serve(k, "--idle-timeout", "99999999999"), ["--idle-timeout"]),
    "serve-max-sessions-0": (lambda k, t: _serve(k, "--max-sessions", "0"), ["--max-sessions"]),
    "update-manufacturer-empty": (lambda k, t: _update(k, t, manufacturer=""), ["--manufacturer"]),
    "update-model-empty": (lambda k, t: _update(k, t, model=""), ["--model"]),
    "publish-hidden-image": (lambda k, t: _publish(k, t, image=k["hidden"]), ["--image", ".x"]),
    "publish-hidden-component-name": (lambda k, t: _publish(k, t, components=[(".x", k["image"])]),
                                      ["--component", ".x"]),
    "publish-hidden-component-file": (lambda k, t: _publish(k, t, components=[("app", k["hidden"])]),
                                      ["--component", ".x"]),
    "update-coaps-origin-without-psk": (lambda k, t: _update(k, t, scheme="coaps"),
                                        ["--origin", "--psk-file"]),
    "publish-image-dev-zero": (lambda k, t: _publish(k, t, image=Path("/dev/zero")), ["--image", "/dev/zero"]),
    "publish-image-fifo": (lambda k, t: _publish(k, t, image=k["fifo"]), ["--image", "fifo"]),
    "publish-component-fifo": (lambda k, t: _publish(k, t, components=[("app", k["fifo"])]), ["--component", "fifo"]),
}


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_item13_usage_errors_instead_of_traps(bin_dir, kit, tmp_path, case):
    """issue #13 client item 13: each of these command lines is a usage error
    (exit 2, promptly, with a message naming the option) and never a trap
    (exit 132 / SIGILL), a hang or a silent acceptance: publish --timestamp
    253402300800, update --timeout inf / 1e300, serve --idle-timeout
    99999999999, serve --max-sessions 0, update --manufacturer '' / --model
    '', hidden names (.x) that the server would never serve, a coaps://
    origin without --psk-file, /dev/zero or a FIFO as an image (before: read
    forever)."""
    build, texts = USAGE_CASES[case]
    program, *args = build(kit, tmp_path)
    result = cli.run_binary(bin_dir, program, *args, timeout=10)
    assert_no_crash(result)
    assert result.returncode == 2, f"expected a usage error (exit 2)\n{result.describe()}"
    assert result.elapsed < 5, f"took {result.elapsed:.1f} s\n{result.describe()}"
    for text in texts:
        assert text in result.stderr, f"the message does not name {text!r}\n{result.describe()}"
    assert not (tmp_path / "repo").exists() or not list((tmp_path / "repo").rglob("manifest.*")), (
        "published anyway")


def test_item13_publish_timestamp_a_day_ahead_needs_force(bin_dir, kit, tmp_path):
    """issue #13 client item 13: `publish --timestamp` more than a day ahead
    of the clock is refused (usage error naming --timestamp and --force):
    one such release makes every later one a rollback for the whole fleet.
    With --force it is published, and less than a day ahead needs no
    --force. Before the fix a release years ahead was published silently."""
    ahead = str(int(time.time()) + 2 * 86400)
    refused = cli.run_binary(bin_dir, *_publish(kit, tmp_path, "--timestamp", ahead), timeout=30)
    assert_no_crash(refused)
    assert refused.returncode == 2, f"a timestamp two days ahead was accepted\n{refused.describe()}"
    assert "--timestamp" in refused.stderr and "--force" in refused.stderr, refused.describe()
    assert not list((tmp_path / "repo").rglob("manifest.*")), "published anyway"

    forced = cli.run_binary(bin_dir, *_publish(kit, tmp_path, "--timestamp", ahead, "--force"), timeout=30)
    assert forced.returncode == 0, forced.describe()
    signed = read_cose(model_dir(tmp_path / "repo") / "manifest.cbor")
    assert cbor.decode(signed.payload, deterministic=False)[2] == cbor.Tag(1, int(ahead))

    soon = str(int(time.time()) + 3600)
    near = cli.run_binary(bin_dir, *_publish(kit, tmp_path / "near", "--timestamp", soon), timeout=30)
    assert near.returncode == 0, f"an hour ahead needs no --force\n{near.describe()}"


@pytest.mark.parametrize("option", [("--levels", "99"), ("--height", "7"), ("--w", "3")],
                         ids=lambda o: o[0].lstrip("-"))
def test_item13_keygen_bad_option_leaves_no_folder(bin_dir, tmp_path, option):
    """issue #13 client item 13: `keygen --alg HSS-LMS` with an out-of-range
    --levels / --height / --w is a usage error naming the option and leaves
    no (empty) --out folder behind (before the fix the folder was created
    first)."""
    out = tmp_path / "new-keys"
    result = cli.keygen(bin_dir, out, "HSS-LMS", *option, check=False)
    assert_no_crash(result)
    assert result.returncode == 2, result.describe()
    assert option[0] in result.stderr, result.describe()
    assert not out.exists(), f"{out} left behind: {sorted(map(str, out.rglob('*')))}"


@pytest.mark.parametrize("alg", ["ES256", "HSS-LMS"])
def test_item13_public_key_as_signing_key_is_reported_as_public(bin_dir, kit, tmp_path, alg):
    """issue #13 client item 13: `publish --key public.pem` (or public.hss)
    fails (usage error, nothing published) with a message saying it is a
    public key, not that "the private key is readable by others" (before the
    fix the mode check ran first and called the public key a private key).
    A private key that others can read is still refused as such."""
    if alg == "ES256":
        keys = kit["keys"]
    else:
        keys = tmp_path / "hss-keys"
        cli.keygen(bin_dir, keys, "HSS-LMS", "--height", "5")
    public = keys / ("public.pem" if alg == "ES256" else "public.hss")
    result = cli.run_binary(bin_dir, "server", *cli.publish_args(tmp_path / "repo", public, MODEL, "1.0.0",
                                                                   image=kit["image"]), timeout=30)
    assert_no_crash(result)
    assert result.returncode == 2, result.describe()
    assert "public key" in result.stderr, f"not reported as a public key\n{result.describe()}"
    assert "readable by others" not in result.stderr, result.describe()
    assert not (tmp_path / "repo").exists() or not list((tmp_path / "repo").rglob("manifest.*"))

    if alg == "ES256":
        readable = tmp_path / "readable-private.pem"
        shutil.copy(keys / "private.pem", readable)
        readable.chmod(0o644)
        refused = cli.run_binary(bin_dir, "server", *cli.publish_args(tmp_path / "repo", readable, MODEL, "1.0.0",
                                                                        image=kit["image"]), timeout=30)
        assert refused.returncode == 2 and "readable by others" in refused.stderr, refused.describe()


@pytest.mark.parametrize("where", ["below-a-file", "at-a-file"])
def test_item13_json_run_prints_json_on_state_folder_error(bin_dir, kit, tmp_path, where):
    """issue #13 client item 13: `update --json` whose --state cannot be used
    still prints one JSON object: a folder below a regular file -> exit 1 with
    a result code and a reason naming --state; a regular file itself is a
    usage error (exit 2, item 10). Before the fix: exit 1 and no JSON."""
    state = kit["plain"] / "sub" if where == "below-a-file" else kit["plain"]
    result = cli.run_binary(bin_dir, *_update(kit, tmp_path, "--timeout", "2", state=state), timeout=30,
                            parse_json=True)
    assert_no_crash(result)
    if where == "at-a-file":
        assert result.returncode == 2 and "--state" in result.stderr, result.describe()
        return
    assert result.returncode == 1, result.describe()
    assert isinstance(result.json, dict), f"no JSON on stdout\n{result.describe()}"
    assert result.json.get("result") == "transfer-failed", result.describe()
    assert "--state" in (result.json.get("reason") or ""), result.describe()
    assert result.json.get("bytesTransferred") == 0 and result.json.get("attempts") == [], result.describe()


# ===========================================================================
# item 14: duplicate JWS header members, fragments in locations
# ===========================================================================

@pytest.mark.parametrize("header", ["alg-ES256-then-EdDSA", "alg-EdDSA-then-ES256", "kid-twice"])
def test_item14_jws_header_member_twice_is_bad_manifest(bin_dir, procs, tmp_path, header):
    """issue #13 client item 14: a manifest.json whose protected header names
    a member twice (alg first ES256 then EdDSA, the other way round, or kid
    twice), correctly signed over that header, is refused as bad-manifest
    naming the member (RFC 7515 §4), and nothing is fetched or installed.
    Before the fix the first alg won: installed, or bad-signature."""
    rel = cli.make_release(bin_dir, tmp_path, size=3000 + 1)
    path = model_dir(rel.repo) / "manifest.json"
    kid = read_jws(path).header["kid"]
    protected, member = {
        "alg-ES256-then-EdDSA": (f'{{"alg":"ES256","alg":"EdDSA","kid":"{kid}"}}', "alg"),
        "alg-EdDSA-then-ES256": (f'{{"alg":"EdDSA","alg":"ES256","kid":"{kid}"}}', "alg"),
        "kid-twice": (f'{{"alg":"ES256","kid":"{kid}","kid":"{kid}"}}', "kid"),
    }[header]
    resign_jws(path, rel.key, protected=protected)
    server = procs.server(rel.repo, verbose=2)
    state = tmp_path / "state"
    run = update(bin_dir, rel, state, *origin(server), fmt="json")
    assert_refused(run, "bad-manifest", member)
    assert_nothing_installed(bin_dir, state)
    assert f"/{rel.version}/" not in server.log(), f"an image was requested\n{server.describe()}"


@pytest.mark.parametrize("shape,fmt", [("single", "cbor"), ("single", "json"), ("component", "cbor")])
def test_item14_fragment_in_location_is_bad_manifest(bin_dir, procs, tmp_path, shape, fmt):
    """issue #13 client item 14: a signed manifest whose image location has a
    #fragment (1.0.0/fw.bin#frag; RFC 7252 §6.4: a CoAP request cannot carry
    one) is refused as bad-manifest naming the location field, and no image
    request reaches the server. Before the fix the fragment was sent as %23
    (a 4.04 and transfer-failed, or another file fetched)."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    repo = tmp_path / "repo"
    if shape == "single":
        rel = publish_into(bin_dir, tmp_path, "repo", "1.0.0", 3000 + 1, keys=keys)
        folder = model_dir(repo)
        resign_cose(folder / "manifest.cbor", rel.key, lambda p: p.__setitem__(6, "1.0.0/fw.bin#frag"))
        resign_jws(folder / "manifest.json", rel.key, lambda p: p.__setitem__("firmwareLocation", "1.0.0/fw.bin#frag"))
        field = "firmwareLocation"
    else:
        source = tmp_path / "images" / "app.bin"
        write_random_file(source, 3000 + 1)
        cli.publish(bin_dir, repo, keys / "private.pem", MODEL, "1.0.0", components=[("app", source)])
        rel = cli.Release(keys, repo, MODEL, "1.0.0", source, sha256_file(source))

        def with_fragment(p):
            p[10][0][2] += "#frag"

        resign_cose(model_dir(repo) / "manifest.cbor", rel.key, with_fragment)
        field = "location"
    server = procs.server(repo, verbose=2)
    state = tmp_path / "state"
    run = update(bin_dir, rel, state, *origin(server), fmt=fmt)
    assert_refused(run, "bad-manifest", field)
    assert_nothing_installed(bin_dir, state)
    assert "/1.0.0/" not in server.log(), f"an image was requested\n{server.describe()}"
