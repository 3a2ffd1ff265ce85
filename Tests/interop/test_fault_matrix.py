"""The small network fault matrix (issue #5), as part of `make test`.

Runs Tests/faults/fault_matrix.py --quick: loss 0/20 % x delay 0/100 ms,
plus 5 % loss with duplication and reordering 5 % at 100 ms, each cell a
fresh network-namespace pair (tc netem, or the user-space relay where the
kernel has no netem) and a 64 KiB update with --ack-timeout 1. The full
matrix (12 cells, RFC 7252 default timing) is `make faults`.

Checked here from the script's own output (its Markdown table and its
RESULTS-JSON line): exit status 0, no cell installed bytes other than the
image's, and the 0 %-loss cells completed with `updated`. Set
COAPFW_FAULT_SEED=N to replay a run (the seed is printed).
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


def parse_table(stdout: str) -> dict[str, dict]:
    """Rows of the Markdown table, by cell name, as {column: text}."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert len(lines) >= 2, f"no Markdown table in the output:\n{stdout[-3000:]}"
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(head), f"malformed row: {line}"
        row = dict(zip(head, cells))
        rows[row["cell"]] = row
    return rows


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
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    if first.startswith("skipped:"):
        assert proc.returncode == 0, report
        pytest.skip(f"fault matrix {first}")

    results_lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS-JSON: ")]
    assert results_lines, f"no RESULTS-JSON line\n{report}"
    results = {r["cell"]: r for r in json.loads(results_lines[-1][len("RESULTS-JSON: "):])}
    rows = parse_table(proc.stdout)

    assert sorted(results) == sorted(QUICK_CELLS), f"cells {sorted(results)}\n{report}"
    assert sorted(rows) == sorted(QUICK_CELLS), f"table rows {sorted(rows)}\n{report}"

    # Never wrong bytes: checked in both the table and the JSON.
    wrong = sorted({name for name, r in results.items() if r["installed"] == "WRONG"}
                   | {name for name, row in rows.items() if "WRONG" in row["sha256 ok"]})
    assert not wrong, f"cells installed bytes that are not the image: {wrong}\n{report}"

    for name in ("loss0-delay0", "loss0-delay100"):
        assert results[name]["result"] == "updated" and rows[name]["result"] == "updated", (
            f"{name}: no loss, yet {results[name]['result']!r}\n{report}")
        assert results[name]["installed"] == "yes" and rows[name]["sha256 ok"] == "yes", report

    for name, r in results.items():
        assert r["verdict"] == "PASS", f"{name}: {r['kind']}: {r['reasons']}\n{report}"
        assert r["result"] == "updated" or r["result"] in ("transfer-failed", "no-server"), report
        if r["result"] == "updated":
            assert r["installed"] == "yes", report

    assert proc.returncode == 0, report
