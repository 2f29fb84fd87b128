#!/usr/bin/env bash
# Controller reset under I/O: 2-4 user-triggered resets while fio writes
# random 4k blocks at QD16 (crc32c) and verifies them as it goes: no I/O
# error and no verify error, and the controller is usable afterwards.
# C nvme: /sys/class/nvme/nvmeX/reset_controller;
# rnvme: /sys/bus/pci/devices/BDF/rnvme_reset.
. "$(dirname "$0")/nvme-lib"
nvme_load
bdf=${NVME_BDFS[0]} dev=$DISK
if [ "$DRV" = nvme ]; then
    ctrl=$(basename "$(ls -d /sys/bus/pci/devices/"$bdf"/nvme/nvme* | head -1)")
    reset=/sys/class/nvme/$ctrl/reset_controller
else
    reset=/sys/bus/pci/devices/$bdf/rnvme_reset
fi
[ -e "$reset" ] || fail "$DRV has no user-triggered controller reset: $reset does not exist"
kmsg_mark
# verify_backlog: blocks are read back and checked while writing goes on, so
# resets hit both writes and verify reads.
fio --name=reset --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite \
    --iodepth=16 --size=64M --offset=512M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --verify_backlog=512 --verify_dump=1 > "$NVME_TMP/fio.out" 2>&1 &
fio_pid=$!
sleep 0.5
resets=0
while [ $resets -lt 4 ] && kill -0 "$fio_pid" 2>/dev/null; do
    echo 1 > "$reset" || { kill "$fio_pid"; wait "$fio_pid"; fail "writing 1 to $reset failed"; }
    resets=$((resets + 1))
    log "reset $resets triggered through $reset while fio runs"
    sleep 0.7
done
wait "$fio_pid"; st=$?
if [ "$st" != 0 ]; then
    sed 's/^/  fio: /' "$NVME_TMP/fio.out" | tail -30
    fail "fio exited $st across the controller resets (I/O or verify error)"
fi
grep -q "err= 0" "$NVME_TMP/fio.out" || fail "fio reported errors: $(grep -o 'err=[^,]*' "$NVME_TMP/fio.out" | head -1)"
[ $resets -ge 2 ] || fail "fio ended before a second reset: only $resets reset(s) under I/O"
log "fio 64 MiB randwrite QD16 + crc32c verify (backlog) across $resets resets: no errors"
kmsg_since | grep -iE "reset|$bdf" | tail -6 | sed 's/^/  dmesg: /'
run_fio after --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=8 \
    --size=2M --offset=600M --verify=crc32c --do_verify=1 --verify_fatal=1
log "I/O after the resets: ok"
pass
