"""Issue #12 item 1, the verifying mirror: `coap-fw-server serve --mirror`
and `coap-fw-server mirror` copy an origin's releases into a local
repository only after the device's own checks (signature, product,
rollback, per-block digests), with the exact signed bytes; what fails is
never served; the origin sees one fetch per release whatever the number of
devices behind the mirror. Real processes on loopback: our server as the
origin (or the malicious one), our server as the mirror, our client."""
import hashlib
import re
import shutil
import time

from support import cli
from support.files import write_random_file
from support.ports import free_udp_port

from test_watch import Watch

MANUFACTURER = cli.MANUFACTURER
MODEL = "watched"  # test_watch.Watch's model
PRODUCT = f"{MANUFACTURER}/{MODEL}"


def model_dir(repo):
    return repo / ".well-known" / "firmware" / MANUFACTURER / MODEL


def publish(bin_dir, repo, keys, version, seed, size=20_000, model=MODEL):
    image = repo.parent / f"fw-{model}-{version}.bin"
    write_random_file(image, size, seed=seed)
    cli.publish(bin_dir, repo, keys / "private.pem", model, version, image=image)
    return image


def mirror_once(bin_dir, mirror_repo, origin, keys, *extra):
    return cli.run_binary(bin_dir, cli.SERVER, "mirror", "--repo", mirror_repo, "--origin", origin, "--trust",
                          keys / "public.pem", "--product", PRODUCT, "--once", "--json", "--origin-timeout", "5", *extra,
                          timeout=120, parse_json=True)


