#!/usr/bin/env bash
# End-to-end tests on a cgroup v2-only node with the systemd cgroup driver: boots a Debian VM
# (qemu, software emulation) whose containerd runs the CRI plugin with SystemdCgroup = true, and
# runs tests/vm_node.rs inside it against the shipped static agent. docs/test-vm.md has the
# details. Needs root (mmdebstrap, mke2fs -d of a root filesystem). Exits non-zero when any test
# fails or anything cannot run.
#
#   scripts/test-vm.sh [SUITE...]     Debian suites to test (default: trixie and sid, i.e.
#                                     containerd 1.7 and containerd 2.x)
#
#   CORONER_VM_MIRROR    Debian mirror (default: the one in /etc/apt, else deb.debian.org)
#   CORONER_VM_TIMEOUT   seconds one VM may run before it counts as failed (default 2400)
#
# Cached under target/vm/<suite>-<key>/ (root image, kernel, initrd): the key hashes the suite,
# the package list, the recipe (build_image below) and scripts/vm/*, so changing any of them rebuilds the image.
set -euo pipefail
cd "$(dirname "$0")/.."

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(trixie sid)
timeout_s=${CORONER_VM_TIMEOUT:-2400}

# What a kubeadm-style node needs (dbus: runc's systemd driver makes scopes through it), the
# suite's stock kernel (BTF included) and busybox-static (the test images' root filesystem).
PACKAGES=systemd,systemd-sysv,dbus,containerd,runc,kmod,linux-image-amd64,busybox-static

if [ "$(id -u)" -ne 0 ]; then
    echo "test-vm.sh: must run as root (mmdebstrap, mke2fs -d of a root filesystem)" >&2
    exit 1
fi
for tool in qemu-system-x86_64 mmdebstrap mke2fs cargo python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test-vm.sh: $tool missing; running scripts/install-deps.sh" >&2
        scripts/install-deps.sh
        break
    fi
done

