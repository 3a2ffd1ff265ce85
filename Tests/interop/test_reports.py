"""Issue #12 item 4, fleet reports: after each run `update` POSTs a CBOR
report to the server whose manifest it used; the server keeps one JSON line
per report under <repo>/.reports (never served), refuses what is not a
report for a product it serves, limits each peer address, rotates its log;
`coap-fw-server fleet` summarises. Real processes on loopback; reports
checked independently with cbor2 and json."""
import json

import cbor2

from support import cli, coap
from support.files import write_random_file

MODEL = "reports"
REPORT_PATH = f".well-known/firmware/{cli.MANUFACTURER}/{MODEL}/report"


def release(bin_dir, tmp_path, name="keys"):
    keys = tmp_path / name
    cli.keygen(bin_dir, keys)
    image = tmp_path / "fw.bin"
    write_random_file(image, 30_000, seed=11)
    repo = tmp_path / "repo"
    cli.publish(bin_dir, repo, keys / "private.pem", MODEL, "1.0.0", image=image)
    return repo, keys


def log_lines(repo):
    path = repo / ".reports" / cli.MANUFACTURER / f"{MODEL}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def post(server, body, *, source="127.0.0.1", path=REPORT_PATH, content_format=60):
    options = [] if content_format is None else [(coap.CONTENT_FORMAT, coap.uint(content_format))]
    reply = coap.request("127.0.0.1", server.port, path, code=coap.POST, options=options, payload=body,
                         source=source, timeout=3, resend=1)
    assert reply is not None, "no answer to the POST"
    return reply


def good_report(device="dev-x", fields=None):
    report = {1: device, 2: "updated", 3: "1.0.0", 4: 30000, 5: 2, 6: 1}
    report.update(fields or {})
    return cbor2.dumps(report)


def test_update_reports_and_fleet_summarises(bin_dir, procs, tmp_path):
    """dev-a updates, dev-b (wrong trust key) gets bad-signature, dev-a runs
    again (up to date), a --no-report run sends nothing: the server's log
    has three lines with the runs' fields, peer and no DTLS identity, and
    `fleet --json` gives each device's version and last result, the
    devices per version and the failures by result code."""
    repo, keys = release(bin_dir, tmp_path)
    other = tmp_path / "other"
    cli.keygen(bin_dir, other)
    server = procs.server(repo)
    origin = server.uri()

    a = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "a", "--origin", origin, "--device-id", "dev-a")
    cli.assert_updated(a, "1.0.0")
    b = cli.update(bin_dir, other / "public.pem", MODEL, tmp_path / "b", "--origin", origin, "--device-id", "dev-b")
    assert b.returncode == 1 and b.json["result"] == "bad-signature", b.describe()
    again = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "a", "--origin", origin, "--device-id", "dev-a")
    assert again.returncode == 0 and again.json["result"] == "up-to-date", again.describe()
    quiet = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "c", "--origin", origin, "--device-id", "dev-c",
                       "--no-report")
    cli.assert_updated(quiet, "1.0.0")

    lines = log_lines(repo)
    assert [(l["device"], l["result"], l["version"]) for l in lines] == [
        ("dev-a", "updated", "1.0.0"), ("dev-b", "bad-signature", None), ("dev-a", "up-to-date", "1.0.0")], lines
    assert lines[0]["bytes"] == 30000 and lines[0]["attempts"] == 1 and lines[0]["seconds"] >= 1
    assert lines[2]["bytes"] == 0
    assert all(l["peer"].startswith("127.0.0.1:") and l["identity"] is None for l in lines)

    fleet = cli.run_binary(bin_dir, cli.SERVER, "fleet", "--repo", repo, "--json", timeout=30, parse_json=True)
    assert fleet.returncode == 0 and fleet.json is not None, fleet.describe()
    [product] = fleet.json["products"]
    assert product["product"] == f"{cli.MANUFACTURER}/{MODEL}" and product["reports"] == 3
    devices = {d["device"]: (d["version"], d["result"]) for d in product["devices"]}
    assert devices == {"dev-a": ("1.0.0", "up-to-date"), "dev-b": (None, "bad-signature")}
    assert product["versions"] == {"1.0.0": 1, "none": 1}
    assert product["failures"] == {"bad-signature": 1}
    text = cli.run_binary(bin_dir, cli.SERVER, "fleet", "--repo", repo, timeout=30)
    assert text.returncode == 0 and "dev-b  none  bad-signature" in text.stdout, text.describe()


