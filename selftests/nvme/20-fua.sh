#!/usr/bin/env bash
# FUA (Force Unit Access): the disk advertises it (queue/fua = 1, with a
# volatile write cache), and O_DSYNC direct writes (fio libaio --sync=dsync,
# which the block layer turns into REQ_FUA writes without an fsync) complete
# and verify with no flush at all: the block layer relied on the driver's
# FUA instead of adding a flush after each write (it does that for a disk
# without FUA). That the FUA bit was in the commands sent to the controller:
# QEMU neither uses nor traces it, so for rnvme its rnvme_fua_writes counter
# (write commands submitted with the bit set) must grow by exactly the
# number of writes, and not at all for plain writes (the control). The C
# driver has no such counter: for it the block-layer side is checked.
. "$(dirname "$0")/nvme-lib"
nvme_load
dev=$DISK b=$(basename "$DISK") bdf=${NVME_BDFS[0]}
[ "$(cat "/sys/block/$b/queue/write_cache")" = "write back" ] ||
    fail "$dev queue/write_cache is not 'write back': QEMU's namespace has a volatile write cache"
[ "$(cat "/sys/block/$b/queue/fua")" = 1 ] || fail "$dev queue/fua is $(cat "/sys/block/$b/queue/fua"), want 1"
fua_file=/sys/bus/pci/devices/$bdf/rnvme_fua_writes
[ "$DRV" = nvme ] || [ -r "$fua_file" ] || fail "rnvme has no FUA counter: $fua_file does not exist"
fua_writes() { if [ "$DRV" = rnvme ]; then cat "$fua_file"; else echo 0; fi; }
common=(--filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=4
        --size=1M --verify=crc32c --do_verify=1 --verify_fatal=1)

f0=$(disk_flushes "$dev") u0=$(fua_writes)
run_fio dsync "${common[@]}" --offset=800M --sync=dsync
f1=$(disk_flushes "$dev") u1=$(fua_writes)
writes=$(sed -n 's/.*issued rwts: total=[0-9]*,\([0-9]*\),.*/\1/p' "$NVME_TMP/fio-dsync.out")
[ "${writes:-0}" -gt 0 ] || fail "fio issued no writes"
log "fio $writes O_DSYNC 4k writes + verify: ok; flushes +$((f1 - f0))"
[ "$f1" = "$f0" ] ||
    fail "$((f1 - f0)) flush(es) for $writes O_DSYNC writes: the block layer emulated FUA with flushes"
if [ "$DRV" = rnvme ]; then
    log "rnvme_fua_writes $u0 -> $u1"
    [ $((u1 - u0)) = "$writes" ] || fail "rnvme sent $((u1 - u0)) write(s) with FUA for $writes O_DSYNC writes"
fi

if [ "$DRV" = rnvme ]; then
    u2=$(fua_writes)
    run_fio plain "${common[@]}" --offset=801M
    u3=$(fua_writes)
    [ $((u3 - u2)) = 0 ] || fail "rnvme set FUA on $((u3 - u2)) plain (not O_DSYNC) write(s)"
    log "plain writes: no FUA (rnvme_fua_writes +$((u3 - u2)))"
fi
pass
