#!/usr/bin/env bash
# fio verify (crc32c; random writes, then every block read back and checked)
# at QD1 with one job, and at QD32 with one job per CPU (each job pinned to
# its own CPU), and every I/O queue of the controller carried requests: the
# per-queue interrupt counts in /proc/interrupts all increased; there is one
# such queue per CPU (fewer if the controller grants fewer).
. "$(dirname "$0")/nvme-lib"
nvme_load
bdf=${NVME_BDFS[0]} dev=$DISK ncpu=$(nproc)
common=(--filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite
        --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=1)

run_fio qd1 "${common[@]}" --iodepth=1 --size=4M --offset=64M
log "QD1, 1 job: 4 MiB random writes + crc32c verify: no errors"

nvme_io_irqs "$bdf" > "$NVME_TMP/irq.before"
nq=$(wc -l < "$NVME_TMP/irq.before")
[ "$nq" -ge 1 ] || fail "no I/O queue interrupts of $bdf in /proc/interrupts"
run_fio qd32 "${common[@]}" --iodepth=32 --numjobs="$ncpu" --size=16M --offset=128M \
    --offset_increment=16M --cpus_allowed=0-$((ncpu - 1)) --cpus_allowed_policy=split
log "QD32, $ncpu jobs (one per CPU): $((ncpu * 16)) MiB random writes + crc32c verify: no errors"
nvme_io_irqs "$bdf" > "$NVME_TMP/irq.after"
idle=0
while read -r irq before; do
    after=$(awk -v q="$irq" '$1 == q {print $2}' "$NVME_TMP/irq.after")
    log "  I/O queue interrupt $irq: $before -> $after (+$((after - before)))"
    [ "$after" -gt "$before" ] || idle=$((idle + 1))
done < "$NVME_TMP/irq.before"
# One per CPU, up to what the controller grants (qemu-test/vm --nvme=...,qpairs=N).
granted=$(nvme_granted 0) want=$ncpu
[ "$granted" -ge "$ncpu" ] || want=$granted
[ "$nq" = "$want" ] || fail "$nq interrupt-driven I/O queue(s) for $ncpu CPUs on a controller granting $granted: expected $want"
[ "$idle" = 0 ] || fail "$idle of $nq I/O queues carried no request during the QD32 run"
log "all $nq I/O queues carried requests"
pass
