#!/usr/bin/env bash
# THE test command: installs the system packages, removes leftovers of aborted runs, then runs
# every test target of the crate (unit, integration/end-to-end, and benches in test mode), then,
# for the full run (no arguments), scripts/test-vm.sh: the end-to-end tests on a cgroup v2 node
# with the systemd cgroup driver, in a VM (docs/test-vm.md).
# Needs root (the end-to-end tests run private containerd daemons and runc). Exits non-zero on any
# failure.
#
#   CORONER_TEST_THREADS   parallel tests per binary (default 4: on 2 cores the end-to-end tests
#                          mostly wait on containers; each runs its own containerd + agent)
#   extra arguments        passed to `cargo test` before `--`, e.g. `scripts/test.sh --test e2e`
#                          (then only that runs: no VM)
set -euo pipefail

cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/cleanup-test-leftovers.sh
# Also after the run, so a failing or interrupted run leaves the machine clean.
trap 'scripts/cleanup-test-leftovers.sh >/dev/null || true' EXIT

# RUST_TEST_THREADS rather than `-- --test-threads`: the bench (harness = false) gets no libtest
# flags it would have to parse.
export RUST_TEST_THREADS="${CORONER_TEST_THREADS:-4}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# One build from scratch (CI, a fresh clone): incremental artifacts only cost time and disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# --no-fail-fast: one failing test binary must not hide the results of the others.
echo "test.sh: cargo test --all-targets --no-fail-fast $* (RUST_TEST_THREADS=$RUST_TEST_THREADS)"
status=0
cargo test --all-targets --no-fail-fast "$@" || status=$?
if [ "$#" -eq 0 ]; then
    # Also when cargo test failed: its result must not hide the VM's.
    scripts/test-vm.sh || status=$?
fi
exit "$status"