def test_bad_reports_get_their_codes_and_change_nothing(bin_dir, procs, tmp_path):
    """Each from its own loopback address (the limit is per address): an
    unknown product 4.04, 300 bytes 4.13, not CBOR / a missing field / a
    wrong type / an unknown result / trailing bytes 4.00, Content-Format 0
    4.15; a sixth report within a minute from one address 4.29. Only the
    good reports are in the log; the server still serves the manifest and
    never serves .reports."""
    repo, _ = release(bin_dir, tmp_path)
    server = procs.server(repo)
    cases = [
        ("4.04", good_report(), {"path": f".well-known/firmware/{cli.MANUFACTURER}/nosuchmodel/report"}),
        ("4.13", cbor2.dumps({1: "dev-big", 2: "updated", 3: None, 4: 0, 5: 0, 6: 0, 7: "x" * 260}), {}),
        ("4.00", b"not cbor at all", {}),
        ("4.00", cbor2.dumps({1: "dev-y", 2: "updated", 3: "1.0.0", 4: 1, 5: 1}), {}),  # 6 missing
        ("4.00", good_report(fields={4: "many"}), {}),
        ("4.00", good_report(fields={2: "fine"}), {}),
        ("4.00", good_report(device="has space"), {}),
        ("4.00", good_report() + b"\x00", {}),
        ("4.15", good_report(), {"content_format": 0}),
        ("2.04", good_report(device="dev-ok", fields={7: "a later field"}), {}),
    ]
    for i, (expected, body, kw) in enumerate(cases):
        reply = post(server, body, source=f"127.0.0.{10 + i}", **kw)
        assert reply.code_text == expected, f"case {i}: {reply.code_text} != {expected} ({reply.payload!r})"
    flood = [post(server, good_report(device=f"flood-{n}"), source="127.0.0.40").code_text for n in range(7)]
    assert flood == ["2.04"] * 5 + ["4.29"] * 2, flood
    limited = post(server, good_report(device="flood-late"), source="127.0.0.40")
    assert limited.option(coap.MAX_AGE) is not None, "4.29 without Max-Age"

    assert [l["device"] for l in log_lines(repo)] == ["dev-ok"] + [f"flood-{n}" for n in range(5)]
    manifest = coap.request("127.0.0.1", server.port, f".well-known/firmware/{cli.MANUFACTURER}/{MODEL}/manifest.cbor",
                            timeout=3, resend=1)
    assert manifest is not None and manifest.code_text == "2.05"
    hidden = coap.request("127.0.0.1", server.port, f".reports/{cli.MANUFACTURER}/{MODEL}.jsonl", timeout=3, resend=1)
    assert hidden is not None and hidden.code_text == "4.04"
    assert server.alive(), server.describe()


def test_report_log_is_rotated(bin_dir, procs, tmp_path):
    """With --report-log-bytes 600, the log is renamed to .jsonl.1 once it
    reaches 600 bytes; the two files stay bounded and `fleet` reads both."""
    repo, _ = release(bin_dir, tmp_path)
    server = procs.server(repo, "--report-log-bytes", "600")
    for n in range(12):
        assert post(server, good_report(device=f"dev-{n:02d}"), source=f"127.0.1.{n + 1}").code_text == "2.04"
    folder = repo / ".reports" / cli.MANUFACTURER
    current, rotated = folder / f"{MODEL}.jsonl", folder / f"{MODEL}.jsonl.1"
    assert rotated.exists(), sorted(p.name for p in folder.iterdir())
    line = len(current.read_text().splitlines()[0]) + 1
    assert current.stat().st_size < 600 + line and rotated.stat().st_size < 600 + line
    kept = [json.loads(l)["device"] for l in (rotated.read_text() + current.read_text()).splitlines()]
    assert kept == [f"dev-{n:02d}" for n in range(12)][-len(kept):] and len(kept) < 12
    fleet = cli.run_binary(bin_dir, cli.SERVER, "fleet", "--repo", repo, "--json", timeout=30, parse_json=True)
    assert {d["device"] for d in fleet.json["products"][0]["devices"]} == set(kept)


