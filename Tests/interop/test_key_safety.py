"""Key safety (issue #5, docs/design.md "Keys").

- keygen writes private.pem with mode 0600 whatever the umask (umask 000),
  also when --force replaces a world-readable key pair.
- publish checks the mode of the key file itself, through a symlink too
  (the plain 0644/0640/0604/0660 refusals and --allow-insecure-key are in
  test_publish_interop.py); an owner-read-only 0400 key is accepted.
- Private key material never appears in any output: keygen, publish (also
  refused publishes), serve -vvv while its files are fetched, client update
  -vvv, verify and the --trust refusals. Searched for: every base64 line of
  private.pem, the raw private scalar / seed in hex (both cases) and base64.
  Nor in the repository or the device's state folder.
- `--trust` given something that is not a PEM public key (the private key,
  an empty file, garbage, PEM-armoured garbage, a SEC1 EC private key, a
  folder, a missing file), alone or next to a good key: exit 2 naming the
  file, nothing installed.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from support import cli
from support.files import write_random_file
from support.paths import CLIENT, MANUFACTURER, SERVER
from support.procs import crashes

MODEL = "keysafe"


def pem_body_lines(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def secrets_of(private_pem: Path) -> dict[str, str]:
    """Needles that would betray the private key: PEM lines, raw key bytes."""
    pem = private_pem.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.private_numbers().private_value.to_bytes(32, "big")
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    else:
        raise AssertionError(f"unexpected key type {type(key)}")
    needles = {f"PEM line {i + 1}": line for i, line in enumerate(pem_body_lines(pem))}
    needles["PEM body"] = "".join(pem_body_lines(pem))
    needles["raw key hex"] = raw.hex()
    needles["raw key HEX"] = raw.hex().upper()
    needles["raw key base64"] = base64.b64encode(raw).decode().rstrip("=")
    needles["raw key base64url"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    # also with separators, as some loggers print bytes ("ca:39:41..." / "ca 39 41")
    needles["raw key hex with colons"] = ":".join(f"{b:02x}" for b in raw[:12])
    needles["raw key hex with spaces"] = " ".join(f"{b:02x}" for b in raw[:12])
    return needles


def assert_no_secret(texts: dict[str, str], needles: dict[str, str], what: str):
    leaks = [(src, name) for src, text in texts.items() for name, needle in needles.items() if needle in text]
    assert not leaks, f"private key material of {what} found in output: {leaks}"


# ---------------------------------------------------------------------------
# file modes
# ---------------------------------------------------------------------------

def keygen_with_umask(bin_dir: Path, out: Path, alg: str, *extra) -> subprocess.CompletedProcess:
    cmd = f'umask 000; out="$1"; shift; exec "$0" keygen --alg {alg} --out "$out" "$@"'
    return subprocess.run(["sh", "-c", cmd, str(bin_dir / SERVER), str(out), *extra],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_keygen_private_key_0600_under_umask_000(alg, bin_dir, tmp_path):
    out = tmp_path / "keys"
    proc = keygen_with_umask(bin_dir, out, alg)
    assert proc.returncode == 0, proc.stderr
    mode = (out / "private.pem").stat().st_mode & 0o777
    assert mode == 0o600, f"private.pem written {oct(mode)} under umask 000 (expected 0o600)"
    # umask 000 must not make the public key or the folder writable by others either
    assert (out / "public.pem").stat().st_mode & 0o022 == 0, oct((out / "public.pem").stat().st_mode)
    assert out.stat().st_mode & 0o002 == 0, f"key folder world-writable: {oct(out.stat().st_mode)}"

    # --force over a world-readable pair: the new private key is 0600 again.
    os.chmod(out / "private.pem", 0o666)
    os.chmod(out / "public.pem", 0o666)
    before = (out / "private.pem").read_bytes()
    proc = keygen_with_umask(bin_dir, out, alg, "--force")
    assert proc.returncode == 0, proc.stderr
    assert (out / "private.pem").read_bytes() != before, "--force did not write a new key"
    mode = (out / "private.pem").stat().st_mode & 0o777
    assert mode == 0o600, f"private.pem rewritten with --force is {oct(mode)} (expected 0o600)"


def test_publish_checks_the_key_file_behind_a_symlink(bin_dir, keygen, tmp_path, fw_repo):
    keys, _ = keygen("ES256")
    image = tmp_path / "in" / "fw.bin"
    write_random_file(image, 3000)
    target = keys / "private.pem"
    link = tmp_path / "key-link.pem"
    link.symlink_to(target)
    os.chmod(target, 0o644)
    refused = cli.publish(bin_dir, fw_repo, link, MODEL, "1.0.0", image=image, check=False)
    assert refused.returncode == 2, refused.describe()
    assert "chmod" in (refused.stdout + refused.stderr).lower(), refused.describe()
    assert not (fw_repo / ".well-known").exists(), "a refused publish wrote into the repository"

    os.chmod(target, 0o400)  # owner read-only: fine
    ok = cli.publish(bin_dir, fw_repo, link, MODEL, "1.0.0", image=image, check=False)
    assert ok.returncode == 0, ok.describe()


# ---------------------------------------------------------------------------
# private key material never in any output
# ---------------------------------------------------------------------------

def test_private_key_never_in_output(bin_dir, server, coap_get, tmp_path):
    texts: dict[str, str] = {}

    def keep(name, proc):
        texts[name] = proc.stdout + proc.stderr
        assert not crashes(texts[name]), f"{name} crashed\n{texts[name]}"
        return proc

    repo = tmp_path / "repo"
    keysets = {}
    for alg in ("ES256", "EdDSA"):
        out = tmp_path / f"keys-{alg}"
        keep(f"keygen {alg}", cli.keygen(bin_dir, out, alg, "-vvv"))
        keysets[alg] = out

    image = tmp_path / "in" / "fw.bin"
    write_random_file(image, 5000)
    models = {}
    for alg, keys in keysets.items():
        model = f"{MODEL}-{alg.lower()}"
        models[alg] = model
        key = keys / "private.pem"
        for label, mode, status in (("insecure", 0o644, 2), ("", 0o600, 0)):
            os.chmod(key, mode)  # 0644 is refused, with a message about the file: must not quote it
            proc = keep(f"publish {alg} {label}".strip(), cli.publish(bin_dir, repo, key, model, "1.0.0", image=image,
                                                                       extra=["-vvv"], check=False))
            assert proc.returncode == status, proc.describe()

    srv = server(repo, verbose=3)
    for alg, model in models.items():
        base = f".well-known/firmware/{MANUFACTURER}/{model}"
        for path in (f"{base}/manifest.cbor", f"{base}/manifest.json", f"{base}/1.0.0/fw.bin"):
            _, data = coap_get(srv.uri(path), tmp_path / "fetched", "-b", "64")
            assert data == (repo / path).read_bytes(), f"fetch of {path} failed"
        state = tmp_path / f"state-{alg}"
        run = cli.update(bin_dir, keysets[alg] / "public.pem", model, state,
                         "--origin", f"coap://127.0.0.1:{srv.port}", "-vvv")
        keep(f"update {alg}", run)
        # (stdout is not checked as JSON here: see test_update_json_stdout_stays_json_with_vvv)
        assert run.returncode == 0 and '"result":"updated"' in run.stdout, run.describe()
        verify = cli.run_binary(bin_dir, CLIENT, "verify", "--trust", keysets[alg] / "public.pem",
                            repo / base / "manifest.cbor", "--image", image, "-vvv")
        keep(f"verify {alg}", verify)
        # a private key given as --trust is refused: the refusal must not quote it
        wrong = cli.update(bin_dir, keysets[alg] / "private.pem", model, tmp_path / f"state-wrong-{alg}",
                           "--origin", f"coap://127.0.0.1:{srv.port}", "-vvv")
        keep(f"update --trust private.pem {alg}", wrong)
        assert wrong.returncode == 2, wrong.describe()
        status = cli.status(bin_dir, state, check=False)
        keep(f"status {alg}", status)
    srv.stop()
    srv.assert_clean_exit()
    texts["serve -vvv log"] = srv.log()
    assert "fw.bin" in texts["serve -vvv log"], "the server log is empty: nothing was checked"

    on_disk = {}
    for root in [repo, *(tmp_path / f"state-{alg}" for alg in keysets)]:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                on_disk[str(path)] = data.decode("latin-1")
    for alg, keys in keysets.items():
        needles = secrets_of(keys / "private.pem")
        assert_no_secret(texts, needles, f"the {alg} key")
        raw_needles = {k: v for k, v in needles.items() if k.startswith("PEM")}
        raw_key = serialization.load_pem_private_key((keys / "private.pem").read_bytes(), None)
        if isinstance(raw_key, ec.EllipticCurvePrivateKey):
            raw = raw_key.private_numbers().private_value.to_bytes(32, "big")
        else:
            raw = raw_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
        raw_needles["raw key bytes"] = raw.decode("latin-1")
        raw_needles["raw key hex"] = raw.hex()
        assert_no_secret(on_disk, raw_needles, f"the {alg} key (files in the repository / state folder)")
    print(f"\nsearched {len(texts)} outputs ({sum(map(len, texts.values()))} characters) and "
          f"{len(on_disk)} files: no private key material")


@pytest.mark.parametrize("verbosity", ["-v", "-vv", "-vvv"])
def test_update_json_stdout_stays_json_with_verbose_logs(verbosity, bin_dir, server, tmp_path):
    """Logs go to stderr: with --json, stdout is one JSON object at any -v
    level (at -vvv libcoap's debug log also dumps every payload; on stdout it
    would both break --json and put raw bytes where scripts read results)."""
    rel = cli.make_release(bin_dir, tmp_path, model=MODEL, size=3000)
    srv = server(rel.repo)
    run = cli.update(bin_dir, rel.trust, MODEL, tmp_path / "state",
                     "--origin", f"coap://127.0.0.1:{srv.port}", verbosity)
    assert run.returncode == 0, run.describe()
    assert run.json is not None and run.json.get("result") == "updated", (
        f"stdout of update --json {verbosity} is not one JSON object "
        f"({len(run.stdout.splitlines())} lines; first: {run.stdout.splitlines()[0][:120]!r})")


# ---------------------------------------------------------------------------
# --trust files that are not public keys
# ---------------------------------------------------------------------------

BAD_TRUST = ["private-pkcs8", "private-ed25519", "private-sec1", "empty", "garbage", "pem-garbage",
             "folder", "missing"]


@pytest.fixture(scope="module")
def trust_setup(bin_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    rel = cli.make_release(bin_dir, root, model=MODEL, size=4000)
    ed = root / "keys-ed"
    cli.keygen(bin_dir, ed, "EdDSA")
    return {"root": root, "keys": rel.keys, "ed": ed, "repo": rel.repo}


def make_bad_trust(kind: str, setup, where: Path) -> Path:
    path = where / f"trust-{kind}.pem"
    if kind == "private-pkcs8":
        path.write_bytes((setup["keys"] / "private.pem").read_bytes())
    elif kind == "private-ed25519":
        path.write_bytes((setup["ed"] / "private.pem").read_bytes())
    elif kind == "private-sec1":
        key = serialization.load_pem_private_key((setup["keys"] / "private.pem").read_bytes(), None)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"\x30\x82\xff\xff" + os.urandom(200))
    elif kind == "pem-garbage":
        body = base64.encodebytes(os.urandom(91)).decode()
        path.write_text(f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n")
    elif kind == "folder":
        path.mkdir()
    elif kind == "missing":
        pass
    else:
        raise ValueError(kind)
    if path.is_file():
        os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize("together", [False, True], ids=["alone", "next-to-good-key"])
@pytest.mark.parametrize("kind", BAD_TRUST)
def test_trust_file_that_is_not_a_public_key_is_refused(kind, together, trust_setup, bin_dir, server, tmp_path):
    srv = server(trust_setup["repo"])
    bad = make_bad_trust(kind, trust_setup, tmp_path)
    state = tmp_path / "state"
    good = ["--trust", trust_setup["keys"] / "public.pem"] if together else []
    run = cli.update(bin_dir, bad, MODEL, state, *good, "--origin", f"coap://127.0.0.1:{srv.port}", "-v")
    text = run.stdout + run.stderr
    assert run.returncode == 2, f"--trust {kind}: expected exit 2\n{run.describe()}"
    assert str(bad) in text, f"the message should name {bad}\n{run.describe()}"
    assert not crashes(text), run.describe()
    assert not (state / "installed").exists(), f"something was installed with --trust {kind}"
    if state.exists():
        written = [str(p) for p in state.rglob("*") if p.is_file() and p.stat().st_size]
        assert not written, f"files written with --trust {kind}: {written}"
    if kind.startswith("private"):
        owner = trust_setup["ed"] if kind == "private-ed25519" else trust_setup["keys"]
        assert_no_secret({"update": text}, secrets_of(owner / "private.pem"), "the --trust file")

    # verify refuses it the same way
    ver = cli.run_binary(bin_dir, CLIENT, "verify", "--trust", bad,
                         trust_setup["repo"] / ".well-known/firmware" / MANUFACTURER / MODEL / "manifest.cbor")
    assert ver.returncode == 2 and str(bad) in ver.stdout + ver.stderr, ver.describe()
