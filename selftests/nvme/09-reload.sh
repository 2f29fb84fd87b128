#!/usr/bin/env bash
# rmmod/insmod x20: each time every controller binds again, its disks come
# back, and data written before the loop reads back unchanged; the module
# unloads cleanly with the disks gone.
. "$(dirname "$0")/nvme-lib"
nvme_load
dd if=/dev/urandom of="$NVME_TMP/data" bs=64k count=16 status=none
dd if="$NVME_TMP/data" of="$DISK" bs=64k seek=3000 oflag=direct conv=fsync status=none || fail "write failed"
start=$(date +%s)
for n in $(seq 1 20); do
    nvme_unload
    for d in "${DISKS[@]}"; do [ ! -e "$d" ] || fail "round $n: $d still present after rmmod $DRV"; done
    nvme_load
    dd if="$DISK" of="$NVME_TMP/back" bs=64k skip=3000 count=16 iflag=direct status=none ||
        fail "round $n: read after reload failed"
    cmp -s "$NVME_TMP/data" "$NVME_TMP/back" || fail "round $n: data differ after reload"
done
log "20 x rmmod + load of $DRV: disks gone after each rmmod, back with the data after each load ($(( $(date +%s) - start )) s)"
pass