def test_fleet_reads_a_log_of_any_size(bin_dir, tmp_path):
    """`--report-log-bytes` allows 1 GiB; `fleet` reads a 20 MiB log to its
    last line (it used to skip any file past 16 MiB without a word), counts
    an overlong and a broken line as skipped, and names a log it cannot
    read (exit 1)."""
    folder = tmp_path / "repo" / ".reports" / cli.MANUFACTURER
    folder.mkdir(parents=True)
    line = json.dumps({"time": "2026-12-02T10:00:00Z", "peer": "127.0.0.1", "identity": None, "device": "dev-{:06d}",
                       "result": "updated", "version": "1.0.0", "bytes": 1, "seconds": 1, "attempts": 1})
    count = 20 * 1024 * 1024 // len(line) + 1
    with open(folder / f"{MODEL}.jsonl", "w") as f:
        for n in range(count):
            f.write(line.replace("{:06d}", f"{n % 1000:06d}") + "\n")
        f.write("x" * 70_000 + "\n")  # overlong
        f.write("{not json\n")
        f.write(line.replace("dev-{:06d}", "the-last").replace("updated", "digest-mismatch"))  # no newline
    fleet = cli.run_binary(bin_dir, cli.SERVER, "fleet", "--repo", tmp_path / "repo", "--json", timeout=120,
                           parse_json=True)
    assert fleet.returncode == 0 and fleet.json is not None, fleet.describe()
    [product] = fleet.json["products"]
    assert product["reports"] == count + 1, product["reports"]
    assert len(product["devices"]) == 1001
    assert product["failures"] == {"digest-mismatch": 1}
    assert "2 report lines that do not parse were skipped" in fleet.stderr, fleet.stderr
    (folder / f"{MODEL}.jsonl").chmod(0)
    (folder / f"{MODEL}.jsonl.1").mkdir()  # unreadable as a file, whatever the user (root reads mode 0)
    refused = cli.run_binary(bin_dir, cli.SERVER, "fleet", "--repo", tmp_path / "repo", timeout=60)
    assert refused.returncode == 1 and f"{MODEL}.jsonl.1" in refused.stderr, refused.describe()


def test_a_server_that_refuses_reports_changes_no_result(bin_dir, procs, tmp_path):
    """aiocoap's file server answers the report's POST with an error: the
    update is still `updated`, exit 0, and the run does not wait long."""
    repo, keys = release(bin_dir, tmp_path)
    peer = procs.aiocoap_fileserver(repo, f".well-known/firmware/{cli.MANUFACTURER}/{MODEL}/manifest.cbor")
    run = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "s", "--origin", peer.uri(), "--device-id", "dev-a", "-v")
    cli.assert_updated(run, "1.0.0")
    assert "report not sent" in run.stderr, run.describe()
    assert run.elapsed < 10, run.describe()


def test_report_over_coaps_carries_the_dtls_identity(bin_dir, procs, tmp_path):
    """A device updating over coaps with PSK identity device-17: its report
    line names that identity, so forgeries from plain CoAP stand out."""
    repo, keys = release(bin_dir, tmp_path)
    psk = tmp_path / "psk.txt"
    psk.write_text("device-17:00112233445566778899aabbccddeeff\n")
    server = procs.server(repo, dtls=True, psk_file=psk)
    run = cli.update(bin_dir, keys / "public.pem", MODEL, tmp_path / "s", "--origin",
                     f"coaps://127.0.0.1:{server.dtls_port}", "--psk-file", psk, "--device-id", "dev-dtls")
    cli.assert_updated(run, "1.0.0")
    [line] = log_lines(repo)
    assert line["device"] == "dev-dtls" and line["identity"] == "device-17", line
