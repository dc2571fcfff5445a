#!/usr/bin/env bash
# Removes what aborted test runs left behind: the private containerd daemons, shims, containers,
# rootfs mounts, cgroups and temp dirs of tests/harness instances (`coroner-test-*`) and the agent
# processes and dirs (`coroner-agent-*`) whose owning test process is gone.
#
# A normal run cleans up after itself (the harness's Drop); this is for runs killed by a timeout
# or Ctrl-C. Instances of a test process that is still alive are left alone, so running this
# while another suite runs on the same machine is safe. Must run as root.
set -euo pipefail

TMP="${CORONER_TEST_TMPDIR:-${TMPDIR:-/tmp}}"
TMP="${TMP%/}"
cleaned=0

# True when the "<pid> <starttime>" in $1 names a process that still runs (a zombie does not:
# a killed test process lingers as one until something reaps it).
owner_alive() {
    local owner_file=$1 pid start stat rest
    [ -r "$owner_file" ] || return 1
    read -r pid start <"$owner_file" || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    rest=${stat##*) }            # fields 3.. (the comm in field 2 may contain spaces)
    set -- $rest
    [ "$1" != Z ] && [ "$1" != X ] && [ "${20:-}" = "$start" ]   # field 3: state, 22: start time
}

# A dir without an owner file is being created right now if it is young; else it is abandoned.
abandoned() {
    local dir=$1
    if [ -e "$dir/owner" ]; then
        ! owner_alive "$dir/owner"
    else
        [ -n "$(find "$dir" -maxdepth 0 -mmin +1 2>/dev/null)" ]
    fi
}

# Pids whose argv contains the argument sequence given, exactly ("-address" "/x/sock").
pids_with_args() {
    local pid
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        [ -r "/proc/$pid/cmdline" ] || continue
        if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$1"; then
            if [ $# -eq 1 ] || tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -A1 -xF -- "$1" | grep -qxF -- "$2"; then
                echo "$pid"
            fi
        fi
    done
}

kill_pids() {
    local pid
    for pid in "$@"; do
        [ "$pid" = "$$" ] && continue
        kill -KILL "$pid" 2>/dev/null || true
    done
}

cgroup_roots() {
    awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo
}

remove_cgroup() {
    local name=$1 root dir pid
    for root in $(cgroup_roots); do
        [ -d "$root/$name" ] || continue
        for _ in 1 2 3 4 5; do
            for pid in $(find "$root/$name" -name cgroup.procs -exec cat {} + 2>/dev/null); do
                kill -KILL "$pid" 2>/dev/null || true
            done
            find "$root/$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [ -d "$root/$name" ] || break
            sleep 0.1
        done
        if [ -d "$root/$name" ]; then echo "cleanup: could not remove cgroup $root/$name" >&2; fi
    done
}

unmount_under() {
    local dir=$1 point
    for _ in 1 2 3; do
        points=$(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2-)
        [ -n "$points" ] || return 0
        while IFS= read -r point; do
            umount -l "$point" 2>/dev/null || true
        done <<<"$points"
    done
}

for dir in "$TMP"/coroner-test-*; do
    [ -d "$dir" ] || continue
    abandoned "$dir" || continue
    name=$(basename "$dir")
    echo "cleanup: removing leftovers of $name"
    cleaned=$((cleaned + 1))
    kill_pids $(pids_with_args "$dir/config.toml")
    # Shim sockets live in /run/containerd/s; each task bundle records its shim's address.
    sockets=$(cat "$dir"/state/io.containerd.runtime.v2.task/*/*/address 2>/dev/null | sed 's#^unix://##' || true)
    kill_pids $(pids_with_args -address "$dir/containerd.sock")
    for state in "$dir"/runc/*/*; do
        [ -d "$state" ] || continue
        runc --root "$(dirname "$state")" delete --force "$(basename "$state")" >/dev/null 2>&1 || true
    done
    for s in $sockets; do rm -f "$s"; done
    unmount_under "$dir"
    remove_cgroup "$name"
    if awk -v d="$dir" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        echo "cleanup: mounts remain under $dir; not deleting it" >&2
    else
        rm -rf "$dir"
    fi
done

# Cgroups of instances whose directory is already gone.
for root in $(cgroup_roots); do
    for cg in "$root"/coroner-test-*; do
        [ -d "$cg" ] || continue
        name=$(basename "$cg")
        [ -d "$TMP/$name" ] && continue
        cleaned=$((cleaned + 1))
        remove_cgroup "$name"
    done
done

for dir in "$TMP"/coroner-agent-*; do
    [ -d "$dir" ] || continue
    abandoned "$dir" || continue
    echo "cleanup: removing leftovers of $(basename "$dir")"
    cleaned=$((cleaned + 1))
    kill_pids $(pids_with_args --data-dir "$dir/data")
    rm -rf "$dir"
done

# Flight-recorder pins of test agents (tests/harness/agent.rs, tests/recorder_continuity.rs):
# /sys/fs/bpf/coroner-test-<pid>-<starttime>-<n>. Pinned links keep programs attached to the host's
# tracepoints until unpinned, so a killed test run must not leave them.
for dir in /sys/fs/bpf/coroner-test-*; do
    [ -d "$dir" ] || continue
    IFS=- read -r _ _ pid start _ <<<"$(basename "$dir")"
    stamp=$(mktemp)
    echo "$pid $start" >"$stamp"
    if owner_alive "$stamp"; then rm -f "$stamp"; continue; fi
    rm -f "$stamp"
    echo "cleanup: removing pinned recorder $dir"
    cleaned=$((cleaned + 1))
    # Unlinking the pins (bpffs allows unlink and rmdir) detaches the programs.
    rm -rf "$dir" || echo "cleanup: could not remove $dir" >&2
done

echo "cleanup: $cleaned leftover item(s) handled"
