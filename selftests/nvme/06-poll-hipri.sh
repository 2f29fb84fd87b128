#!/usr/bin/env bash
# Poll queues: with poll_queues=1 the disk supports polling (queue/io_poll is
# 1, blk-mq debugfs shows a hctx of type "poll"), and fio io_uring --hipri
# (IOPOLL) completes with crc32c verify while the interrupt-driven queues take
# (almost) no interrupts: the completions were reaped by polling; QEMU's
# trace shows the reads and writes arriving on the poll queue (the last
# queue, after one interrupt-driven queue per CPU).
. "$(dirname "$0")/nvme-lib"
nvme_load poll_queues=1
dev=$DISK b=$(basename "$DISK") bdf=${NVME_BDFS[0]}
[ "$(cat "/sys/block/$b/queue/io_poll")" = 1 ] || fail "$dev queue/io_poll is not 1 with poll_queues=1"
mq=$(find /sys/block/"$b"/mq -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$mq" = $(($(nproc) + 1)) ] || fail "$dev has $mq hardware queues, want one per CPU + 1 poll queue"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug || fail "cannot mount debugfs"
if [ -d /sys/kernel/debug/block/"$b" ]; then
    types=$(cat /sys/kernel/debug/block/"$b"/hctx*/type 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ')
    echo "$types" | grep -q poll || fail "no blk-mq hardware queue of type poll on $dev (hctx types:$types)"
else
    # CONFIG_BLK_DEBUG_FS is off (the debug flavour): the poll queue's use
    # is checked on the controller's side below.
    types=" (no blk-mq debugfs)"
fi
log "$dev: io_poll=1, $mq hardware queues, by type:$types"

irqs() {
    local l
    l=$(nvme_io_irqs "$bdf")
    [ -n "$l" ] || fail "no I/O queue interrupts of $bdf in /proc/interrupts"
    echo "$l" | awk '{s += $2} END {print s}'
}
i0=$(irqs)
qtrace_mark
run_fio hipri --filename="$dev" --ioengine=io_uring --hipri --direct=1 --bs=4k --iodepth=1 \
    --rw=randwrite --size=8M --offset=400M --verify=crc32c --do_verify=1 --verify_fatal=1
i1=$(irqs)
ios=$((8 * 1024 / 4 * 2))
log "fio io_uring --hipri QD1: 2048 writes + 2048 verify reads ok; I/O queue interrupts +$((i1 - i0))"
[ $((i1 - i0)) -lt $((ios / 20)) ] ||
    fail "$((i1 - i0)) interrupts for $ios polled I/Os: the hipri I/O did not go through the poll queue"
pq=$(($(nproc) + 1))
onpoll=$(qtrace_count pci_nvme_io_cmd "sqid $pq opc 0x[12] ")
all=$(qtrace_count pci_nvme_io_cmd "opc 0x[12] ")
log "QEMU: $onpoll of $all reads/writes on queue $pq (the poll queue)"
[ "$onpoll" -ge "$ios" ] || fail "only $onpoll of the $ios polled I/Os reached QEMU on the poll queue $pq"
pass
