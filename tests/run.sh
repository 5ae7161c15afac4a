#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (the stock rsync client and daemon, systemd's tools) when missing, then
# runs every unit and integration test, for both the default build and the
# tokio-free build (--no-default-features).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v rsync >/dev/null || need+=(rsync)
command -v systemd-socket-activate >/dev/null || need+=(systemd)
command -v systemd-analyze >/dev/null || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "stock client: $(rsync --version | sed -n 1p)"

# Unit tests of every crate, then the integration suite (real binary,
# stock client, stock daemon as the oracle).
cargo test --workspace --locked

# The tokio-free build must pass the same integration suite.
cargo test -p oxrsyncd --no-default-features --test integration --locked