def wait_for_mirrored(mirror, mirror_repo):
    """Until the mirror has published a release (and its server rescanned it)."""
    deadline = time.monotonic() + 30
    while not (model_dir(mirror_repo) / "manifest.cbor").exists():
        assert time.monotonic() < deadline, f"nothing mirrored\n{mirror.log()[-3000:]}"
        time.sleep(0.1)
    time.sleep(1.2)  # the mirror's rescan


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_origin_mirror_device(bin_dir, procs, tmp_path):
    """Three processes: a release published at the origin reaches a device
    that watches the mirror with no manual step (the mirror observes the
    origin, publishes, its server notifies the device). The mirror serves
    the origin's exact signed bytes. The publish-to-installed latency is
    printed."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    origin_repo, mirror_repo = tmp_path / "origin", tmp_path / "mirror"
    publish(bin_dir, origin_repo, keys, "1.0.0", 1)
    origin = procs.server(origin_repo)
    mirror_repo.mkdir()
    mirror = procs.server(mirror_repo, "--mirror", f"coap://127.0.0.1:{origin.port}", "--trust", keys / "public.pem",
                          "--product", PRODUCT, "--poll", "300")
    watch = Watch(bin_dir, keys / "public.pem", tmp_path / "device", mirror.uri(), "--spread", "0", "--interval", "3600")
    try:
        watch.wait_for(lambda l: l.get("version") == "1.0.0", 30, "1.0.0 through the mirror")
        time.sleep(1)
        published = time.monotonic()
        image = publish(bin_dir, origin_repo, keys, "1.1.0", 2)
        line = watch.wait_for(lambda l: l.get("version") == "1.1.0", 30, "1.1.0 through the mirror")
        latency = watch.times[watch.lines.index(line)] - published
        print(f"publish at the origin to installed behind the mirror: {latency:.2f} s")
        assert line["source"].startswith(mirror.uri()), line
        for name in ("manifest.cbor", "manifest.json"):
            assert (model_dir(mirror_repo) / name).read_bytes() == (model_dir(origin_repo) / name).read_bytes(), name
        assert sha(model_dir(mirror_repo) / "1.1.0" / image.name) == sha(image)
        assert sha(tmp_path / "device" / "installed" / image.name) == sha(image)
        # Readable by a server running as another user, like a published image (the mirror's
        # staging files are 0600; the image is linked from there).
        for path in (model_dir(mirror_repo) / "1.1.0" / image.name, model_dir(mirror_repo) / "manifest.cbor"):
            assert path.stat().st_mode & 0o044 == 0o044, f"{path}: mode {oct(path.stat().st_mode)}"
    finally:
        watch.stop()


def test_mirror_serves_none_of_a_bad_origin(bin_dir, procs, tmp_path):
    """After a good 1.0.0: an origin with a foreign signature, a flipped image
    block, an older version, another product's manifest, or a stall is
    refused (exit 1, its result code), the mirror's files stay byte for byte
    those of 1.0.0, and a device behind the mirror installs 1.0.0 only."""
    keys, foreign = tmp_path / "keys", tmp_path / "foreign"
    cli.keygen(bin_dir, keys)
    cli.keygen(bin_dir, foreign)
    mirror_repo = tmp_path / "mirror"
    good_repo = tmp_path / "good"
    publish(bin_dir, good_repo, keys, "1.0.0", 3)
    good = procs.server(good_repo)
    first = mirror_once(bin_dir, mirror_repo, f"coap://127.0.0.1:{good.port}", keys)
    assert first.returncode == 0 and first.json["result"] == "updated", first.describe()
    snapshot = {p.relative_to(mirror_repo): p.read_bytes() for p in (mirror_repo / ".well-known").rglob("*") if p.is_file()}
    good.stop()

    def origin_with(name, setup):
        repo = tmp_path / name
        setup(repo)
        return repo

    foreign_repo = origin_with("foreign-sig", lambda r: publish(bin_dir, r, foreign, "2.0.0", 4))
    flipped_repo = origin_with("flipped", lambda r: publish(bin_dir, r, keys, "2.0.0", 5))
    older_repo = origin_with("older", lambda r: publish(bin_dir, r, keys, "0.9.0", 6))

    def other_product(r):
        publish(bin_dir, r, keys, "2.0.0", 7, model="other")
        src, dst = r / ".well-known" / "firmware" / MANUFACTURER / "other", model_dir(r)
        shutil.copytree(src, dst)
    wrong_repo = origin_with("wrong-product", other_product)
    stall_repo = origin_with("stall", lambda r: publish(bin_dir, r, keys, "2.0.0", 8))

    origins = [
        ("bad-signature", procs.server(foreign_repo)),
        ("digest-mismatch", procs.malicious(flipped_repo, "flip-bit:3")),
        ("rollback", procs.server(older_repo)),
        ("wrong-device", procs.server(wrong_repo)),
        ("transfer-failed", procs.malicious(stall_repo, "stall:2")),
    ]
    for expected, origin in origins:
        run = mirror_once(bin_dir, mirror_repo, f"coap://127.0.0.1:{origin.port}", keys)
        assert run.returncode == 1 and run.json["result"] == expected, f"{expected}\n{run.describe()}"
        now = {p.relative_to(mirror_repo): p.read_bytes() for p in (mirror_repo / ".well-known").rglob("*") if p.is_file()}
        assert now == snapshot, f"{expected}: the mirror's files changed: {sorted(set(now) ^ set(snapshot))}"

    served = procs.server(mirror_repo)
    device = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "device", "--origin", served.uri())
    cli.assert_updated(device, "1.0.0")


def test_origin_sees_one_fetch_per_release(bin_dir, procs, tmp_path):
    """The origin (the malicious server without a fault, which logs every
    block it serves) is asked for each image block once by the mirror,
    while three devices update through the mirror; a second sync is
    up-to-date and asks for no image block."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    origin_repo, mirror_repo = tmp_path / "origin", tmp_path / "mirror"
    image = publish(bin_dir, origin_repo, keys, "1.0.0", 9, size=50_000)
    origin = procs.malicious(origin_repo, "none")
    run = mirror_once(bin_dir, mirror_repo, f"coap://127.0.0.1:{origin.port}", keys)
    assert run.returncode == 0 and run.json["result"] == "updated", run.describe()
    served = procs.server(mirror_repo)
    for n in range(3):
        device = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / f"device{n}", "--origin", served.uri())
        cli.assert_updated(device, "1.0.0")
        assert sha(tmp_path / f"device{n}" / "installed" / image.name) == sha(image)
    again = mirror_once(bin_dir, mirror_repo, f"coap://127.0.0.1:{origin.port}", keys)
    assert again.returncode == 0 and again.json["result"] == "up-to-date", again.describe()
    blocks = -(-50_000 // 1024)
    asked = re.findall(rf"GET /\S*/{re.escape(image.name)} block (\d+)/", origin.log())
    print(f"origin image requests: {len(asked)} for {blocks} blocks, 3 devices behind the mirror")
    assert sorted(int(b) for b in asked) == list(range(blocks)), asked


def test_mirror_keeps_two_releases_and_follows_a_key_rollover(bin_dir, procs, tmp_path):
    """K1 signs 1.0.0 announcing K2; K2 alone signs 1.1.0 and 1.2.0. A mirror
    trusting only K1 publishes all three (it adopts K2 as a device does), and
    keeps the version folders of the current and the previous release, also
    when the previous one's key was just retired."""
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    cli.keygen(bin_dir, k1)
    cli.keygen(bin_dir, k2)
    origin_repo, mirror_repo = tmp_path / "origin", tmp_path / "mirror"
    image = origin_repo.parent / "fw.bin"
    write_random_file(image, 10_000, seed=10)
    cli.publish(bin_dir, origin_repo, k1 / "private.pem", MODEL, "1.0.0", image=image,
                extra=["--key-info", k2 / "public.pem"])
    origin = procs.server(origin_repo)
    uri = f"coap://127.0.0.1:{origin.port}"
    assert mirror_once(bin_dir, mirror_repo, uri, k1).json["result"] == "updated"
    for version, seed, kept in (("1.1.0", 11, ["1.0.0", "1.1.0"]), ("1.2.0", 12, ["1.1.0", "1.2.0"])):
        publish(bin_dir, origin_repo, k2, version, seed)
        time.sleep(1.2)  # the origin's rescan
        run = mirror_once(bin_dir, mirror_repo, uri, k1)
        assert run.returncode == 0 and run.json["result"] == "updated" and run.json["version"] == version, run.describe()
        # At 1.1.0 K1 is retired: 1.0.0, which K1 signed, is still the previous release and kept.
        folders = sorted(p.name for p in model_dir(mirror_repo).iterdir() if p.is_dir())
        assert folders == kept, f"at {version}: {folders}"


def test_mirror_option_errors(bin_dir, tmp_path):
    for args, named in [(["--origin", "coap://h/some/path"], "--origin"), (["--origin", "http://h"], "--origin"),
                        (["--origin", "coap://127.0.0.1:1", "--product", "nomodel"], "--product"),
                        (["--origin", "coap://127.0.0.1:1", "--product", "a/b", "--poll", "0"], "--poll")]:
        run = cli.run_binary(bin_dir, cli.SERVER, "mirror", "--repo", tmp_path / "m", "--trust", tmp_path / "k.pem",
                             *args, "--once", timeout=10)
        assert run.returncode == 2 and named in run.stderr, run.describe()
    run = cli.run_binary(bin_dir, cli.SERVER, "serve", "--repo", tmp_path, "--listen", f"127.0.0.1:{free_udp_port()}",
                         "--product", "a/b", timeout=10)
    assert run.returncode == 2 and "--mirror" in run.stderr, run.describe()


def test_mirror_of_a_coaps_origin_forwards_reports(bin_dir, procs, tmp_path):
    """The origin is mirrored over coaps (PSK identity mirror-1): `serve --mirror
    coaps://... --origin-psk-file` mirrors it. A device updates from the
    mirror over plain CoAP and reports: the mirror logs the report, and
    passes the same fields on to the origin, which logs them under the
    mirror's DTLS identity."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    origin_repo, mirror_repo = tmp_path / "origin", tmp_path / "mirror"
    publish(bin_dir, origin_repo, keys, "1.0.0", 13)
    psk = tmp_path / "psk.txt"
    psk.write_text("mirror-1:00112233445566778899aabbccddeeff\n")
    origin = procs.server(origin_repo, dtls=True, psk_file=psk)
    mirror_repo.mkdir()
    mirror = procs.server(mirror_repo, "--mirror", f"coaps://127.0.0.1:{origin.dtls_port}", "--origin-psk-file", psk,
                          "--trust", keys / "public.pem", "--product", PRODUCT)
    wait_for_mirrored(mirror, mirror_repo)
    device = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "device", "--origin", mirror.uri(),
                        "--device-id", "dev-m")
    cli.assert_updated(device, "1.0.0")
    mirror_log = mirror_repo / ".reports" / MANUFACTURER / f"{MODEL}.jsonl"
    origin_log = origin_repo / ".reports" / MANUFACTURER / f"{MODEL}.jsonl"
    deadline = time.monotonic() + 15
    while not origin_log.exists():
        assert time.monotonic() < deadline, f"no report reached the origin\n{mirror.log()[-3000:]}"
        time.sleep(0.1)
    import json
    [at_mirror] = [json.loads(l) for l in mirror_log.read_text().splitlines()]
    [at_origin] = [json.loads(l) for l in origin_log.read_text().splitlines()]
    fields = ("device", "result", "version", "bytes", "seconds", "attempts")
    assert {k: at_origin[k] for k in fields} == {k: at_mirror[k] for k in fields}
    assert at_origin["device"] == "dev-m" and at_origin["identity"] == "mirror-1", at_origin


def test_report_forwarder_obeys_a_429(bin_dir, procs, tmp_path):
    """The origin (the malicious server, busy-reports:2) answers the first
    forwarded report 4.29 with Max-Age 2: the mirror sends the same bytes
    again, no sooner than 2 s later, and stops there (2.04)."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    origin_repo, mirror_repo = tmp_path / "origin", tmp_path / "mirror"
    publish(bin_dir, origin_repo, keys, "1.0.0", 14)
    origin = procs.malicious(origin_repo, "busy-reports:2")
    mirror_repo.mkdir()
    mirror = procs.server(mirror_repo, "--mirror", f"coap://127.0.0.1:{origin.port}", "--trust", keys / "public.pem",
                          "--product", PRODUCT)
    wait_for_mirrored(mirror, mirror_repo)
    device = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "device", "--origin", mirror.uri(),
                        "--device-id", "dev-429")
    cli.assert_updated(device, "1.0.0")
    pattern = re.compile(r"POST /\S+/report t=([\d.]+) len=(\d+) sha=(\w+): (\S+)")
    deadline = time.monotonic() + 20
    while len(pattern.findall(origin.log())) < 2:
        assert time.monotonic() < deadline, f"no second try\n{origin.log()[-2000:]}\n{mirror.log()[-2000:]}"
        time.sleep(0.1)
    time.sleep(3)  # nothing more comes
    posts = pattern.findall(origin.log())
    assert [p[3] for p in posts] == ["4.29", "2.04"], posts
    assert posts[0][1:3] == posts[1][1:3], "the same report, byte for byte"
    assert float(posts[1][0]) - float(posts[0][0]) >= 2.0, posts
    assert "waiting 2 s as the origin asks" in mirror.log(), mirror.log()[-2000:]


