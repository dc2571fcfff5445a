#!/usr/bin/env bash
# The local demo: installs what is missing, builds the agent, starts a private containerd (CRI
# plugin, own socket and state; the system containerd is never touched) and the agent, and runs
# the four stories coroner was built for with real programs (Debian's Erlang VM and util-linux in
# a root built by mmdebstrap, cached under target/): a BEAM gateway OOM-killed, halted on a
# missing sys.config and unable to take its port; a database whose new pod cannot lock
# mongod.lock; a glibc binary in an image without glibc; a tag that moved under a running
# container. Then prints what coroner says: each story's diagnosis, the CLI's crash and group
# tables, a text postmortem, the metrics. See docs/demo.md (timings, what each story runs).
#
#   scripts/demo.sh          show it, then tear everything down
#   scripts/demo.sh --keep   leave it all running (web page, CLI, API) until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/cleanup-test-leftovers.sh
cargo build --release --bin coroner --example demo
CORONER_TEST_AGENT_BIN="$PWD/target/release/coroner" exec target/release/examples/demo "$@"
