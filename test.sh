#!/usr/bin/env bash
# The test command. Needs root for the network-namespace and interop tiers; without root those
# tests print why they skip. `.ci/run` installs the real daemons (BIRD, FRR, GoBGP, ExaBGP),
# the CNI reference plugins and user-mode Linux first.
set -euo pipefail
cd "$(dirname "$0")"
exec cargo test --workspace --locked --no-fail-fast "$@"
