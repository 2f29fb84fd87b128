#!/usr/bin/env bash
# A small completion budget still completes everything: rnvme with
# poll_budget=1 (one completion per irq_poll round, then the queue is put
# back at the end of the softirq's list) runs fio random writes at QD32 on
# every CPU with crc32c verify, no error, and every I/O queue took
# interrupts. (Out-of-range budgets are refused: 22-module-params.) The C
# driver, which has no such parameter, runs the same load as the oracle.
. "$(dirname "$0")/nvme-lib"
if [ "$DRV" = rnvme ]; then
    nvme_load poll_budget=1
    [ "$(cat /sys/module/rnvme/parameters/poll_budget)" = 1 ] || fail "rnvme poll_budget is not 1 after loading with it"
else
    nvme_load
fi
bdf=${NVME_BDFS[0]} ncpu=$(nproc)
nvme_io_irqs "$bdf" > "$NVME_TMP/irq.before"
[ -s "$NVME_TMP/irq.before" ] || fail "no I/O queue interrupts of $bdf in /proc/interrupts"
run_fio budget --filename="$DISK" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite \
    --iodepth=32 --numjobs="$ncpu" --size=8M --offset=1000M --offset_increment=8M \
    --cpus_allowed=0-$((ncpu - 1)) --cpus_allowed_policy=split \
    --verify=crc32c --do_verify=1 --verify_fatal=1
issued=$(fio_issued "$NVME_TMP/fio-budget.out")
nvme_io_irqs "$bdf" > "$NVME_TMP/irq.after"
while read -r irq before; do
    after=$(awk -v q="$irq" '$1 == q {print $2}' "$NVME_TMP/irq.after")
    [ -n "$after" ] || fail "I/O queue interrupt $irq disappeared"
    [ "$after" -gt "$before" ] || fail "I/O queue interrupt $irq did not fire during the run"
done < "$NVME_TMP/irq.before"
what="rnvme poll_budget=1"; [ "$DRV" = nvme ] && what="C nvme (no budget parameter)"
log "$what: fio QD32 x $ncpu jobs, $issued I/Os with crc32c verify: no errors"
pass
