#!/usr/bin/env bash
# Discard (NVMe Dataset Management, deallocate): blkdiscard a written range,
# read it back as zeroes (QEMU's file backend, discard=unmap, returns zeroes
# for deallocated blocks), and the data around the range is untouched.
# QEMU's trace shows it reached the controller as Dataset Management with
# deallocate, not as Write Zeroes or writes (which would also read zeroes).
. "$(dirname "$0")/nvme-lib"
require_cmd blkdiscard
nvme_load
dev=$DISK b=$(basename "$DISK")
max=$(cat "/sys/block/$b/queue/discard_max_bytes")
[ "$max" -gt 0 ] || fail "$dev advertises no discard (queue/discard_max_bytes = 0)"
mib=$((1024 * 1024))
dd if=/dev/urandom of="$NVME_TMP/data" bs=1M count=12 status=none
dd if="$NVME_TMP/data" of="$dev" bs=1M seek=200 oflag=direct conv=fsync status=none || fail "write failed"
before=$(awk '{print $12}' "/sys/block/$b/stat")
udevadm settle -t 10 2>/dev/null
qtrace_mark
blkdiscard -o $((202 * mib)) -l $((8 * mib)) "$dev" || fail "blkdiscard of 8 MiB at 202 MiB failed"
after=$(awk '{print $12}' "/sys/block/$b/stat")
[ "$after" -gt "$before" ] || fail "the disk's discard counter did not move ($before -> $after)"
log "blkdiscard 8 MiB at 202 MiB: ok, $((after - before)) discard request(s) completed"
dsm=$(qtrace_count pci_nvme_io_cmd "opc 0x9 ") dealloc=$(qtrace_count pci_nvme_dsm_deallocate)
other=$(qtrace_count pci_nvme_io_cmd "opc 0x[18] ")
log "QEMU: $dsm Dataset Management command(s), $dealloc range(s) deallocated, $other write/write-zeroes"
[ "$dsm" -ge 1 ] && [ "$dealloc" -ge 1 ] || fail "the controller got no Dataset Management deallocate"
[ "$other" = 0 ] || fail "the controller got $other write or Write Zeroes command(s) for a discard"
dd if="$dev" of="$NVME_TMP/back" bs=1M skip=200 count=12 iflag=direct status=none || fail "read back failed"
cmp -n $((8 * mib)) -i $((2 * mib)) "$NVME_TMP/back" /dev/zero ||
    fail "the discarded range does not read back as zeroes"
cmp -n $((2 * mib)) "$NVME_TMP/back" "$NVME_TMP/data" || fail "the 2 MiB before the range changed"
cmp -n $((2 * mib)) -i $((10 * mib)) "$NVME_TMP/back" "$NVME_TMP/data" || fail "the 2 MiB after the range changed"
log "discarded range reads zeroes; the 2 MiB either side are unchanged"
pass
