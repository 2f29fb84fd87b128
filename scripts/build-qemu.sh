#!/usr/bin/env bash
# scripts/build-qemu.sh — provide a qemu-system-x86_64 with the vfio-user-pci device.
#
# Idempotent. Uses the system QEMU when its `-device help` lists vfio-user-pci.
# Otherwise builds Debian's `qemu` source package (versions >= 10.1 from the
# configured deb-src suites, newest first, skipping any that fail to download)
# into $RFL_CACHE/qemu/<version>-<recipe hash>/ and reuses that build later
# (a stamp file marks a complete build).
#
# The last line printed on stdout is the path of the binary. Progress goes to
# stderr; on failure the message names the missing piece.
set -euo pipefail
. "$(dirname "$0")/env.sh"

say() { echo "build-qemu: $*" >&2; }
die() { echo "build-qemu: ERROR: $*" >&2; exit 1; }

# QEMU run from its build tree is "relocatable": it looks for the firmware
# path under build/qemu-bundle/<firmwarepath>. Point those at the system
# firmware (seabios, qemu-system-data, ipxe-qemu packages).
link_firmware() { # link_firmware BUILD_DIR
    local d
    for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
        [ -e "$1/qemu-bundle$d" ] && continue
        mkdir -p "$(dirname "$1/qemu-bundle$d")"
        ln -s "$d" "$1/qemu-bundle$d"
    done
    # A paused pc machine must come up (it loads the BIOS); `timeout` ends it.
    local out status=0
    out=$(timeout 3 "$1/qemu-system-x86_64" -nodefaults -display none -M pc -S \
        -monitor none -serial none </dev/null 2>&1) || status=$?
    [ $status = 124 ] || die "$1/qemu-system-x86_64 cannot start a pc machine: $out (firmware packages: seabios qemu-system-data ipxe-qemu)"
}

has_vfio_user() { "$1" -nodefaults -machine none -device help 2>/dev/null | grep -q '"vfio-user-pci"'; }

if [ -z "${RFL_FORCE_QEMU_BUILD:-}" ] && sys=$(command -v qemu-system-x86_64) && has_vfio_user "$sys"; then
    say "system QEMU has vfio-user-pci"
    echo "$sys"
    exit 0
fi

CONFIGURE_ARGS=(
    --target-list=x86_64-softmmu --without-default-features
    --enable-kvm --enable-tcg --enable-slirp --enable-virtfs --enable-attr
    --enable-vhost-user --enable-vhost-kernel --enable-vhost-net
    --enable-fdt=system --disable-docs --disable-download
    --disable-install-blobs --disable-werror
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
    # Debian's meson (from backports) is a package of the system Python; a
    # pyenv/venv python3 earlier in PATH would not see it.
    --python=/usr/bin/python3
)
# Anything that changes the result belongs in the hash.
recipe_hash=$(printf '%s\n' recipe-1 "${CONFIGURE_ARGS[@]}" | sha256sum | cut -c1-10)
root=$RFL_CACHE/qemu

# Reuse a finished build (any version) with this recipe: newest version first.
for stamp in $(ls -1d "$root"/*-"$recipe_hash"/.build-complete 2>/dev/null | sort -rV); do
    bin=$(dirname "$stamp")/build/qemu-system-x86_64
    if [ -x "$bin" ] && has_vfio_user "$bin"; then
        link_firmware "$(dirname "$bin")"
        say "reusing $bin"
        echo "$bin"
        exit 0
    fi
done

for tool in apt-cache apt-get dpkg-source ninja meson pkg-config /usr/bin/python3 gcc; do
    command -v "$tool" >/dev/null || die "missing tool '$tool' (run 'make setup', it installs the QEMU build deps)"
done
meson_ver=$(/usr/bin/python3 -c 'import mesonbuild.coredata as c; print(c.version)' 2>/dev/null) \
    || die "Debian's meson is not importable by /usr/bin/python3 (install meson from bookworm-backports: run 'make setup')"
dpkg --compare-versions "$meson_ver" ge 1.5 || die "meson $meson_ver is too old (need >= 1.5, from bookworm-backports: run 'make setup')"
for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin; do
    [ -e "$f" ] || die "missing firmware $f (packages seabios, qemu-system-data)"
done

mapfile -t versions < <(apt-cache showsrc qemu 2>/dev/null | sed -n 's/^Version: //p' | sort -u | sort -rV)
[ ${#versions[@]} -gt 0 ] || die "apt-cache showsrc qemu lists nothing: add deb-src lines for trixie/sid and run apt-get update ('make setup' does)"

mkdir -p "$root"
for v in "${versions[@]}"; do
    upstream=${v#*:}; upstream=${upstream%%+*}; upstream=${upstream%%-*}
    dpkg --compare-versions "$upstream" ge 10.1 || { say "skip $v (< 10.1)"; continue; }
    dir=$root/${v//[:~+]/_}-$recipe_hash
    if [ -f "$dir/.build-complete" ]; then
        link_firmware "$dir/build"
        echo "$dir/build/qemu-system-x86_64"; exit 0
    fi
    say "trying qemu $v in $dir"
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp/dl"
    if ! (cd "$dir.tmp/dl" && apt-get source --download-only "qemu=$v" >../download.log 2>&1); then
        mv "$dir.tmp/download.log" "$root/download-${v//[:~+]/_}.log" 2>/dev/null || true
        say "download of $v failed: $(grep -m1 -E '^(E|Err):' "$root/download-${v//[:~+]/_}.log" || true) (log $root/download-${v//[:~+]/_}.log)"
        rm -rf "$dir.tmp"
        continue
    fi
    dsc=$(ls "$dir.tmp"/dl/*.dsc | head -1)
    (cd "$dir.tmp" && dpkg-source --no-check -x "$dsc" src >unpack.log 2>&1) \
        || die "dpkg-source -x failed for $v (log $dir.tmp/unpack.log)"
    rm -rf "$dir.tmp/dl"
    mkdir -p "$dir.tmp/build"
    say "configuring (log $dir.tmp/configure.log)"
    (cd "$dir.tmp/build" && ../src/configure "${CONFIGURE_ARGS[@]}" >../configure.log 2>&1) \
        || die "configure failed for $v: $(grep -m3 -iE 'error|not found' "$dir.tmp/configure.log" | tr '\n' ' ') (log $dir.tmp/configure.log)"
    say "building qemu-system-x86_64 (log $dir.tmp/build.log; takes a while)"
    (cd "$dir.tmp/build" && ninja -j"$(nproc)" qemu-system-x86_64 >../build.log 2>&1) \
        || die "ninja failed for $v: $(grep -m3 -E 'error' "$dir.tmp/build.log" | tr '\n' ' ') (log $dir.tmp/build.log)"
    has_vfio_user "$dir.tmp/build/qemu-system-x86_64" \
        || die "built QEMU $v has no vfio-user-pci device (configure log $dir.tmp/configure.log)"
    # The build tree has absolute paths; move it into place before marking it complete.
    rm -rf "$dir"; mv "$dir.tmp" "$dir"
    # Meson embeds the build dir in the binary only for tests; the binary itself is relocatable.
    has_vfio_user "$dir/build/qemu-system-x86_64" || die "moved QEMU $v does not run (from $dir/build)"
    link_firmware "$dir/build"
    date -u +%FT%TZ > "$dir/.build-complete"
    say "built QEMU $v"
    echo "$dir/build/qemu-system-x86_64"
    exit 0
done
die "no qemu source >= 10.1 could be downloaded (tried: ${versions[*]}); check the deb-src lines and network"
