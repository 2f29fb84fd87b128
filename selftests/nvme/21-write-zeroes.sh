#!/usr/bin/env bash
# Write Zeroes: the disk advertises it (queue/write_zeroes_max_bytes > 0);
# blkdiscard -z (BLKZEROOUT) of 8 MiB inside 12 MiB of random data reads
# back as zeroes with the data around it untouched, and QEMU's trace shows
# the controller got Write Zeroes commands (opcode 0x08) and no plain write
# or deallocate in that time: the zeroes were not written as data.
. "$(dirname "$0")/nvme-lib"
require_cmd blkdiscard
nvme_load
dev=$DISK b=$(basename "$DISK")
max=$(cat "/sys/block/$b/queue/write_zeroes_max_bytes")
[ "$max" -gt 0 ] || fail "$dev advertises no Write Zeroes (queue/write_zeroes_max_bytes = 0)"
mib=$((1024 * 1024))
dd if=/dev/urandom of="$NVME_TMP/data" bs=1M count=12 status=none
dd if="$NVME_TMP/data" of="$dev" bs=1M seek=220 oflag=direct conv=fsync status=none || fail "write failed"
udevadm settle -t 10 2>/dev/null
qtrace_mark
blkdiscard -z -o $((222 * mib)) -l $((8 * mib)) "$dev" || fail "blkdiscard -z of 8 MiB at 222 MiB failed"
wz=$(qtrace_count pci_nvme_io_cmd "opc 0x8 ")
wr=$(qtrace_count pci_nvme_io_cmd "opc 0x1 ")
dsm=$(qtrace_count pci_nvme_io_cmd "opc 0x9 ")
log "blkdiscard -z 8 MiB (write_zeroes_max_bytes $max): QEMU got $wz Write Zeroes, $wr writes, $dsm DSM"
[ "$wz" -ge 1 ] || fail "the controller got no Write Zeroes command"
[ "$wr" = 0 ] || fail "the controller got $wr plain write(s) during the zero-out"
[ "$dsm" = 0 ] || fail "the controller got $dsm Dataset Management (deallocate) command(s) during the zero-out"
dd if="$dev" of="$NVME_TMP/back" bs=1M skip=220 count=12 iflag=direct status=none || fail "read back failed"
cmp -n $((8 * mib)) -i $((2 * mib)):0 "$NVME_TMP/back" /dev/zero ||
    fail "the zeroed range does not read back as zeroes"
cmp -n $((2 * mib)) "$NVME_TMP/back" "$NVME_TMP/data" || fail "the 2 MiB before the range changed"
cmp -n $((2 * mib)) -i $((10 * mib)) "$NVME_TMP/back" "$NVME_TMP/data" || fail "the 2 MiB after the range changed"
log "zeroed range reads zeroes; the 2 MiB either side are unchanged"
pass
