#!/usr/bin/env bash
# Controller reset under I/O: 2-4 user-triggered resets while fio writes
# random 4k blocks at QD16 (crc32c) and verifies them as it goes: no I/O
# error and no verify error, and the controller is usable afterwards.
# That each reset happened is proven from the controller's side: QEMU's
# trace shows CC.EN cleared then set again once per reset, the I/O queues
# created again after each, and I/O commands both before and after each
# reset; and from the driver's side: rnvme's rnvme_resets counter and its
# "controller reset done" lines go up by exactly the number of resets; the
# C driver's controller state is "live" again after each (synchronous) reset.
# Requeueing is not asserted here: QEMU's controller completes the commands
# it holds when CC.EN clears (its queue teardown waits for their AIO), so a
# reset of a healthy controller leaves nothing to requeue (0 in each of 17
# logged resets); 12-timeout, where throttled reads are still held at the
# reset, is where rnvme must requeue.
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
    counter=/sys/bus/pci/devices/$bdf/rnvme_resets
    [ -r "$counter" ] || fail "rnvme has no reset counter: $counter does not exist"
    count0=$(cat "$counter")
fi
[ -e "$reset" ] || fail "$DRV has no user-triggered controller reset: $reset does not exist"
nq=$(ls -d /sys/block/"$(basename "$dev")"/mq/* | wc -l)
kmsg_mark
qtrace_mark
# verify_backlog: blocks are read back and checked while writing goes on, so
# resets hit both writes and verify reads.
fio --name=reset --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite \
    --iodepth=16 --size=64M --offset=512M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --verify_backlog=512 --verify_dump=1 > "$NVME_TMP/fio.out" 2>&1 &
fio_pid=$!
# Waits until QEMU got an I/O command after byte $1 of its trace (fio's I/O
# is flowing), so that every reset really happens under I/O.
wait_io_after() {
    local i
    for ((i = 0; i < 300; i++)); do
        tail -c +"$(($1 + 1))" "$RFL_VM_NVME_TRACE" | grep -q '^pci_nvme_io_cmd ' && return 0
        kill -0 "$fio_pid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
resets=0 since=$QTRACE_MARK
while [ $resets -lt 4 ] && wait_io_after "$since"; do
    echo 1 > "$reset" || { kill "$fio_pid"; wait "$fio_pid"; fail "writing 1 to $reset failed"; }
    # Both drivers' reset files return when the reset is done.
    since=$(stat -c %s "$RFL_VM_NVME_TRACE")
    resets=$((resets + 1))
    if [ "$DRV" = nvme ]; then
        state=$(cat "/sys/class/nvme/$ctrl/state")
        [ "$state" = live ] || { kill "$fio_pid"; wait "$fio_pid"; fail "$ctrl state '$state' after reset $resets, want live"; }
    fi
    log "reset $resets triggered through $reset while fio runs"
done
wait "$fio_pid"; st=$?
if [ "$st" != 0 ]; then
    sed 's/^/  fio: /' "$NVME_TMP/fio.out" | tail -30
    fail "fio exited $st across the controller resets (I/O or verify error)"
fi
fio_check_errors "$NVME_TMP/fio.out" reset
[ $resets -ge 2 ] || fail "fio ended before a second reset: only $resets reset(s) under I/O"
log "fio 64 MiB randwrite QD16 + crc32c verify (backlog) across $resets resets: no errors"

qtrace_check_resets "$nq" "$resets"

if [ "$DRV" = rnvme ]; then
    count1=$(cat "$counter")
    [ $((count1 - count0)) = "$resets" ] || fail "rnvme_resets went $count0 -> $count1 for $resets resets"
    done_lines=$(kmsg_since | grep -cF "$bdf: controller reset done")
    [ "$done_lines" = "$resets" ] ||
        fail "$done_lines 'controller reset done' line(s) in dmesg for $resets resets"
    requeued=$(kmsg_since | sed -n "s/.*$bdf: controller reset done; \([0-9]*\) request(s) requeued.*/\1/p" | awk '{ s += $1 } END { print s + 0 }')
    log "rnvme: rnvme_resets $count0 -> $count1, $done_lines 'controller reset done' lines, $requeued request(s) requeued in all"
fi
kmsg_since | grep -iE "reset|$bdf" | tail -6 | sed 's/^/  dmesg: /'
run_fio after --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=8 \
    --size=2M --offset=600M --verify=crc32c --do_verify=1 --verify_fatal=1
log "I/O after the resets: ok"
pass
