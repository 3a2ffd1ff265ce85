"""Issue #12 item 3, key rollover: a device adopts the key a fully verified
and installed release announces in `key-info`, retires every other key once
a release signed by the adopted key is installed (its --trust anchor and
keys adopted meanwhile included), runs those rules once per installed
release (an anchor added later stays), and adopts nothing from a manifest
or release that failed.
Real processes: our server (or the malicious one), our client, files on disk."""
import json
import signal
import subprocess
import time
from pathlib import Path

from support import cli
from support.files import write_random_file
from support.procs import crashes

MODEL = "rollover"


def image_file(path: Path, size: int, seed: int) -> Path:
    write_random_file(path, size, seed=seed)
    return path


def kid_of(run) -> str:
    line = next(l for l in run.stdout.splitlines() if l.startswith("kid: "))
    return line.split(": ", 1)[1].strip()


def status(bin_dir, state, *anchors):
    args = ["status", "--state", state, "--json"]
    for a in anchors:
        args += ["--trust", a]
    run = cli.run_binary(bin_dir, cli.CLIENT, *args, timeout=30, parse_json=True)
    assert run.returncode == 0 and run.json is not None, run.describe()
    return run.json


def trust_of(doc) -> dict:
    """{kid: status} from status --json."""
    return {row["kid"]: row["status"] for row in doc["trust"]}


class Keys:
    def __init__(self, bin_dir, root: Path):
        self.dir = {}
        self.kid = {}
        for name in ("k1", "k2", "k3"):
            out = root / name
            self.kid[name] = kid_of(cli.keygen(bin_dir, out))
            self.dir[name] = out

    def private(self, name):
        return self.dir[name] / "private.pem"

    def public(self, name):
        return self.dir[name] / "public.pem"


def publish(bin_dir, repo, keys, signer, version, image, announce=None):
    extra = ["--key-info", keys.public(announce)] if announce else []
    cli.publish(bin_dir, repo, keys.private(signer), MODEL, version, image=image, extra=extra)


def update(bin_dir, keys, state, origin, *extra):
    return cli.update(bin_dir, keys.public("k1"), MODEL, state, "--origin", origin, *extra)


def test_rollover_k1_announces_k2_then_k2_signs_and_k1_is_retired(bin_dir, procs, tmp_path):
    """K1 signs 1.0.0 announcing K2: installed with --trust K1, K2 adopted.
    K2 alone signs 1.1.0: installed with --trust K1 still, and K1 retired.
    K1 signs 1.2.0: bad-signature, although --trust names K1 (retired)."""
    keys = Keys(bin_dir, tmp_path)
    image = image_file(tmp_path / "fw.bin", 20_000, seed=1)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image, announce="k2")
    server = procs.server(repo)
    origin = server.uri()

    first = update(bin_dir, keys, state, origin)
    cli.assert_updated(first, "1.0.0")
    assert trust_of(status(bin_dir, state, keys.public("k1"))) == {keys.kid["k2"]: "adopted", keys.kid["k1"]: "anchor"}
    saved = json.loads((state / "trust.json").read_text())
    assert [a["kid"] for a in saved["adopted"]] == [keys.kid["k2"]] and saved["adopted"][0]["announcedBy"] == "1.0.0"
    assert saved["retired"] == []

    publish(bin_dir, repo, keys, "k2", "1.1.0", image_file(tmp_path / "fw2.bin", 20_000, seed=2))
    second = update(bin_dir, keys, state, origin)
    cli.assert_updated(second, "1.1.0")
    assert trust_of(status(bin_dir, state, keys.public("k1"))) == {keys.kid["k1"]: "retired", keys.kid["k2"]: "adopted"}

    publish(bin_dir, repo, keys, "k1", "1.2.0", image_file(tmp_path / "fw3.bin", 20_000, seed=3))
    third = update(bin_dir, keys, state, origin)
    assert third.returncode == 1 and third.json["result"] == "bad-signature", third.describe()
    assert third.json["version"] == "1.1.0"
    assert status(bin_dir, state)["version"] == "1.1.0"


