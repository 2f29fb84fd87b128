#!/usr/bin/env bash
# Poll queues: with poll_queues=1 the disk supports polling (queue/io_poll is
# 1, blk-mq debugfs shows a hctx of type "poll"), and fio io_uring --hipri
# (IOPOLL) completes with crc32c verify while the interrupt-driven queues take
# (almost) no interrupts: the completions were reaped by polling.
. "$(dirname "$0")/nvme-lib"
nvme_load poll_queues=1
dev=$DISK b=$(basename "$DISK") bdf=${NVME_BDFS[0]}
[ "$(cat "/sys/block/$b/queue/io_poll")" = 1 ] || fail "$dev queue/io_poll is not 1 with poll_queues=1"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug || fail "cannot mount debugfs"
types=$(cat /sys/kernel/debug/block/"$b"/hctx*/type 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ')
echo "$types" | grep -q poll || fail "no blk-mq hardware queue of type poll on $dev (hctx types:$types)"
log "$dev: io_poll=1, hardware queues by type:$types"

irqs() { nvme_io_irqs "$bdf" | awk '{s += $2} END {print s + 0}'; }
i0=$(irqs)
run_fio hipri --filename="$dev" --ioengine=io_uring --hipri --direct=1 --bs=4k --iodepth=1 \
    --rw=randwrite --size=8M --offset=400M --verify=crc32c --do_verify=1 --verify_fatal=1
i1=$(irqs)
ios=$((8 * 1024 / 4 * 2))
log "fio io_uring --hipri QD1: 2048 writes + 2048 verify reads ok; I/O queue interrupts +$((i1 - i0))"
[ $((i1 - i0)) -lt $((ios / 20)) ] ||
    fail "$((i1 - i0)) interrupts for $ios polled I/Os: the hipri I/O did not go through the poll queue"
pass
