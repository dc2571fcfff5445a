#!/usr/bin/env bash
# Builds the agent as one static executable (glibc linked in with crt-static, and so are libelf
# and zlib once the eBPF recorder links them) and writes a stripped copy to OUT. The container
# image ships exactly this file: the Containerfile's build stage runs this script, and
# scripts/build-image.sh --offline runs it on the host, so both paths build the same way.
#
#   scripts/build-static.sh [OUT]      OUT defaults to target/coroner-image/coroner
#
# Static glibc is fine for this program: it resolves no names (NSS and DNS are what static glibc
# cannot do); it talks to containerd over a unix socket and binds a numeric address.
# Cached: cargo's target/<host triple>/release is reused, so a rebuild after no change is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/coroner-image/coroner}
triple=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${CARGO_TARGET_DIR:-target}

# --target, even though it is the host's: with it RUSTFLAGS reach only the agent, not the build
# scripts and proc macros (which cannot be static).
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --bin coroner --target "$triple"

bin="$target_dir/$triple/release/coroner"
# A dynamically linked executable has a program interpreter (ld-linux); FROM scratch has none.
if readelf --program-headers "$bin" | grep -q INTERP; then
    echo "build-static.sh: $bin is dynamically linked; FROM scratch cannot run it" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
# Symbols stay (panic backtraces name functions); debug info goes (6 MB instead of 40 MB).
strip --strip-debug -o "$out.tmp" "$bin"
mv "$out.tmp" "$out"
echo "build-static.sh: $out ($(du -h "$out" | cut -f1))"
