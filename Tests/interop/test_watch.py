"""Issue #12 item 2, `coap-fw-client watch`: update, observe the manifest
at the server that answered, update on each notification and at each
interval, back off after failures, register again when notifications stop,
end cleanly on SIGTERM; one JSON line per run. Real processes on loopback."""
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

from support import cli
from support.files import write_random_file
from support.ports import free_udp_port
from support.procs import crashes

MODEL = "watched"


class Watch:
    """A background `coap-fw-client watch --json`; its JSON lines as they come."""

    def __init__(self, bin_dir, trust, state, origin, *extra):
        argv = cli.update_args(bin_dir, trust, MODEL, state, "--origin", origin, *extra)
        argv[1] = "watch"
        self.proc = subprocess.Popen(argv + ["-v"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.stderr = [], []
        self.times = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))
            self.times.append(time.monotonic())

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [l for l in self.lines if predicate(l)]
            if found:
                return found[0]
            assert self.proc.poll() is None, f"watch exited ({self.proc.returncode}) waiting for {what}\n{self.log()}"
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout} s\nlines: {self.lines}\n{self.log()}")

    def log(self):
        return "".join(self.stderr)[-4000:]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        time.sleep(0.1)
        assert code == 0, f"watch exited {code} on SIGTERM\n{self.log()}"
        assert not crashes(self.log()), self.log()


def release(bin_dir, repo, keys, version, seed):
    image = repo.parent / f"fw-{version}.bin"
    write_random_file(image, 20_000, seed=seed)
    cli.publish(bin_dir, repo, keys / "private.pem", MODEL, version, image=image)


def test_watch_installs_a_release_when_the_manifest_changes(bin_dir, procs, tmp_path):
    """The first run installs 1.0.0; 1.1.0 published afterwards is installed
    through the notification alone (the interval is an hour), and the
    publish-to-installed latency is printed; SIGTERM ends it with exit 0."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    repo, state = tmp_path / "repo", tmp_path / "state"
    release(bin_dir, repo, keys, "1.0.0", 1)
    server = procs.server(repo)
    watch = Watch(bin_dir, keys / "public.pem", state, server.uri(), "--spread", "0", "--interval", "3600")
    try:
        watch.wait_for(lambda l: l["result"] == "updated" and l["version"] == "1.0.0", 30, "first update")
        time.sleep(1)  # the observation is registered after the run
        published = time.monotonic()
        release(bin_dir, repo, keys, "1.1.0", 2)
        line = watch.wait_for(lambda l: l["version"] == "1.1.0", 20, "1.1.0 after the notification")
        latency = watch.times[watch.lines.index(line)] - published
        print(f"publish-to-installed latency through a notification: {latency:.2f} s")
        assert line["result"] == "updated"
        assert cli.status(bin_dir, state).json["version"] == "1.1.0"
        assert "changed: updating" in watch.log(), watch.log()
        assert len(watch.lines) == 2, watch.lines
    finally:
        watch.stop()


def test_watch_registers_again_after_the_server_restarts(bin_dir, procs, tmp_path):
    """With Max-Age 2, the server killed and started again on the same port
    drops the observation silently; the watcher registers again once
    nothing was heard for Max-Age and installs 1.1.0, published after the
    restart, with no interval run (an hour)."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    repo, state = tmp_path / "repo", tmp_path / "state"
    release(bin_dir, repo, keys, "1.0.0", 3)
    port = free_udp_port()
    first = procs.server(repo, "--manifest-max-age", "2", port=port)
    watch = Watch(bin_dir, keys / "public.pem", state, first.uri(), "--spread", "0", "--interval", "3600")
    try:
        watch.wait_for(lambda l: l["version"] == "1.0.0", 30, "first update")
        first.stop()
        procs.server(repo, "--manifest-max-age", "2", port=port)
        release(bin_dir, repo, keys, "1.1.0", 4)
        watch.wait_for(lambda l: l["version"] == "1.1.0", 30, "1.1.0 after registering again")
        assert "registering again" in watch.log(), watch.log()
    finally:
        watch.stop()


def test_watch_takes_a_max_age_of_5_s_at_least(bin_dir, procs, tmp_path):
    """A server answering with Max-Age 1 would have the watcher register
    again after 3 s of silence, over and over; it takes 5 s (plus its 2 s
    margin): nothing in the first 6 s, then it does register again."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    repo, state = tmp_path / "repo", tmp_path / "state"
    release(bin_dir, repo, keys, "1.0.0", 6)
    server = procs.server(repo, "--manifest-max-age", "1")
    watch = Watch(bin_dir, keys / "public.pem", state, server.uri(), "--spread", "0", "--interval", "3600")
    try:
        watch.wait_for(lambda l: l["version"] == "1.0.0", 30, "first update")
        time.sleep(6)
        assert watch.log().count("registering again") == 0, watch.log()
        deadline = time.monotonic() + 10
        while "registering again" not in watch.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "registering again" in watch.log(), watch.log()
    finally:
        watch.stop()


def test_watch_polls_a_server_without_observe(bin_dir, procs, tmp_path):
    """The malicious server (no fault) answers without Observe: the watcher
    says so, and the interval run (2 s) installs 1.1.0."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    repo, state = tmp_path / "repo", tmp_path / "state"
    release(bin_dir, repo, keys, "1.0.0", 5)
    server = procs.malicious(repo, "none")
    watch = Watch(bin_dir, keys / "public.pem", state, server.uri(), "--spread", "0", "--interval", "2")
    try:
        watch.wait_for(lambda l: l["version"] == "1.0.0", 30, "first update")
        release(bin_dir, repo, keys, "1.1.0", 6)
        watch.wait_for(lambda l: l["version"] == "1.1.0", 15, "1.1.0 by polling")
        assert "without Observe" in watch.log(), watch.log()
    finally:
        watch.stop()


def test_watch_backs_off_after_failures(bin_dir, tmp_path):
    """Nothing listens at the origin: runs fail (no-server) with waits that
    grow from --backoff 0.5 s (0.5, 1, 2 s ±20 %), well below the interval."""
    keys = tmp_path / "keys"
    cli.keygen(bin_dir, keys)
    watch = Watch(bin_dir, keys / "public.pem", tmp_path / "state", f"coap://127.0.0.1:{free_udp_port()}",
                  "--backoff", "0.5", "--interval", "3600", "--timeout", "2")
    try:
        watch.wait_for(lambda l: len(watch.lines) >= 4, 20, "four runs")
        assert all(l["result"] == "no-server" for l in watch.lines[:4]), watch.lines
        gaps = [b - a for a, b in zip(watch.times, watch.times[1:4])]
        assert gaps[0] < gaps[1] < gaps[2] and gaps[2] < 4, gaps
    finally:
        watch.stop()


def test_watch_option_errors(bin_dir, tmp_path):
    """--interval 0 and --spread -1 are usage errors naming the option."""
    for option, value in [("--interval", "0"), ("--spread", "-1"), ("--backoff", "inf")]:
        run = cli.run_binary(bin_dir, cli.CLIENT, "watch", "--trust", tmp_path / "x.pem", "--manufacturer", "m",
                             "--model", MODEL, "--state", tmp_path / "s", "--origin", "coap://127.0.0.1:1",
                             option, value, timeout=10)
        assert run.returncode == 2 and option in run.stderr, run.describe()
