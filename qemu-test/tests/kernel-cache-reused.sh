#!/usr/bin/env bash
# Host test: once built, the cached guest kernel is reused (no rebuild), and
# its cache key follows the config fragment.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/env.sh"
out=$("$top/scripts/build-kernel.sh" 2>&1) || { echo "$out"; echo "build-kernel.sh failed"; exit 1; }
grep -q "reusing cached kernel" <<<"$out" || { echo "$out"; echo "expected the cached kernel to be reused"; exit 1; }
dir=$(rfl_kernel_dir)
[ -f "$dir/.rfl-build-complete" ] && [ -f "$dir/arch/x86/boot/bzImage" ] || { echo "no complete build at $dir"; exit 1; }
grep -q '^CONFIG_RUST=y' "$dir/.config" || { echo "cached tree has no CONFIG_RUST=y"; exit 1; }
# A different fragment must give a different cache directory.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/qemu-test" "$tmp/scripts"
cp "$top/scripts/env.sh" "$tmp/scripts/"
{ cat "$top/qemu-test/kernel.config"; echo "CONFIG_RFL_CACHE_KEY_PROBE=y"; } > "$tmp/qemu-test/kernel.config"
other=$(. "$tmp/scripts/env.sh" && rfl_kernel_dir)
[ "$other" != "$dir" ] || { echo "changing the fragment did not change the cache key ($dir)"; exit 1; }
echo "cached kernel $dir reused; a changed fragment keys a new directory"
