#!/usr/bin/env bash
# Upstream rsync's own daemon testsuite against our binary (not part of
# .ci/run: it fetches and builds upstream's source).
#
# usage: tests/upstream.sh [UPSTREAM_SOURCE_DIR] [TEST_NAME...]
#   UPSTREAM_SOURCE_DIR: an rsync source tree (RsyncProject/rsync at its
#   current head); default: cloned into target/upstream-rsync. It is built
#   there (configure without IDN, zstd or openssl needs, then make) unless
#   its `rsync` binary is already built.
#   TEST_NAME...: only these tests (default: every daemon-transport test).
#
# Runs `runtests.py --daemon-tests-only --use-tcp` with the stock client
# (`rsync` on PATH, Debian's 3.5.x with tests/run.sh) and our release
# binary as the daemon, then prints the counts and the failing tests.
# Expected differences are listed in docs/architecture.md ("Deliberate
# differences from stock"); the last recorded result is in docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
src=${1:-$repo/target/upstream-rsync}
shift || true

if [ ! -f "$src/runtests.py" ]; then
  echo "cloning RsyncProject/rsync into $src" >&2
  git clone -q --depth 1 https://github.com/RsyncProject/rsync "$src"
fi
if [ ! -x "$src/rsync" ]; then
  echo "building upstream rsync in $src" >&2
  (cd "$src" && ./configure -q --disable-md2man --disable-xxhash --disable-zstd --disable-lz4 --disable-openssl >/dev/null \
    && make -s -j"$(nproc)" >/dev/null)
fi
cargo build --release -q -p oxrsyncd
ours=$repo/target/release/oxrsyncd

log=$repo/target/upstream-tests.log
mkdir -p "$repo/target"
set +e
(cd "$src" && python3 runtests.py --daemon-tests-only --use-tcp --rsync-bin="$(command -v rsync)" \
  --rsync-bin2="$ours" --race-timeout 3 "$@") > "$log" 2>&1
set -e
passed=$(grep -c '^PASS' "$log" || true)
failed=$(grep -c '^FAIL' "$log" || true)
skipped=$(grep -c '^SKIP' "$log" || true)
echo "upstream daemon tests against oxrsyncd: $passed passed, $failed failed, $skipped skipped (log: $log)"
if [ "$failed" -gt 0 ]; then
  echo "failed:"
  grep '^FAIL' "$log" | awk '{print "  " $2}'
fi