mirror=${CORONER_VM_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(grep -rhoE '^(URIs: |deb )https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
        | sed -E 's/^(URIs: |deb )//' | head -n 1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
fi

vm_root=$PWD/target/vm
mkdir -p "$vm_root/tmp"
# qemu's snapshot overlays go to TMPDIR: keep them in target/ too.
export TMPDIR=$vm_root/tmp

# --- the root image of one suite, built once per key -------------------------------------------
image_key() {
    { printf '%s\n%s\n' "$1" "$PACKAGES"; declare -f build_image; cat scripts/vm/*; } | sha256sum | cut -c1-16
}

build_image() {
    local suite=$1 dir=$2
    local work=$dir.work
    rm -rf "$work"
    mkdir -p "$work"
    # Older images of this suite: replaced, not kept (disk).
    find "$vm_root" -maxdepth 1 -name "$suite-*" ! -path "$dir" ! -path "$work" -exec rm -rf {} +
    local t0=$SECONDS
    echo "test-vm.sh: building the $suite image ($PACKAGES) from $mirror"
    # Debian's initramfs with only what mounts the root disk (virtio_blk and ext4 are modules):
    # 12 MB instead of 60, which software emulation unpacks in a second.
    # The hooks run in a shell of their own: they find the guest's files through the environment.
    # Check-Valid-Until off: sid's Release expires a week after it is signed, and a mirror
    # snapshot (or a host clock ahead of it) serves it expired; signatures are still checked.
    VM_FILES=$PWD/scripts/vm mmdebstrap --variant=apt --include="$PACKAGES" \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"
            echo MODULES=list >"$1/etc/initramfs-tools/conf.d/coroner-vm.conf"
            printf "virtio_pci\nvirtio_blk\next4\n" >>"$1/etc/initramfs-tools/modules"' \
        --customize-hook='set -e
            echo "/dev/vda / ext4 rw,errors=remount-ro 0 1" >"$1/etc/fstab"
            echo coroner-vm >"$1/etc/hostname"
            # CRI copies the /etc/hosts of the node into every sandbox: RunPodSandbox fails without it.
            printf "127.0.0.1 localhost\n127.0.1.1 coroner-vm\n::1 localhost\n" >"$1/etc/hosts"
            install -m 0644 "$VM_FILES/containerd-config.toml" "$1/etc/containerd/config.toml"
            install -m 0755 "$VM_FILES/coroner-vm-run" "$1/usr/local/sbin/coroner-vm-run"
            install -m 0644 "$VM_FILES/coroner-vm-test.service" "$1/etc/systemd/system/"
            ln -sf /etc/systemd/system/coroner-vm-test.service "$1/etc/systemd/system/multi-user.target.wants/"
            # Nothing but the tests on the serial console, and no timers waking up in the run.
            for unit in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer \
                apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer e2scrub_all.timer \
                systemd-tmpfiles-clean.timer man-db.timer; do
                ln -sf /dev/null "$1/etc/systemd/system/$unit"
            done' \
        "$suite" "$work/rootfs" "$mirror" >"$work/mmdebstrap.log" 2>&1 \
        || { tail -n 40 "$work/mmdebstrap.log" >&2; echo "test-vm.sh: mmdebstrap $suite failed" >&2; exit 1; }
    cp "$work"/rootfs/boot/vmlinuz-* "$work/vmlinuz"
    cp "$work"/rootfs/boot/initrd.img-* "$work/initrd.img"
    # The kernel package is in the image only for its modules (overlay, ...) and the files above.
    mke2fs -q -t ext4 -L root -d "$work/rootfs" "$work/root.img" 3G >/dev/null
    rm -rf "$work/rootfs"
    mv "$work" "$dir"
    echo "test-vm.sh: $suite image built in $((SECONDS - t0)) s ($(du -sh "$dir" | cut -f1) on disk)"
}

# --- images missing from the cache: built beside the compilation below ------------------------
# mmdebstrap mostly downloads and unpacks while cargo mostly compiles: on a cold run the two
# overlap instead of adding up. Each build logs to its own file; its result is awaited before boot.
t_start=$SECONDS
declare -A image_pid=()
# (logs/: build_image removes the suite's other entries of target/vm.)
mkdir -p "$vm_root/logs"
# Never leave a build running behind: whatever ends this script waits for it first.
trap 'wait' EXIT
for suite in "${suites[@]}"; do
    dir=$vm_root/$suite-$(image_key "$suite")
    if [ -f "$dir/root.img" ]; then
        echo "test-vm.sh: $suite image cached ($dir)"
    else
        build_image "$suite" "$dir" >"$vm_root/logs/$suite-image.log" 2>&1 &
        image_pid[$suite]=$!
        echo "test-vm.sh: building the $suite image in the background (log $vm_root/logs/$suite-image.log)"
    fi
done

# --- what goes into the VM: the shipped agent and the statically linked test binary ------------
triple=$(rustc -vV | sed -n 's/^host: //p')
t0=$SECONDS
scripts/build-static.sh target/coroner-image/coroner
# The same static linking as the agent (glibc, libelf, zlib), so the guest needs no libraries.
test_bin=$(RUSTFLAGS="-C target-feature=+crt-static" \
    cargo test --release --locked --target "$triple" --test vm_node --no-run --message-format=json \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "vm_node":
        print(m["executable"])')
if [ -z "$test_bin" ] || readelf --program-headers "$test_bin" | grep -q INTERP; then
    echo "test-vm.sh: no static tests/vm_node.rs binary (got '$test_bin')" >&2
    exit 1
fi
# What the runner must report as passed: every test of the binary, so a filter or a test that
# never ran cannot pass unnoticed.
expected=$("$test_bin" --list 2>/dev/null | grep -c ': test$' || true)
if [ "$expected" -lt 1 ]; then
    echo "test-vm.sh: $test_bin lists no tests" >&2
    exit 1
fi
echo "test-vm.sh: binaries ready in $((SECONDS - t0)) s ($expected tests)"

payload=$vm_root/payload
rm -rf "$payload" "$vm_root/payload.img"
mkdir -p "$payload"
cp target/coroner-image/coroner "$payload/coroner"
strip --strip-debug -o "$payload/vm_node" "$test_bin"
cat >"$payload/run.sh" <<'EOF'
#!/bin/sh
# Run by coroner-vm-run inside the VM; the disk is mounted at /mnt/payload.
export CORONER_TEST_AGENT_BIN=/mnt/payload/coroner
export CORONER_TEST_IMAGE_CACHE=/var/tmp/coroner-test-images
export RUST_BACKTRACE=1
# One test at a time: two emulated CPUs.
exec /mnt/payload/vm_node --test-threads=1 --color never
EOF
mke2fs -q -t ext4 -L payload -d "$payload" "$vm_root/payload.img" \
    "$(( $(du -sm "$payload" | cut -f1) + 64 ))M"

# --- boot and test, one suite after the other ---------------------------------------------------
failed=()
for suite in "${suites[@]}"; do
    dir=$vm_root/$suite-$(image_key "$suite")
    if [ -n "${image_pid[$suite]:-}" ]; then
        image_rc=0
        wait "${image_pid[$suite]}" || image_rc=$?
        cat "$vm_root/logs/$suite-image.log"
        if [ "$image_rc" -ne 0 ] || [ ! -f "$dir/root.img" ]; then
            echo "test-vm.sh: $suite: no image (build exited $image_rc)" >&2
            failed+=("$suite")
            continue
        fi
    fi
    log=$vm_root/$suite-console.log
    echo "test-vm.sh: booting $suite (qemu TCG, 2 CPUs, 2 GiB); console in $log"
    t0=$SECONDS
    # A kernel that oopses while booting under TCG (int3 oopses 1-3 s into the boot, text patching
    # racing in the emulator: sid's 7.2 in set_next_task_fair, trixie's 6.12 in sched_clock_cpu,
    # about one boot in three) is booted again, up to 6 boots (a crashed boot costs ~5 s), and
    # says so; anything after the test runner started counts as it is.
    for attempt in 1 2 3 4 5 6; do
    rc=0
    # KVM guests hang on this machine kind (docs/test-vm.md): software emulation only, one host
    # thread for both guest CPUs (multi-threaded TCG let the kernel's int3 text patching race).
    # no_timer_check: under a loaded host the kernel's IO-APIC timer check fails in TCG (panic).
    timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
        -accel tcg,thread=single -cpu max -smp 2 -m 2048 \
        -display none -monitor none -serial "file:$log" -nic none -no-reboot \
        -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 no_timer_check quiet systemd.show_status=false" \
        -drive "file=$dir/root.img,if=virtio,format=raw,snapshot=on" \
        -drive "file=$vm_root/payload.img,if=virtio,format=raw,snapshot=on" \
        || rc=$?
    if grep -q 'coroner-vm: kernel' "$log" || ! grep -Eq 'Oops:|Kernel panic' "$log" || [ "$attempt" -eq 6 ]; then
        break
    fi
    echo "test-vm.sh: $suite: the kernel crashed while booting (attempt $attempt), before the tests; booting again:" >&2
    grep -E -m 3 'Oops:|RIP:|Kernel panic' "$log" | tr -d '\r' >&2
    done
    # Everything the runner printed, from its first line on.
    # (systemd 258+ writes terminal queries to the console just before the runner's first line.)
    sed -n '/coroner-vm: kernel/,$p' "$log" | tr -d '\r' | sed -E '1s/.*(coroner-vm: kernel)/\1/'
    if [ "$rc" -ne 0 ]; then
        echo "test-vm.sh: $suite: qemu exited $rc after $((SECONDS - t0)) s (124: timed out after $timeout_s s)" >&2
    fi
    if ! grep -q '^coroner-vm: exit status 0' "$log"; then
        if ! grep -q '^coroner-vm: exit status' "$log"; then
            echo "test-vm.sh: $suite: the tests never finished; the console's last lines:" >&2
            tail -n 60 "$log" | tr -d '\r' >&2
        fi
        failed+=("$suite")
    elif ! grep -Eq "^test result: ok\. $expected passed; 0 failed; 0 ignored" "$log"; then
        echo "test-vm.sh: $suite: no test-runner line with all $expected tests passed in the console" >&2
        failed+=("$suite")
    fi
    echo "test-vm.sh: $suite done in $((SECONDS - t0)) s (boot + tests)"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "test-vm.sh: FAILED on ${failed[*]} after $((SECONDS - t_start)) s" >&2
    exit 1
fi
echo "test-vm.sh: all $expected tests passed on ${suites[*]} in $((SECONDS - t_start)) s"
