#!/usr/bin/env bash
# Builds (or reuses) the cached Rust-enabled 6.12 guest kernel.
# The tree lives in $RFL_CACHE/kernel/linux-<version>-<key>; a stamp file marks a
# finished build, so a second run (or a fresh clone) does nothing. An interrupted
# build is resumed by make, not restarted.
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "build-kernel: ERROR: $*" >&2; exit 1; }
say() { echo "build-kernel: $*"; }

for t in vng bindgen clang-19 ld.lld-19 /usr/bin/rustc flex bison bc; do
    command -v "$t" >/dev/null || die "missing tool '$t': run 'make setup'"
done
TARBALL=/usr/src/linux-source-6.12.tar.xz
[ -f "$TARBALL" ] || die "missing $TARBALL (Debian package linux-source-6.12): run 'make setup'"

DIR=$(rfl_kernel_dir)
STAMP=$DIR/.rfl-build-complete
if [ -f "$STAMP" ]; then
    say "reusing cached kernel $DIR"
    exit 0
fi

mkdir -p "$RFL_CACHE/kernel"
if [ ! -f "$DIR/Makefile" ]; then
    say "extracting $TARBALL into $DIR"
    rm -rf "$DIR.tmp"
    mkdir -p "$DIR.tmp"
    tar -C "$DIR.tmp" --strip-components=1 -xf "$TARBALL"
    mv "$DIR.tmp" "$DIR"
fi
cd "$DIR"
if [ ! -f .config ] || [ ! -f .rfl-configured ]; then
    say "configuring: virtme-ng minimal config + qemu-test/kernel.config"
    vng --kconfig --config "$RFL_TOP/qemu-test/kernel.config" "${RFL_KMAKE_ARGS[@]}" \
        || die "vng --kconfig failed"
    # vng appends its own must-haves after the fragment (debug info among them):
    # merge the fragment once more so ours wins, then resolve dependencies.
    KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m -Q .config "$RFL_TOP/qemu-test/kernel.config" >/dev/null \
        || die "merging qemu-test/kernel.config failed"
    make -s "${RFL_KMAKE_ARGS[@]}" olddefconfig
    # Every option of the fragment must have survived olddefconfig (a dependency
    # that silently turns one off would otherwise show up much later).
    bad=0
    while IFS= read -r line; do
        case "$line" in ''|'#'*) continue ;; esac
        opt=${line%%=*}; val=${line#*=}
        if [ "$val" = n ]; then
            grep -q "^$opt=" .config && { echo "  $opt should be off, .config has $(grep "^$opt=" .config)"; bad=1; }
        else
            grep -qx "$opt=$val" .config || { echo "  $opt=$val missing, .config has: $(grep "^$opt=\|# $opt " .config || echo nothing)"; bad=1; }
        fi
    done < "$RFL_TOP/qemu-test/kernel.config"
    [ $bad = 0 ] || die "the config fragment did not apply (see above); is 'make rustavailable' happy?"
    touch .rfl-configured
fi

make -s "${RFL_KMAKE_ARGS[@]}" rustavailable >/dev/null || die "'make rustavailable' failed: Rust toolchain (rustc-web, rust-web-src, bindgen) is not usable"
JOBS=$(( $(nproc) + 1 ))
say "building kernel with -j$JOBS (about 13 minutes on 2 cores)"
start=$(date +%s)
make -j"$JOBS" "${RFL_KMAKE_ARGS[@]}" 2>&1 | grep -Ev '^\s+(CC|LD|AR|AS|RUSTC|BINDGEN|EXPORTS|HOSTCC|HOSTLD|GEN|CALL|CHK|UPD|SYNC|WRAP|VDSO|MKPIGGY|OBJCOPY|RELOCS|ZSTD|XZKERN|GZIP|POLICY|MODPOST|SYSHDR|SYSTBL|DESCEND|TEST|HYPERCALLS|LDS|MKREQ|MKCAP|MKELF|INSTALL|COPY|STRIP|CPUSTR|VOFFSET|ZOFFSET|RUSTDOC|KSYMS|SORTTAB|BTF|PAD|OBJTOOL|KSYM|SIGN|ASN.1|CERT|EXTRACT_CERTS|HOSTCXX|LEX|YACC|SHIPPED|UNROLL)\b' \
    || true
[ -f arch/x86/boot/bzImage ] && [ -f rust/kernel.o ] && [ -f Module.symvers ] \
    || die "kernel build failed in $DIR (run 'make -C $DIR ${RFL_KMAKE_ARGS[*]}' to see the error)"
say "kernel built in $(( $(date +%s) - start )) s"
touch "$STAMP"