def test_an_anchor_added_after_the_rollover_is_not_retired(bin_dir, procs, tmp_path):
    """After the rollover (K2 adopted and signing, K1 retired), the operator
    adds --trust K3: the rules already ran on the installed 1.1.0, so K3 stays
    an anchor (it used to be retired at the next start), and a release K3
    signs installs."""
    keys = Keys(bin_dir, tmp_path)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image_file(tmp_path / "fw.bin", 5_000, seed=11), announce="k2")
    origin = procs.server(repo).uri()
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.0.0")
    publish(bin_dir, repo, keys, "k2", "1.1.0", image_file(tmp_path / "fw2.bin", 5_000, seed=12))
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.1.0")

    again = update(bin_dir, keys, state, origin, "--trust", keys.public("k3"))
    assert again.returncode == 0 and again.json["result"] == "up-to-date", again.describe()
    assert trust_of(status(bin_dir, state, keys.public("k1"), keys.public("k3"))) == {
        keys.kid["k1"]: "retired", keys.kid["k2"]: "adopted", keys.kid["k3"]: "anchor"}
    publish(bin_dir, repo, keys, "k3", "1.2.0", image_file(tmp_path / "fw3.bin", 5_000, seed=13))
    cli.assert_updated(update(bin_dir, keys, state, origin, "--trust", keys.public("k3")), "1.2.0")


def test_a_key_adopted_from_a_leaked_old_key_is_retired_by_the_rollover(bin_dir, procs, tmp_path):
    """K1 signs 1.0.0 announcing K2 (adopted). An attacker holding the leaked
    K1 signs 1.1.0 announcing K3: it installs (K1 is still trusted) and K3 is
    adopted, after K2. The manufacturer's K2 then signs 1.2.0: the set
    becomes K2 alone, K1 and K3 retired, and a 1.3.0 that K3 signs is
    bad-signature (a rule of "keys older than K2" kept K3)."""
    keys = Keys(bin_dir, tmp_path)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image_file(tmp_path / "fw.bin", 5_000, seed=21), announce="k2")
    origin = procs.server(repo).uri()
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.0.0")
    publish(bin_dir, repo, keys, "k1", "1.1.0", image_file(tmp_path / "fw2.bin", 5_000, seed=22), announce="k3")
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.1.0")
    assert trust_of(status(bin_dir, state, keys.public("k1")))[keys.kid["k3"]] == "adopted"

    publish(bin_dir, repo, keys, "k2", "1.2.0", image_file(tmp_path / "fw3.bin", 5_000, seed=23))
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.2.0")
    assert trust_of(status(bin_dir, state, keys.public("k1"))) == {
        keys.kid["k1"]: "retired", keys.kid["k2"]: "adopted", keys.kid["k3"]: "retired"}
    publish(bin_dir, repo, keys, "k3", "1.3.0", image_file(tmp_path / "fw4.bin", 5_000, seed=24))
    run = update(bin_dir, keys, state, origin)
    assert run.returncode == 1 and run.json["result"] == "bad-signature", run.describe()
    assert status(bin_dir, state)["version"] == "1.2.0"


def test_an_anchor_announced_again_is_still_retired(bin_dir, procs, tmp_path):
    """K2's first release announces K1 (a wrong --key-info, or K1 pushed back
    by whoever holds it): K1 is retired all the same; only a key still to
    come is spared."""
    keys = Keys(bin_dir, tmp_path)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image_file(tmp_path / "fw.bin", 5_000, seed=31), announce="k2")
    origin = procs.server(repo).uri()
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.0.0")
    publish(bin_dir, repo, keys, "k2", "1.1.0", image_file(tmp_path / "fw2.bin", 5_000, seed=32), announce="k1")
    cli.assert_updated(update(bin_dir, keys, state, origin), "1.1.0")
    assert trust_of(status(bin_dir, state, keys.public("k1"))) == {keys.kid["k1"]: "retired", keys.kid["k2"]: "adopted"}


def test_key_info_of_an_untrusted_manifest_is_not_adopted(bin_dir, procs, tmp_path):
    """An attacker's manifest signed by K3 announcing K3: bad-signature, and the
    trust set is what it was (no trust.json written)."""
    keys = Keys(bin_dir, tmp_path)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k3", "9.0.0", image_file(tmp_path / "fw.bin", 5_000, seed=4), announce="k3")
    run = update(bin_dir, keys, state, procs.server(repo).uri())
    assert run.returncode == 1 and run.json["result"] == "bad-signature", run.describe()
    assert not (state / "trust.json").exists()
    assert trust_of(status(bin_dir, state, keys.public("k1"))) == {keys.kid["k1"]: "anchor"}


