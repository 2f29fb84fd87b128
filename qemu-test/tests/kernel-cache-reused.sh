#!/usr/bin/env bash
# Host test: once built, the cached debug guest kernel is reused (no
# rebuild); it has the debug checks compiled in; its cache key follows every
# config fragment; the flavours key different directories.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/env.sh"
out=$("$top/scripts/build-kernel.sh" debug 2>&1) || { echo "$out"; echo "build-kernel.sh debug failed"; exit 1; }
grep -q "reusing cached debug kernel" <<<"$out" || { echo "$out"; echo "expected the cached debug kernel to be reused"; exit 1; }
dir=$(rfl_kernel_dir debug)
[ -f "$dir/.rfl-build-complete" ] && [ -f "$dir/arch/x86/boot/bzImage" ] || { echo "no complete build at $dir"; exit 1; }
for opt in RUST KASAN KASAN_GENERIC KASAN_INLINE PROVE_LOCKING DEBUG_ATOMIC_SLEEP DEBUG_OBJECTS_WORK \
           DEBUG_OBJECTS_TIMERS DEBUG_OBJECTS_RCU_HEAD DEBUG_KMEMLEAK DMA_API_DEBUG DMA_API_DEBUG_SG \
           UBSAN_BOUNDS UBSAN_SHIFT RUST_DEBUG_ASSERTIONS RUST_OVERFLOW_CHECKS DEBUG_PAGEALLOC \
           FAULT_INJECTION FAILSLAB FAIL_PAGE_ALLOC FAIL_MAKE_REQUEST; do
    grep -q "^CONFIG_$opt=y" "$dir/.config" || { echo "debug tree has no CONFIG_$opt=y"; exit 1; }
done
# What the drivers' paths depend on and allnoconfig would drop (distribution
# kernels have them): BQL accounting, RPS.
for opt in BQL RPS XPS NET_RX_BUSY_POLL PAGE_POOL IPV6 NET_NS; do
    grep -q "^CONFIG_$opt=y" "$dir/.config" || { echo "debug tree has no CONFIG_$opt=y (the drivers' paths use it)"; exit 1; }
done
# The lean base: none of the subsystems no guest uses.
for opt in DRM SOUND USB_SUPPORT SCSI ATA NETFILTER WLAN; do
    ! grep -q "^CONFIG_$opt=y" "$dir/.config" || { echo "debug tree compiles CONFIG_$opt, which no guest uses"; exit 1; }
done
[ "$(rfl_kernel_dir prod)" != "$dir" ] || { echo "debug and prod flavours share a cache directory"; exit 1; }
# A changed fragment (any of the three) must give a different cache directory.
for frag in kernel-base.config kernel.config kernel-debug.config; do
    tmp=$(mktemp -d)
    mkdir -p "$tmp/qemu-test" "$tmp/scripts"
    cp "$top/scripts/env.sh" "$tmp/scripts/"
    cp "$top"/qemu-test/kernel*.config "$tmp/qemu-test/"
    echo "CONFIG_RFL_CACHE_KEY_PROBE=y" >> "$tmp/qemu-test/$frag"
    other=$(. "$tmp/scripts/env.sh" && rfl_kernel_dir debug)
    rm -rf "$tmp"
    [ "$other" != "$dir" ] || { echo "changing $frag did not change the cache key ($dir)"; exit 1; }
done
echo "cached debug kernel $dir reused, debug options on, lean base; each fragment keys the cache"
