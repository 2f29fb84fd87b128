#!/usr/bin/env bash
# Installs every host package, cargo tool and pip package the project needs.
# Idempotent: each step checks what is already there and skips it.
# Must run as root on Debian 12 (bookworm); on failure it names the missing piece.
set -euo pipefail

BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42

die() { echo "setup: ERROR: $*" >&2; exit 1; }
say() { echo "setup: $*"; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get and /etc/apt changes need it)"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] || say "warning: tested on Debian 12 bookworm, this is ${PRETTY_NAME:-unknown}"

export DEBIAN_FRONTEND=noninteractive

# bookworm-backports carries the QEMU with the NVMe device we need and newer meson.
BPO=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$BPO" ]; then
    say "adding bookworm-backports to apt sources"
    cat > "$BPO" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    rm -f /var/lib/apt/periodic/rfl-updated
fi

# Source suites for QEMU >= 10.1 (vfio-user client), used by scripts/build-qemu.sh.
SRCLIST=/etc/apt/sources.list.d/rfl-qemu-src.sources
if [ ! -f "$SRCLIST" ]; then
    say "adding deb-src lines for newer Debian suites (QEMU source only)"
    cat > "$SRCLIST" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie trixie-backports forky sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    rm -f /var/lib/apt/periodic/rfl-updated
fi

# Packages from the default suites.
APT_PKGS=(
    # Rust for the kernel: Debian's rustc with its core/alloc sources.
    rustc-web rust-web-src rust-web-clippy rustfmt-web
    # C toolchain the kernel's Rust support is built with.
    clang-19 lld-19 llvm-19 libclang-19-dev
    # Kernel source and build dependencies.
    linux-source-6.12 flex bison bc libelf-dev libssl-dev cpio kmod make gcc xz-utils rsync
    # virtme-ng needs these on the host; udev gives vng a working console and exit codes.
    udev busybox-static
    # Tools the guest tests use (the guest sees the host's root filesystem).
    fio iperf3 ethtool nvme-cli pciutils iproute2 e2fsprogs iputils-ping socat python3-yaml
    util-linux procps coreutils liburing-dev
    # QEMU source build (issue: ENA device model) and charts for benchmarks.
    dpkg-dev pkgconf python3-venv ninja-build libglib2.0-dev zlib1g-dev libfdt-dev libslirp-dev
    python3-matplotlib
)
# Packages that must come from bookworm-backports.
BPO_PKGS=(qemu-system-x86 qemu-system-data qemu-utils seabios ipxe-qemu meson python3-pycotap)

missing=()
for p in "${APT_PKGS[@]}" "${BPO_PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
# QEMU must be the backports one (>= 10): bookworm's 7.2 would satisfy the check above.
qemu_version=$(qemu-system-x86_64 --version 2>/dev/null || true)
if ! grep -Eq 'version (1[0-9]|[89])\.' <<<"$qemu_version"; then
    missing+=(qemu-system-x86)
fi

if [ ${#missing[@]} -gt 0 ]; then
    say "installing apt packages: ${missing[*]}"
    apt-get update -q || die "apt-get update failed (network or apt sources?)"
    apt-get install -y -q --no-install-recommends "${APT_PKGS[@]}" \
        || die "apt-get install of the base packages failed"
    apt-get install -y -q --no-install-recommends -t bookworm-backports "${BPO_PKGS[@]}" \
        || die "apt-get install from bookworm-backports failed (${BPO_PKGS[*]})"
else
    say "apt packages: all present"
fi

/usr/bin/rustc --version | grep -Eq 'rustc 1\.(8[5-9]|9[0-9])' \
    || die "Debian rustc-web too old: $(/usr/bin/rustc --version 2>&1); need >= 1.85"

# bindgen-cli, pinned, built with the host's cargo.
export PATH="$HOME/.cargo/bin:$PATH"
bindgen_installed=$(bindgen --version 2>/dev/null || true)
if ! grep -q "bindgen $BINDGEN_VERSION" <<<"$bindgen_installed"; then
    command -v cargo >/dev/null || die "cargo not found (the machine's rustup toolchain is required for bindgen-cli)"
    say "installing bindgen-cli $BINDGEN_VERSION with cargo"
    cargo install --locked "bindgen-cli@$BINDGEN_VERSION" || die "cargo install bindgen-cli $BINDGEN_VERSION failed"
else
    say "bindgen-cli $BINDGEN_VERSION: present"
fi

# virtme-ng, pinned, from PyPI.
# (Captured first: `grep -q` closing the pipe early would fail pipefail.)
vng_installed=$(python3 -m pip show virtme-ng 2>/dev/null || true)
if ! grep -qx "Version: $VIRTME_NG_VERSION" <<<"$vng_installed"; then
    say "installing virtme-ng $VIRTME_NG_VERSION with pip"
    python3 -m pip install -q "virtme-ng==$VIRTME_NG_VERSION" || die "pip install virtme-ng==$VIRTME_NG_VERSION failed"
else
    say "virtme-ng $VIRTME_NG_VERSION: present"
fi
command -v vng >/dev/null || die "vng not on PATH after installing virtme-ng (pip scripts dir: $(python3 -m site --user-base)/bin?)"
say "host set-up complete"
