#!/usr/bin/env bash
# The harness against a known-good driver: the in-tree C nvme on QEMU's NVMe
# device. Identify data matches the drive QEMU was given, data read back
# equals data written, fio verify passes, ext4 round trip with a clean fsck.
# Needs `qemu-test/vm --nvme` (a 1 GiB sparse file).
. "$(dirname "$0")/../lib.sh"
require_cmd modprobe nvme fio mkfs.ext4 fsck.ext4 blockdev sha256sum dd
bdf=$(pci_devices 0x1b36 0x0010 | head -1)
[ -n "$bdf" ] || fail "no QEMU NVMe controller (1b36:0010): start the guest with qemu-test/vm --nvme"

modprobe nvme || fail "modprobe nvme failed"
[ -e "/sys/bus/pci/drivers/nvme/$bdf" ] || fail "the C nvme driver did not bind $bdf"
ctrl=$(basename "$(ls -d /sys/bus/pci/drivers/nvme/"$bdf"/nvme/nvme* | head -1)")
dev=/dev/${ctrl}n1
wait_for_path "$dev" 20 || fail "$dev did not appear"

serial=$(tr -d ' ' < "/sys/class/nvme/$ctrl/serial")
[ "$serial" = rfl-nvme0 ] || fail "serial '$serial', expected rfl-nvme0 (set by qemu-test/vm)"
model=$(sed 's/ *$//' < "/sys/class/nvme/$ctrl/model")
[ "$model" = "QEMU NVMe Ctrl" ] || fail "model '$model', expected 'QEMU NVMe Ctrl'"
size=$(blockdev --getsize64 "$dev")
[ "$size" = $((1024 * 1024 * 1024)) ] || fail "$dev has $size bytes, expected 1 GiB"
idf=$(mktemp); nvme id-ctrl "$dev" > "$idf" || fail "nvme id-ctrl $dev failed"
grep -q "^sn *: rfl-nvme0 *$" "$idf" || fail "nvme id-ctrl does not report serial rfl-nvme0"
# qemu-test/vm passes the firmware revision QEMU reports (its version).
fw=$(echo "${RFL_VM_NVME%% *}" | cut -d, -f7)
[ -n "$fw" ] || fail "RFL_VM_NVME has no firmware revision: start the guest with qemu-test/vm --nvme"
grep -q "^fr *: $fw *$" "$idf" || fail "nvme id-ctrl firmware revision '$(sed -n 's/^fr *: //p' "$idf")', QEMU reports '$fw'"
[ "$(sed 's/ *$//' < "/sys/class/nvme/$ctrl/firmware_rev")" = "$fw" ] || fail "sysfs firmware_rev differs from QEMU's '$fw'"
rm -f "$idf"
log "identify: $ctrl serial=$serial model='$model' firmware=$fw size=$size"

tmp=$(mktemp -d)
dd if=/dev/urandom of="$tmp/data" bs=1M count=8 status=none
dd if="$tmp/data" of="$dev" bs=1M seek=100 oflag=direct conv=fsync status=none || fail "write to $dev failed"
dd if="$dev" of="$tmp/back" bs=1M skip=100 count=8 iflag=direct status=none || fail "read from $dev failed"
[ "$(sha256sum < "$tmp/data")" = "$(sha256sum < "$tmp/back")" ] || fail "8 MiB read back differ from what was written"
log "8 MiB written with O_DIRECT and read back: identical"

fio --name=verify --filename="$dev" --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio \
    --direct=1 --size=32M --offset=256M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --output-format=terse >"$tmp/fio.out" 2>&1 || { cat "$tmp/fio.out"; fail "fio verify failed"; }
log "fio randwrite + crc32c verify of 32 MiB: no errors"

mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 failed"
mkdir -p "$tmp/mnt"
mount "$dev" "$tmp/mnt" || fail "mount failed"
for i in 1 2 3; do
    dd if=/dev/urandom of="$tmp/mnt/f$i" bs=64k count=$((i * 16)) status=none || fail "writing f$i on ext4 failed"
done
(cd "$tmp/mnt" && sha256sum f1 f2 f3) > "$tmp/sums"
umount "$tmp/mnt" || fail "umount failed"
fsck.ext4 -f -n "$dev" >"$tmp/fsck.out" 2>&1 || { cat "$tmp/fsck.out"; fail "fsck found problems"; }
mount "$dev" "$tmp/mnt" || fail "second mount failed"
(cd "$tmp/mnt" && sha256sum -c --quiet "$tmp/sums") || fail "file checksums differ after remount"
umount "$tmp/mnt" || fail "second umount failed"
log "ext4: mkfs, 3 files, umount, clean fsck, checksums match after remount"

rmmod nvme || fail "rmmod nvme failed"
[ ! -e "$dev" ] || fail "$dev still present after rmmod"
rm -rf "$tmp"
pass
