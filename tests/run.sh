#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (the stock rsync client and daemon, systemd's tools, HAProxy) when
# missing, then runs every unit and integration test, for both the default
# build and the tokio-free build (--no-default-features).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v rsync >/dev/null || need+=(rsync)
# The oracle is Debian's current stock rsync (3.5.x): an older one already
# on the machine (3.2.x) is upgraded, as the tests compare our daemon's
# behaviour with stock 3.5's.
if command -v rsync >/dev/null && ! rsync --version | sed -n 1p | grep -qE 'version 3\.([5-9]|[1-9][0-9])\.'; then
  need+=(rsync)
fi
command -v systemd-socket-activate >/dev/null || need+=(systemd)
command -v systemd-analyze >/dev/null || need+=(systemd)
# The load balancer in front of two daemons (tests/integration/haproxy.rs);
# Debian puts it in /usr/sbin, which a non-root PATH may lack.
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "stock client: $(rsync --version | sed -n 1p)"

# The second stock client the differential tests use: Debian bookworm's
# rsync 3.2.7, unpacked (not installed) under target/clients/.
old_client=target/clients/rsync-3.2.7
if [ ! -x "$old_client/usr/bin/rsync" ]; then
  version=$(apt-cache madison rsync | awk '$3 ~ /^3\.2\.7/ {print $3; exit}')
  if [ -z "$version" ]; then
    ${SUDO:-} apt-get update -qq
    version=$(apt-cache madison rsync | awk '$3 ~ /^3\.2\.7/ {print $3; exit}')
  fi
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download "rsync=$version" >/dev/null)
  mkdir -p "$old_client"
  dpkg-deb -x "$tmp"/rsync_*.deb "$old_client"
  rm -rf "$tmp"
fi
echo "second client: $("$old_client/usr/bin/rsync" --version | sed -n 1p)"
export OXRSYNCD_REQUIRE_ALL_CLIENTS=1

# Unit tests of every crate, then the integration suite (real binary,
# stock client, stock daemon as the oracle).
cargo test --workspace --locked

# The tokio-free build must pass the same integration suite.
cargo test -p oxrsyncd --no-default-features --test integration --locked

# Every fuzz target (tests/fuzz) over its seeds and regression inputs, then
# random mutations for a few seconds each: the stable smoke runner, so a
# machine without nightly runs it too. The full libFuzzer run is
# tests/fuzz/run.sh [SECONDS] (docs/security.md).
tests/fuzz/run.sh --smoke 5
