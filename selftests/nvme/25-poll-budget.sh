#!/usr/bin/env bash
# A small completion budget still completes everything, and is kept: rnvme
# with poll_budget=1 (one completion per irq_poll round, then the queue is
# put back at the end of the softirq's list) runs fio random writes at QD32
# on every CPU with crc32c verify, no error, every I/O queue took
# interrupts, and no round handled more than one completion
# (rnvme_poll_round_max is 1). The same load with the default budget (64)
# has rounds of more than one: the counter can tell a kept budget from an
# ignored one. (Out-of-range budgets are refused: 22-module-params.) The C
# driver, which has no such parameter, runs the same load as the oracle.
. "$(dirname "$0")/nvme-lib"
bdf=${NVME_BDFS[0]} ncpu=$(nproc)
round_max() { # the controller's rnvme_poll_round_max
    local v
    read -r v < "/sys/bus/pci/devices/$bdf/rnvme_poll_round_max" || fail "rnvme has no rnvme_poll_round_max for $bdf"
    [[ "$v" =~ ^[0-9]+$ ]] || fail "rnvme_poll_round_max of $bdf is '$v'"
    echo "$v"
}
load() { # load NAME: fio QD32 on every CPU with crc32c verify
    run_fio "$1" --filename="$DISK" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite \
        --iodepth=32 --numjobs="$ncpu" --size=8M --offset=1000M --offset_increment=8M \
        --cpus_allowed=0-$((ncpu - 1)) --cpus_allowed_policy=split \
        --verify=crc32c --do_verify=1 --verify_fatal=1
}
if [ "$DRV" = rnvme ]; then
    # The control first: with the default budget, rounds handle more than one.
    nvme_load
    load default
    m=$(round_max)
    [ "$m" -gt 1 ] || fail "with the default poll_budget no irq_poll round handled more than $m completion(s) at QD32 x $ncpu: the counter cannot show a budget being kept"
    log "default poll_budget $(cat /sys/module/rnvme/parameters/poll_budget): the largest irq_poll round handled $m completions"
    nvme_unload
    nvme_load poll_budget=1
    [ "$(cat /sys/module/rnvme/parameters/poll_budget)" = 1 ] || fail "rnvme poll_budget is not 1 after loading with it"
else
    nvme_load
fi
nvme_io_irqs "$bdf" > "$NVME_TMP/irq.before"
[ -s "$NVME_TMP/irq.before" ] || fail "no I/O queue interrupts of $bdf in /proc/interrupts"
load budget
issued=$(fio_issued "$NVME_TMP/fio-budget.out")
nvme_io_irqs "$bdf" > "$NVME_TMP/irq.after"
while read -r irq before; do
    after=$(awk -v q="$irq" '$1 == q {print $2}' "$NVME_TMP/irq.after")
    [ -n "$after" ] || fail "I/O queue interrupt $irq disappeared"
    [ "$after" -gt "$before" ] || fail "I/O queue interrupt $irq did not fire during the run"
done < "$NVME_TMP/irq.before"
what="rnvme poll_budget=1"; [ "$DRV" = nvme ] && what="C nvme (no budget parameter)"
if [ "$DRV" = rnvme ]; then
    m=$(round_max)
    [ "$m" = 1 ] || fail "poll_budget=1, but the largest irq_poll round handled $m completion(s)"
    what+=" (the largest irq_poll round handled 1 completion)"
fi
log "$what: fio QD32 x $ncpu jobs, $issued I/Os with crc32c verify: no errors"
pass
