# Sourced by the project's scripts: where the caches live and how the kernel is built.
# shellcheck shell=bash

RFL_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Long builds live outside the repository so fresh clones and CI reuse them.
RFL_CACHE=${RFL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rfl-drivers}
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# Debian's rustc-web (with rust-web-src) builds the kernel; the rustup toolchain cannot.
RFL_KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=bindgen)

# Kernel flavours: "debug" (KASAN, lockdep, kmemleak, DMA-API debug, UBSAN,
# Rust overflow checks; what `make check` runs on) and "prod" (lean, for
# `make demo` and `make bench`). RFL_FLAVOUR picks one; tests default to debug.
RFL_FLAVOURS=(debug prod)
rfl_flavour() { echo "${RFL_FLAVOUR:-debug}"; }

# The config fragments of a flavour, in the order they are applied.
rfl_kernel_fragments() { # rfl_kernel_fragments FLAVOUR
    echo "$RFL_TOP/qemu-test/kernel-base.config"
    echo "$RFL_TOP/qemu-test/kernel.config"
    case "$1" in
        debug) echo "$RFL_TOP/qemu-test/kernel-debug.config" ;;
        prod) ;;
        *) echo "unknown kernel flavour '$1' (want: ${RFL_FLAVOURS[*]})" >&2; return 1 ;;
    esac
}

# The guest kernel's cache directory: keyed by flavour, the source package
# version and a hash of the config fragments, the tools that shape the build
# and the recipe.
rfl_kernel_dir() { # rfl_kernel_dir [FLAVOUR]
    local flavour=${1:-$(rfl_flavour)} kver key frags
    frags=$(rfl_kernel_fragments "$flavour") || return 1
    kver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    key=$( { echo recipe-2 "$flavour"
             cat $frags
             /usr/bin/rustc --version 2>/dev/null
             clang-19 --version 2>/dev/null | head -1; } | sha256sum | cut -c1-12)
    echo "$RFL_CACHE/kernel/$flavour-linux-${kver//[~+]/_}-$key"
}

# KDIR: a Rust-enabled 6.12 build tree. The user may point it at their own.
rfl_kdir() {
    if [ -n "${KDIR:-}" ]; then echo "$KDIR"; else rfl_kernel_dir "$@"; fi
}

# Where the out-of-tree modules for a flavour are built (a copy of the
# sources, so flavours never clobber each other's objects).
rfl_module_dir() { # rfl_module_dir [FLAVOUR]
    if [ -n "${KDIR:-}" ]; then echo "$RFL_TOP/build/modules/custom"
    else echo "$RFL_TOP/build/modules/${1:-$(rfl_flavour)}"; fi
}

# The module sources: Kbuild files, Rust and C, outside generated/.
module_sources() { # module_sources DIR
    (cd "$1" && find Kbuild drivers rust-bindings selftests/modules \
        -path rust-bindings/generated -prune -o -type f \
        \( -name '*.rs' -o -name '*.c' -o -name '*.h' -o -name Kbuild \) -print 2>/dev/null | sort)
}

# Copies the module sources into DEST, removing sources that are gone;
# objects already there stay, and make rebuilds only what changed (mtimes
# are kept).
sync_sources() { # sync_sources DEST
    mkdir -p "$1"
    module_sources "$RFL_TOP" > "$1/.rfl-sources"
    rsync -a --files-from="$1/.rfl-sources" "$RFL_TOP/" "$1/" || { echo "copying the module sources into $1 failed" >&2; return 1; }
    module_sources "$1" | comm -13 "$1/.rfl-sources" - | (cd "$1" && xargs -r rm -f)
}

