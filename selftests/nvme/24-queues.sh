#!/usr/bin/env bash
# rfl-timeout: 1500
# I/O queue count and depth, seen from the controller (QEMU's trace of the
# Create I/O Submission/Completion Queue commands, with their sizes) and
# from the block layer (/sys/block/X/mq/*, with each hardware queue's
# nr_tags) and the interrupts (/proc/interrupts), on every controller:
# * default: one interrupt-driven queue per CPU (up to what the controller
#   grants: qemu-test/vm --nvme=...,qpairs=N), depth 256 (rnvme) / 1024
#   (C);
# * io_queue_depth=64: every queue has 64 entries (qsize 63, 63 tags: one
#   slot stays free so a full queue is not mistaken for an empty one);
#   io_queue_depth=4095: capped at QEMU's CAP.MQES+1 = 2048 entries;
# * poll_queues=1: one more queue, without interrupts (CQ ien=0); when the
#   controller grants fewer queues than asked, rnvme keeps its interrupt
#   queues first, the C driver keeps the poll queue and at least one
#   interrupt queue;
# * rnvme max_io_queues=1: one interrupt-driven queue.
. "$(dirname "$0")/nvme-lib"
ncpu=$(nproc) nctrl=${#NVME_BDFS[@]}
[ "$ncpu" -ge 2 ] || fail "needs at least 2 CPUs to tell max_io_queues=1 from the default (qemu-test/vm --cpus 2)"
# expect CTRL MAXIRQ POLL: sets E_IRQ and E_POLL, the queues $DRV creates on
# controller CTRL when it wants MAXIRQ interrupt-driven and POLL polled ones.
expect() {
    local granted total
    granted=$(nvme_spec "$1" 8); [ "${granted:-0}" -gt 0 ] || granted=64
    if [ "$DRV" = rnvme ]; then
        E_IRQ=$(( $2 < granted ? $2 : granted ))
        E_POLL=$(( $3 < granted - E_IRQ ? $3 : granted - E_IRQ ))
    else
        total=$(( $2 + $3 < granted ? $2 + $3 : granted ))
        E_POLL=$(( $3 < total - 1 ? $3 : total - 1 ))
        E_IRQ=$(( total - E_POLL ))
    fi
}
# check LABEL MAXIRQ POLL ENTRIES PARAMS...: loads the driver with PARAMS and
# checks every view of the queues.
check() {
    local label=$1 maxirq=$2 poll=$3 entries=$4; shift 4
    local i sum=0 sumpoll=0 sqs cqs bad polled irqs mq tags d b
    qtrace_mark
    nvme_load "$@"
    qtrace_since > "$NVME_TMP/qtrace"
    for i in "${!NVME_BDFS[@]}"; do
        expect "$i" "$maxirq" "$poll"
        sum=$((sum + E_IRQ + E_POLL)) sumpoll=$((sumpoll + E_POLL))
        read -ra d <<< "${CTRL_DISKS[i]}"; b=$(basename "${d[0]}")
        irqs=$(nvme_io_irqs "${NVME_BDFS[$i]}" | wc -l)
        [ "$irqs" = "$E_IRQ" ] || fail "$label: ${NVME_BDFS[$i]} has $irqs I/O queue interrupts, want $E_IRQ"
        mq=$(find /sys/block/"$b"/mq -mindepth 1 -maxdepth 1 -type d | wc -l)
        [ "$mq" = $((E_IRQ + E_POLL)) ] || fail "$label: ${d[0]} has $mq blk-mq hardware queues, want $((E_IRQ + E_POLL))"
        tags=$(cat /sys/block/"$b"/mq/*/nr_tags | sort -u | tr '\n' ' ')
        [ "$tags" = "$((entries - 1)) " ] || fail "$label: ${d[0]} hardware queues have nr_tags '$tags', want $((entries - 1))"
        log "  $label: ${NVME_BDFS[$i]} ${d[0]}: $E_IRQ interrupt-driven + $E_POLL polled queue(s), $((entries - 1)) tags each"
    done
    # Created I/O queues across all controllers, as QEMU saw them.
    sqs=$(grep -c '^pci_nvme_create_sq ' "$NVME_TMP/qtrace")
    cqs=$(grep -c '^pci_nvme_create_cq ' "$NVME_TMP/qtrace")
    [ "$sqs" = "$sum" ] && [ "$cqs" = "$sum" ] ||
        fail "$label: QEMU created $sqs SQs and $cqs CQs on $nctrl controllers, want $sum"
    bad=$(grep -E '^pci_nvme_create_[sc]q ' "$NVME_TMP/qtrace" | grep -vc "qsize=$((entries - 1)),")
    [ "$bad" = 0 ] || { grep -E '^pci_nvme_create_[sc]q ' "$NVME_TMP/qtrace" | head -4 | sed 's/^/  qemu: /'
                        fail "$label: $bad queue(s) not created with $entries entries (qsize=$((entries - 1)))"; }
    polled=$(grep -c '^pci_nvme_create_cq .*ien=0$' "$NVME_TMP/qtrace")
    [ "$polled" = "$sumpoll" ] || fail "$label: QEMU created $polled CQs without interrupts, want $sumpoll"
    run_fio "$label" --filename="$DISK" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite \
        --iodepth=32 --numjobs="$ncpu" --size=2M --offset=900M --offset_increment=2M \
        --verify=crc32c --do_verify=1 --verify_fatal=1
    log "$label: QEMU created $sum queue pair(s) of $entries entries ($sumpoll polled) on $nctrl controllers; fio QD32 verify ok"
}
default_depth=256; [ "$DRV" = nvme ] && default_depth=1024
check default "$ncpu" 0 "$default_depth"
check depth64 "$ncpu" 0 64 io_queue_depth=64
check depth4095 "$ncpu" 0 2048 io_queue_depth=4095
check poll1 "$ncpu" 1 "$default_depth" poll_queues=1
if [ "$DRV" = rnvme ]; then
    check max1 1 0 "$default_depth" max_io_queues=1
    check max1-depth64-poll1 1 1 64 max_io_queues=1 io_queue_depth=64 poll_queues=1
else
    log "the C nvme has no max_io_queues (rnvme only)"
fi
pass
