#!/usr/bin/env bash
# Builds the libFuzzer targets (-sanitize=fuzzer,address) and runs each for
# FUZZ_SECONDS (default 60; FUZZ_RUNS=N stops a target after N executions
# if that comes first), growing Fuzz/corpus/<target> (merged, minimised)
# and saving any crash under Fuzz/crashes/<target>/. Prints executions and
# coverage per target. Usage: scripts/fuzz.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export SWIFT_BACKTRACE=enable=no  # the Swift backtracer trips ASan; libFuzzer prints its own
SECONDS_EACH=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:--1}
TARGETS=${*:-manifest-view manifest-json envelope parsers blocks device resume psk-file}
swift build --scratch-path .build-fuzz -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
    -Xswiftc -use-ld=lld --product coap-fw-fuzz
FUZZ=.build-fuzz/release/coap-fw-fuzz
[ -d Fuzz/corpus/envelope ] || python3 Fuzz/seed.py
# "new crashes": reproducers this run added to Fuzz/crashes/<target> (the ones
# kept there from fixed bugs are replayed by `make test`, not counted).
printf '%-14s %12s %10s %8s %8s %s\n' target executions exec/s cov features 'new crashes'
status=0
for t in $TARGETS; do
    work=.build-fuzz/corpus/$t
    mkdir -p "$work" "Fuzz/crashes/$t"
    kept=$(find "Fuzz/crashes/$t" -type f | wc -l)
    log=.build-fuzz/$t.log
    set +e
    "$FUZZ" "$t" -max_total_time="$SECONDS_EACH" -runs="$RUNS" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="Fuzz/crashes/$t/" "$work" "Fuzz/corpus/$t" > "$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo ?)
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo ?)
    crashes=$(( $(find "Fuzz/crashes/$t" -type f | wc -l) - kept ))
    printf '%-14s %12s %10s %8s %8s %s\n' "$t" "$execs" "$rate" "$cov" "$ft" "$crashes"
    if [ $rc -ne 0 ] || [ "$crashes" -ne 0 ]; then echo "  $t: libFuzzer exited $rc, see $log"; status=1; fi
    # Keep a minimised corpus in git: merge what was found into a fresh folder.
    tmp=$(mktemp -d)
    "$FUZZ" "$t" -merge=1 "$tmp" "Fuzz/corpus/$t" "$work" > /dev/null 2>&1 || true
    if [ -n "$(ls "$tmp")" ]; then rm -rf "Fuzz/corpus/$t"; mv "$tmp" "Fuzz/corpus/$t"; else rm -rf "$tmp"; fi
done
exit $status
