"""One wrapper for a background process, and the crash markers.

A process's stdout and stderr go to one log file (or, with
``port_on_stdout``, stderr only: the process prints its port as the first
stdout line). ``stop()`` never raises: a process that outlives its signal is
killed and reported by ``problems()``.
"""

from __future__ import annotations

import select
import signal
import subprocess
import time
from pathlib import Path

from support.paths import authority, manifest_path, MODEL

# Texts in a log that mean a process crashed instead of failing cleanly:
# Swift runtime traps, the kernel's and the sanitizers' reports, and a
# Python traceback (the Python peers in support/ and Tests/faults).
CRASH_MARKERS = (
    "Fatal error",
    "Current stack trace",
    "Segmentation fault",
    "Illegal instruction",
    "Assertion failed",
    "Precondition failed",
    "AddressSanitizer",
    "runtime error",
    "Traceback (most recent call last)",
)


def crashes(text: str) -> list[str]:
    """The crash markers found in ``text``."""
    return [m for m in CRASH_MARKERS if m in text]


class Proc:
    """A background process with its output in a log file."""

    def __init__(self, name: str, args, popen: subprocess.Popen, log_path: Path | None, *,
                 host: str = "127.0.0.1", port: int | None = None, dtls_port: int | None = None,
                 check_exit: bool = True):
        self.name = name
        self.args = [str(a) for a in args]
        self.popen = popen
        self.log_path = log_path
        self.host = host
        self.port = port
        self.dtls_port = dtls_port
        self.check_exit = check_exit  # stopping must give exit 0 and no crash text
        self.stopped_rc: int | None = None
        self.hung: str | None = None
        self.checked = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe(self) -> str:
        return f"{self.name}: {' '.join(self.args)}\n--- {self.name} log ---\n{self.log()[-6000:]}"

    # -- addresses --------------------------------------------------------

    def authority(self, host: str | None = None, port: int | None = None) -> str:
        return authority(host or self.host, port or self.port)

    def uri(self, path: str = "", *, host: str | None = None) -> str:
        return f"coap://{self.authority(host)}/{path.lstrip('/')}"

    def coaps_uri(self, path: str = "", *, host: str | None = None) -> str:
        return f"coaps://{self.authority(host, self.dtls_port)}/{path.lstrip('/')}"

    def manifest_uri(self, model: str = MODEL, fmt: str = "cbor") -> str:
        return self.uri(manifest_path(model, fmt))

    # -- stopping ---------------------------------------------------------

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait; the exit status (negative: killed by a
        signal, -9 also when it had to be killed after ``timeout``)."""
        if self.stopped_rc is not None:
            return self.stopped_rc
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                self.hung = f"did not stop within {timeout:g} s of {signal.Signals(sig).name}"
                self.stopped_rc = -9
                return self.stopped_rc
        self.stopped_rc = self.popen.returncode
        return self.stopped_rc

    def problems(self) -> list[str]:
        """Stops the process (SIGTERM) if it still runs; what was wrong with
        how it ended: a hang, an exit status other than 0, crash text."""
        rc = self.stop()
        self.checked = True
        found = []
        if self.hung:
            found.append(f"{self.name} {self.hung}\n{self.describe()}")
        elif rc != 0:
            found.append(f"{self.name} exited with {rc} (expected 0)\n{self.describe()}")
        crashed = crashes(self.log())
        if crashed:
            found.append(f"{self.name} log shows a crash {crashed}\n{self.describe()}")
        return found

    def assert_clean_exit(self):
        found = self.problems()
        assert not found, "\n\n".join(found)


def start_process(name: str, args, log_path: Path | None, *, env: dict | None = None,
                  port_on_stdout: bool = False, port_timeout: float = 15, **attrs) -> Proc:
    """Starts ``args``; output to ``log_path`` (None: discarded). With
    ``port_on_stdout`` the first line of stdout is read as the port."""
    args = [str(a) for a in args]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, env=env,
                                 stdout=subprocess.PIPE if port_on_stdout else log,
                                 stderr=log if port_on_stdout or log_path is None else subprocess.STDOUT)
    finally:
        if log_path:
            log.close()
    proc = Proc(name, args, popen, log_path, **attrs)
    if port_on_stdout:
        ready, _, _ = select.select([popen.stdout], [], [], port_timeout)
        line = popen.stdout.readline().decode().strip() if ready else ""
        if not line.isdigit():
            proc.stop(signal.SIGKILL)
            raise AssertionError(f"{name} printed no port ({line!r})\n{proc.describe()}")
        proc.port = int(line)
    return proc


def wait_ready(proc: Proc, probe, timeout: float):
    """Polls ``probe()`` until true; fails (and kills ``proc``) when the
    process exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited early ({proc.popen.returncode})\n{proc.describe()}")
        if probe():
            return
        if time.monotonic() > deadline:
            proc.stop(signal.SIGKILL)
            raise AssertionError(f"{proc.name} not answering after {timeout} s\n{proc.describe()}")
        time.sleep(0.1)


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """``predicate()``'s first true value within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def proc_status_kib(pid: int, field: str = "VmRSS") -> int:
    """A ``/proc/PID/status`` figure in KiB: VmRSS (resident now), VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")
