"""The small network fault matrix (issue #5), as part of `make test`.

Runs Tests/faults/fault_matrix.py --quick: loss 0/20 % x delay 0/100 ms,
plus 5 % loss with duplication and reordering 5 % at 100 ms, each cell a
fresh network-namespace pair (tc netem, or the user-space relay where the
kernel has no netem) and a 64 KiB update with --ack-timeout 1. The full
matrix (12 cells, RFC 7252 default timing) is `make faults`.

Checked here from the script's machine-readable result (its RESULTS-JSON
line; the Markdown table is for people): exit status 0, no cell installed
bytes other than the image's, and the 0 %-loss cells completed with
`updated`. Set COAPFW_FAULT_SEED=N to replay a run (the seed is printed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.paths import FAULTS_DIR, python_env

FAULT_MATRIX = FAULTS_DIR / "fault_matrix.py"
QUICK_CELLS = ["loss0-delay0", "loss0-delay100", "loss20-delay0", "loss20-delay100", "loss5-delay100-dr"]
RESULTS = "RESULTS-JSON: "


def test_fault_matrix_quick(bin_dir):
    cmd = [sys.executable, str(FAULT_MATRIX), "--quick", "--bin", str(bin_dir)]
    if os.environ.get("COAPFW_FAULT_SEED"):
        cmd += ["--seed", os.environ["COAPFW_FAULT_SEED"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL,
                          env=python_env())
    print(proc.stdout)
    print(proc.stderr, file=sys.stderr)
    report = f"command: {' '.join(cmd)}\nexit status {proc.returncode}\n--- stdout ---\n" \
             f"{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"

    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULTS)]
    assert lines, f"no {RESULTS.strip()} line\n{report}"
    doc = json.loads(lines[-1][len(RESULTS):])
    if doc["skipped"]:
        assert proc.returncode == 0 and doc["cells"] == [], report
        pytest.skip(f"fault matrix skipped: {doc['skipped']}")
    results = {r["cell"]: r for r in doc["cells"]}
    assert sorted(results) == sorted(QUICK_CELLS), f"cells {sorted(results)}\n{report}"
    assert (doc["passed"], doc["failed"]) == (len(QUICK_CELLS), 0), report

    # Never wrong bytes.
    wrong = sorted(name for name, r in results.items() if r["installed"] == "WRONG")
    assert not wrong, f"cells installed bytes that are not the image: {wrong}\n{report}"

    for name in ("loss0-delay0", "loss0-delay100"):
        assert results[name]["result"] == "updated", f"{name}: no loss, yet {results[name]['result']!r}\n{report}"
        assert results[name]["exit"] == 0 and results[name]["installed"] == "yes", report

    for name, r in results.items():
        assert r["verdict"] == "PASS", f"{name}: {r['kind']}: {r['reasons']}\n{report}"
        assert r["result"] == "updated" or r["result"] in ("transfer-failed", "no-server"), report
        if r["result"] == "updated":
            assert r["installed"] == "yes" and r["exit"] == 0, report
        else:
            assert r["exit"] == 1, report

    assert proc.returncode == 0, report