def test_key_info_of_a_release_whose_image_fails_is_not_adopted(bin_dir, procs, tmp_path):
    """A release signed by K1 announcing K3 whose image arrives with a flipped
    bit: digest-mismatch, nothing installed, K3 not adopted."""
    keys = Keys(bin_dir, tmp_path)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image_file(tmp_path / "fw.bin", 20_000, seed=5), announce="k3")
    bad = procs.malicious(repo, "flip-bit:3")
    run = update(bin_dir, keys, state, bad.uri())
    assert run.returncode == 1 and run.json["result"] == "digest-mismatch", run.describe()
    assert not (state / "trust.json").exists()
    assert status(bin_dir, state, keys.public("k1"))["version"] is None
    assert trust_of(status(bin_dir, state, keys.public("k1"))) == {keys.kid["k1"]: "anchor"}


def test_kill_during_adoption_leaves_a_consistent_trust_set(bin_dir, procs, tmp_path):
    """kill -9 at 12 moments of an update (64-byte blocks) that installs a release announcing
    K2: after each kill, status reads the state (exit 0), trust.json is
    absent or whole, and K2 is adopted only with 1.0.0 installed. The window
    between the install switch and the trust file's rename is then replayed
    exactly (trust.json removed after a whole install): the next run, up to
    date, adopts K2 from the installed manifest."""
    keys = Keys(bin_dir, tmp_path)
    repo = tmp_path / "repo"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image_file(tmp_path / "fw.bin", 60_000, seed=6), announce="k2")
    origin = procs.server(repo).uri()
    state = tmp_path / "state"
    # 64-byte blocks one at a time: a run long enough (about 0.1 s here) to be killed at 12 points of it.
    argv = cli.update_args(bin_dir, keys.public("k1"), MODEL, state, "--origin", origin, "--block-size", "64",
                           "--lock-step")
    interrupted = 0
    for i in range(12):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.01 + 0.012 * i)
        interrupted += p.poll() is None
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=30)
        assert not crashes(err.decode(errors="replace"))
        if not state.exists():
            continue  # killed before it made the state folder
        doc = status(bin_dir, state, keys.public("k1"))
        trust = trust_of(doc)
        if (state / "trust.json").exists():
            json.loads((state / "trust.json").read_text())  # whole, never half-written
        if trust.get(keys.kid["k2"]) == "adopted":
            assert doc["version"] == "1.0.0", doc
        if doc["version"] == "1.0.0":
            break
    assert interrupted >= 2, f"only {interrupted} runs were killed before they ended"
    run = update(bin_dir, keys, state, origin)
    assert run.returncode == 0 and run.json["result"] in ("updated", "up-to-date"), run.describe()
    assert trust_of(status(bin_dir, state))[keys.kid["k2"]] == "adopted"

    (state / "trust.json").unlink()
    again = update(bin_dir, keys, state, origin)
    assert again.returncode == 0 and again.json["result"] == "up-to-date", again.describe()
    assert trust_of(status(bin_dir, state))[keys.kid["k2"]] == "adopted"


def test_unreadable_trust_file_stops_the_update(bin_dir, procs, tmp_path):
    """A trust.json that does not parse is an error naming it (exit 1), not a
    reset to the anchors, which would bring retired keys back."""
    keys = Keys(bin_dir, tmp_path)
    repo, state = tmp_path / "repo", tmp_path / "state"
    publish(bin_dir, repo, keys, "k1", "1.0.0", image_file(tmp_path / "fw.bin", 5_000, seed=7))
    state.mkdir()
    (state / "trust.json").write_text('{"adopted": [], "retired": ["zz"]}')
    run = update(bin_dir, keys, state, procs.server(repo).uri())
    assert run.returncode == 1 and "trust.json" in run.stderr, run.describe()
    assert not (state / "installed").exists()
    shown = cli.run_binary(bin_dir, cli.CLIENT, "status", "--state", state, "--json", timeout=30)
    assert shown.returncode == 1 and "trust.json" in shown.stderr, shown.describe()
