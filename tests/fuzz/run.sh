#!/usr/bin/env bash
# Run every fuzz target, one process at a time (nice it: `nice -n 19`).
#
#   run.sh [SECONDS]        libFuzzer per target for SECONDS (default 900)
#                           with nightly + cargo-fuzz; else the stable
#                           smoke runner for SECONDS per target
#   run.sh --smoke [SECS]   the stable smoke runner only, SECS (default 5)
#                           per target: what CI runs (SMOKE=1 does the same)
#
# Environment: TARGETS="a b" to run some only; RUNS (default 5000000):
# executions after which a target stops early (the issue's 5 million or
# SECONDS, whichever comes first); RESTARTS (default 2): how
# often a libFuzzer run that found something starts again with the time
# left (each finding is saved); CARGO_TARGET_DIR as usual.
# libFuzzer's findings go to artifacts/TARGET/, its logs to runs/TARGET.log,
# the smoke runner's to smoke-crashes/. Exit status: 0 when nothing was
# found, 1 when a target crashed, 2 on a usage or build error.
set -uo pipefail
cd "$(dirname "$0")"

smoke=${SMOKE:-0}
[ "$smoke" = 0 ] && smoke=""
if [ "${1:-}" = --smoke ]; then
    smoke=1
    shift
fi
if [ -n "$smoke" ]; then
    seconds=${1:-5}
else
    seconds=${1:-900}
fi
case $seconds in
    '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number" >&2; exit 2 ;;
esac

all_targets() { sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v -e '^oxrsyncd-fuzz$' -e '^smoke$'; }
targets=${TARGETS:-$(all_targets)}

run_smoke() {
    local only=()
    for t in $targets; do only+=(--only "$t"); done
    echo "run.sh: stable smoke runner, $seconds s per target"
    cargo build --release --no-default-features --bin smoke || exit 2
    "${CARGO_TARGET_DIR:-target}/release/smoke" --seconds "$seconds" "${only[@]}"
}

if [ -n "$smoke" ] || ! cargo +nightly --version >/dev/null 2>&1 || ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    [ -z "$smoke" ] && echo "run.sh: no nightly toolchain or cargo-fuzz here: the stable smoke runner stands in"
    run_smoke
    exit $?
fi

# The longest input worth trying per target (lib.rs TARGETS).
max_len() {
    local expr
    expr=$(sed -n "s/^ *target(\"$1\", [a-z_]*, \([0-9* ]*\)),$/\1/p" src/lib.rs)
    echo $((${expr:-4096}))
}

echo "run.sh: libFuzzer, $seconds s per target, one at a time"
cargo +nightly fuzz build --fuzz-dir . -O -a || exit 2
mkdir -p runs
status=0
for t in $targets; do
    len=$(max_len "$t")
    mkdir -p "artifacts/$t" "runs/corpus/$t"
    start=$(date +%s)
    execs=0
    found=()
    for try in $(seq 0 "${RESTARTS:-2}"); do
        left=$((seconds - ($(date +%s) - start)))
        [ "$left" -ge 1 ] || break
        log="runs/$t.log"
        [ "$try" -gt 0 ] && log="runs/$t.$try.log"
        # New inputs go to runs/corpus (kept out of git); the seeds are read only.
        cargo +nightly fuzz run --fuzz-dir . -O -a "$t" "runs/corpus/$t" "corpus/$t" -- \
            -max_total_time="$left" -runs="$((${RUNS:-5000000} - execs))" -max_len="${len:-4096}" -rss_limit_mb=2048 -timeout=30 \
            -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
        rc=$?
        n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
        execs=$((execs + ${n:-0}))
        if [ "$rc" -eq 0 ] || [ "$execs" -ge "${RUNS:-5000000}" ]; then
            break
        fi
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        found+=("${artifact:-exit $rc, see $log}")
        status=1
    done
    if [ ${#found[@]} -eq 0 ]; then
        printf '%-14s ok      %12s execs\n' "$t" "$execs"
    else
        printf '%-14s CRASHED %12s execs: %s\n' "$t" "$execs" "${found[*]}"
    fi
done
exit $status
