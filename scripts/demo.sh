#!/usr/bin/env bash
# The local demo: installs what is missing, builds the agent, starts a private containerd (CRI
# plugin, own socket and state; the system containerd is never touched), the agent, and a few
# containers that die in different ways, then prints their reports as the HTTP API serves them.
#
#   scripts/demo.sh          show the reports, then tear everything down
#   scripts/demo.sh --keep   leave it all running for curl until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/cleanup-test-leftovers.sh
cargo build --release --bin coroner --example demo
CORONER_TEST_AGENT_BIN="$PWD/target/release/coroner" exec target/release/examples/demo "$@"
