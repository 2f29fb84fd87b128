#!/usr/bin/env bash
# Builds (or reuses) a cached Rust-enabled 6.12 guest kernel.
# Usage: scripts/build-kernel.sh [FLAVOUR]   (debug or prod; default $RFL_FLAVOUR or debug)
# The tree lives in $RFL_CACHE/kernel/FLAVOUR-linux-<version>-<key>; a stamp
# file marks a finished build, so a second run (or a fresh clone) does
# nothing. An interrupted build is resumed by make, not restarted.
# The config is allnoconfig plus the flavour's fragments (scripts/env.sh,
# rfl_kernel_fragments): only what the guests use is compiled.
set -euo pipefail
. "$(dirname "$0")/env.sh"

die() { echo "build-kernel: ERROR: $*" >&2; exit 1; }
say() { echo "build-kernel: $*"; }

FLAVOUR=${1:-$(rfl_flavour)}
FRAGMENTS=$(rfl_kernel_fragments "$FLAVOUR") || die "unknown flavour '$FLAVOUR' (want: ${RFL_FLAVOURS[*]})"
for t in bindgen clang-19 ld.lld-19 /usr/bin/rustc flex bison bc; do
    command -v "$t" >/dev/null || die "missing tool '$t': run 'make setup'"
done
TARBALL=/usr/src/linux-source-6.12.tar.xz
[ -f "$TARBALL" ] || die "missing $TARBALL (Debian package linux-source-6.12): run 'make setup'"

DIR=$(rfl_kernel_dir "$FLAVOUR")
STAMP=$DIR/.rfl-build-complete
if [ -f "$STAMP" ]; then
    say "reusing cached $FLAVOUR kernel $DIR"
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
    say "configuring the $FLAVOUR flavour: allnoconfig + $(echo $FRAGMENTS | xargs -n1 basename | tr '\n' ' ')"
    # One fragment, the last assignment of each option winning (so the debug
    # fragment can override kernel.config), used as allnoconfig's base.
    # shellcheck disable=SC2086
    awk '/^CONFIG_[A-Za-z0-9_]+=/ { n = index($0, "="); v[substr($0, 1, n - 1)] = $0 }
         END { for (k in v) print v[k] }' $FRAGMENTS | sort > .rfl-fragment
    make -s "${RFL_KMAKE_ARGS[@]}" KCONFIG_ALLCONFIG=.rfl-fragment allnoconfig \
        || die "make allnoconfig with the fragments failed"
    make -s "${RFL_KMAKE_ARGS[@]}" olddefconfig
    # Every option of the fragments must have survived (a dependency that
    # silently turns one off would otherwise show up much later).
    bad=0
    while IFS= read -r line; do
        opt=${line%%=*}; val=${line#*=}
        if [ "$val" = n ]; then
            grep -q "^$opt=" .config && { echo "  $opt should be off, .config has $(grep "^$opt=" .config)"; bad=1; }
        else
            grep -qxF "$opt=$val" .config || { echo "  $opt=$val missing, .config has: $(grep "^$opt=\|# $opt " .config || echo nothing)"; bad=1; }
        fi
    done < .rfl-fragment
    [ $bad = 0 ] || die "the config fragments did not apply (see above); is 'make rustavailable' happy?"
    touch .rfl-configured
fi

make -s "${RFL_KMAKE_ARGS[@]}" rustavailable >/dev/null || die "'make rustavailable' failed: Rust toolchain (rustc-web, rust-web-src, bindgen) is not usable"
JOBS=$(( $(nproc) + 1 ))
say "building the $FLAVOUR kernel with -j$JOBS"
start=$(date +%s)
make -j"$JOBS" "${RFL_KMAKE_ARGS[@]}" 2>&1 | grep -Ev '^\s+(CC|LD|AR|AS|RUSTC|BINDGEN|EXPORTS|HOSTCC|HOSTLD|GEN|CALL|CHK|UPD|SYNC|WRAP|VDSO|MKPIGGY|OBJCOPY|RELOCS|ZSTD|XZKERN|GZIP|POLICY|MODPOST|SYSHDR|SYSTBL|DESCEND|TEST|HYPERCALLS|LDS|MKREQ|MKCAP|MKELF|INSTALL|COPY|STRIP|CPUSTR|VOFFSET|ZOFFSET|RUSTDOC|KSYMS|SORTTAB|BTF|PAD|OBJTOOL|KSYM|SIGN|ASN.1|CERT|EXTRACT_CERTS|HOSTCXX|LEX|YACC|SHIPPED|UNROLL)\b' \
    || true
[ -f arch/x86/boot/bzImage ] && [ -f rust/kernel.o ] && [ -f Module.symvers ] \
    || die "kernel build failed in $DIR (run 'make -C $DIR ${RFL_KMAKE_ARGS[*]}' to see the error)"
say "$FLAVOUR kernel built in $(( $(date +%s) - start )) s"
echo "$(( $(date +%s) - start ))" > .rfl-build-seconds
touch "$STAMP"
