#!/usr/bin/env bash
# Flush: QEMU's NVMe namespace has a volatile write cache, so the disk must
# say "write back" and fsync/sync must reach the device as flush requests
# (the flush counter in /sys/block/X/stat moves) without any error, and
# the controller got (at least) as many Flush commands (QEMU's trace).
. "$(dirname "$0")/nvme-lib"
nvme_load
dev=$DISK b=$(basename "$DISK")
wc=$(cat "/sys/block/$b/queue/write_cache")
[ "$wc" = "write back" ] || fail "$dev queue/write_cache is '$wc': the controller has a volatile write cache (VWC)"
f0=$(disk_flushes "$dev")
qtrace_mark
run_fio fsync --filename="$dev" --ioengine=psync --direct=1 --bs=4k --rw=randwrite \
    --size=1M --offset=300M --fsync=1 --verify=crc32c --do_verify=1 --verify_fatal=1
f1=$(disk_flushes "$dev")
[ $((f1 - f0)) -ge 200 ] || fail "256 writes with fsync=1 produced only $((f1 - f0)) flush requests"
qflush=$(qtrace_count pci_nvme_io_cmd "opc 0x0 ")
[ "$qflush" -ge $((f1 - f0)) ] || fail "the block layer completed $((f1 - f0)) flushes, QEMU got only $qflush Flush commands"
log "fio 256 x 4k writes with fsync after each: $((f1 - f0)) flushes completed ($qflush Flush commands at QEMU), verify ok"
dd if=/dev/urandom of="$dev" bs=64k count=16 seek=5000 conv=fsync status=none || fail "buffered write + fsync failed"
sync || fail "sync failed"
f2=$(disk_flushes "$dev")
[ "$f2" -gt "$f1" ] || fail "buffered write + fsync sent no flush ($f1 -> $f2)"
log "buffered 1 MiB write + fsync + sync: $((f2 - f1)) more flush(es), no error"
pass
