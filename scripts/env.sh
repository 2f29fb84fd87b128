# Sourced by the project's scripts: where the caches live and how the kernel is built.
# shellcheck shell=bash

RFL_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Long builds live outside the repository so fresh clones and CI reuse them.
RFL_CACHE=${RFL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rfl-drivers}
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# Debian's rustc-web (with rust-web-src) builds the kernel; the rustup toolchain cannot.
RFL_KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=bindgen)

# The guest kernel's cache directory: keyed by the source package version and
# a hash of the config fragment, the tools that shape the build and the recipe.
rfl_kernel_dir() {
    local kver key
    kver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) || return 1
    key=$( { echo recipe-1
             cat "$RFL_TOP/qemu-test/kernel.config"
             vng --version 2>/dev/null | head -1
             /usr/bin/rustc --version 2>/dev/null
             clang-19 --version 2>/dev/null | head -1; } | sha256sum | cut -c1-12)
    echo "$RFL_CACHE/kernel/linux-${kver//[~+]/_}-$key"
}

# KDIR: a Rust-enabled 6.12 build tree. The user may point it at their own.
rfl_kdir() {
    if [ -n "${KDIR:-}" ]; then echo "$KDIR"; else rfl_kernel_dir; fi
}
