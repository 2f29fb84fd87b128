#!/usr/bin/env bash
# ext4 round trip: mkfs.ext4, mount, write files, umount, fsck clean, remount
# (after reloading the driver), checksums match.
. "$(dirname "$0")/nvme-lib"
require_cmd mkfs.ext4 fsck.ext4 mount umount
nvme_load
dev=$DISK mnt=$NVME_TMP/mnt
mkdir -p "$mnt"
mkfs.ext4 -q -F -E nodiscard "$dev" || fail "mkfs.ext4 $dev failed"
mount "$dev" "$mnt" || fail "mount $dev failed"
for i in 1 2 3 4; do
    dd if=/dev/urandom of="$mnt/f$i" bs=64k count=$((i * 16)) status=none || fail "writing f$i failed"
done
mkdir "$mnt/dir"; for i in $(seq 1 50); do echo "small file $i" > "$mnt/dir/s$i"; done
(cd "$mnt" && sha256sum f1 f2 f3 f4 dir/*) > "$NVME_TMP/sums"
umount "$mnt" || fail "umount failed"
fsck.ext4 -f -n "$dev" > "$NVME_TMP/fsck.out" 2>&1 || { cat "$NVME_TMP/fsck.out"; fail "fsck.ext4 found problems"; }
log "mkfs, 4 files (10 MiB) + 50 small ones, umount, fsck.ext4 -f: clean"
nvme_load   # reload: the remount reads from the device, not the page cache
mount "$DISK" "$mnt" || fail "mount after reload failed"
(cd "$mnt" && sha256sum -c --quiet "$NVME_TMP/sums") || fail "checksums differ after driver reload and remount"
umount "$mnt" || fail "second umount failed"
log "driver reloaded, remounted: all checksums match"
pass