def test_serve_mirror_prunes_only_folders_no_transfer_reads(bin_dir, procs, tmp_path):
    """Under `serve --mirror` the server prunes: with a device still
    downloading 1.0.0 (64-byte blocks, one per round trip, through the
    relay's lowpan link), 1.0.0 survives 1.2.0's publication although it is
    two releases old; 1.1.0, which nobody reads, is pruned when 1.3.0
    arrives."""
    from support.netns import start_relay
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    origin_repo, mirror_repo = tmp_path / "origin", tmp_path / "mirror"
    publish(bin_dir, origin_repo, keys, "1.0.0", 20, size=100_000)
    origin = procs.server(origin_repo)
    mirror_repo.mkdir()
    mirror = procs.server(mirror_repo, "--mirror", f"coap://127.0.0.1:{origin.port}", "--trust", keys / "public.pem",
                          "--product", PRODUCT)

    def wait_published(version):
        """Until the mirror serves the origin's manifest (the one of `version`)."""
        wanted = (model_dir(origin_repo) / "manifest.cbor").read_bytes()
        mirrored = model_dir(mirror_repo) / "manifest.cbor"
        deadline = time.monotonic() + 30
        while not (mirrored.exists() and mirrored.read_bytes() == wanted):
            assert time.monotonic() < deadline, f"{version} not mirrored\n{mirror.log()[-3000:]}"
            time.sleep(0.1)

    wait_published("1.0.0")
    time.sleep(1.2)  # the mirror's rescan serves it
    listen = free_udp_port()
    start_relay(lambda name, argv: procs.start(name, argv, check_exit=False), None, listen, mirror.port, seed=5,
                extra=["--profile", "lowpan"])
    argv = cli.update_args(bin_dir, keys / "public.pem", MODEL, tmp_path / "slow", "--origin", f"coap://127.0.0.1:{listen}",
                           "--block-size", "64", "--lock-step", "--no-report")
    import subprocess
    slow = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        staged = tmp_path / "slow" / "staging" / "fw-watched-1.0.0.bin.part"
        deadline = time.monotonic() + 30
        while not (staged.exists() and staged.stat().st_size > 1000):
            assert time.monotonic() < deadline and slow.poll() is None, "the slow device did not start downloading"
            time.sleep(0.1)
        for version, seed in (("1.1.0", 21), ("1.2.0", 22)):
            publish(bin_dir, origin_repo, keys, version, seed)
            wait_published(version)
        time.sleep(3)
        assert (model_dir(mirror_repo) / "1.0.0").is_dir(), "pruned while a device was reading it"
        assert slow.poll() is None, "the slow device stopped"
        publish(bin_dir, origin_repo, keys, "1.3.0", 23)
        wait_published("1.3.0")
        deadline = time.monotonic() + 10
        while (model_dir(mirror_repo) / "1.1.0").exists():
            assert time.monotonic() < deadline, f"1.1.0 not pruned\n{mirror.log()[-3000:]}"
            time.sleep(0.1)
        assert (model_dir(mirror_repo) / "1.2.0").is_dir() and (model_dir(mirror_repo) / "1.3.0").is_dir()
    finally:
        slow.kill()
        slow.wait()

