#!/usr/bin/env bash
# rfl-timeout: 900
# Controller resets under multi-job I/O across interrupt and poll queues:
# with poll_queues=1, fio runs two libaio jobs (interrupt-driven queues,
# QD16) and two io_uring --hipri jobs (IOPOLL: the poll queue, QD8) on
# both namespaces of controller 0, all writing random 4k blocks with crc32c
# verify (verify_backlog), while the controller is reset every 2 s, up to
# 5 times and at least 3 (fio may end sooner on a fast host; C nvme:
# /sys/class/nvme/nvmeX/reset_controller; rnvme: .../BDF/rnvme_reset). Each
# reset is proven on the controller's side (QEMU's trace: CC.EN cleared and
# set again, all interrupt and poll queues created again before the next
# I/O, I/O before and after each reset). The
# poll queue and the interrupt queues both carried reads and writes during
# the run (QEMU's NVMe trace, by submission queue: the debug kernel has no
# blk-mq debugfs; the poll queue is the last, after one per CPU), every
# reset returned success, fio completed with no I/O or verify error, the
# kernel log has no report, and a full write + verify pass after the last
# reset has no error.
. "$(dirname "$0")/nvme-lib"
. "$(dirname "$0")/../stress-lib"
require_cmd python3
nvme_load poll_queues=1
bdf=${NVME_BDFS[0]}
read -ra c0 <<< "${CTRL_DISKS[0]}"
[ ${#c0[@]} -ge 2 ] || fail "controller 0 needs 2 namespaces (qemu-test/vm --nvme=1G,ns=2 ...)"
if [ "$DRV" = nvme ]; then
    ctrl=$(basename "$(ls -d /sys/bus/pci/devices/"$bdf"/nvme/nvme* | head -1)")
    reset=/sys/class/nvme/$ctrl/reset_controller
else
    reset=/sys/bus/pci/devices/$bdf/rnvme_reset
fi
[ -e "$reset" ] || fail "$DRV has no user-triggered controller reset: $reset does not exist"
b=$(basename "${c0[0]}")
[ "$(cat "/sys/block/$b/queue/io_poll")" = 1 ] || fail "${c0[0]}: queue/io_poll is not 1 with poll_queues=1"
pq=$(($(nproc) + 1))
qtrace_mark

common=(--direct=1 --bs=4k --rw=randwrite --size=12M --verify=crc32c --do_verify=1
        --verify_fatal=1 --verify_backlog=128 --verify_dump=1)
stress_kmsg_mark
stress_fio_start mix "${common[@]}" \
    --name=irq0 --filename="${c0[0]}" --ioengine=libaio --iodepth=16 --offset=512M \
    --name=irq1 --filename="${c0[1]}" --ioengine=libaio --iodepth=16 --offset=512M \
    --name=poll0 --filename="${c0[0]}" --ioengine=io_uring --hipri --iodepth=8 --offset=600M \
    --name=poll1 --filename="${c0[1]}" --ioengine=io_uring --hipri --iodepth=8 --offset=600M
# The first reset only once fio's I/O flows (a slow guest starts it late).
stress_disk_busy "${c0[0]}"
resets=0 next=$SECONDS
while stress_fio_running mix; do
    stress_io_watch "${c0[@]}"
    if [ $resets -lt 5 ] && [ $SECONDS -ge $next ]; then
        echo 1 > "$reset" 2> "$STRESS_DIR/reset.err" ||
            fail "reset $((resets + 1)) through $reset failed: $(cat "$STRESS_DIR/reset.err")"
        resets=$((resets + 1)) next=$((SECONDS + 2))
        log "  reset $resets done while fio runs"
    fi
    sleep 0.2
done
stress_fio_wait mix 1
stress_fio_ok mix
log "fio 4 jobs (2 libaio, 2 io_uring hipri) with crc32c verify across $resets resets: no error"
# Only controller 0 had I/O since the mark; a reset re-creates the same queue ids.
seen_poll=$(qtrace_count pci_nvme_io_cmd "sqid $pq opc 0x[12] ")
seen_all=$(qtrace_count pci_nvme_io_cmd "opc 0x[12] ")
seen_irq=$((seen_all - seen_poll))
log "QEMU: reads/writes on the poll queue $pq: $seen_poll, on the interrupt-driven queues: $seen_irq"
[ $resets -ge 3 ] || fail "fio ended before a third reset: only $resets reset(s) under I/O"
[ "$seen_poll" -ge 100 ] || fail "only $seen_poll reads/writes reached QEMU on the poll queue $pq: the hipri jobs did not go through it"
[ "$seen_irq" -ge 100 ] || fail "only $seen_irq reads/writes reached QEMU on the interrupt-driven queues"
stress_kmsg_check "resets under I/O on interrupt and poll queues"
stress_fio_start after "${common[@]}" --size=4M \
    --name=irq --filename="${c0[0]}" --ioengine=libaio --iodepth=16 --offset=700M \
    --name=poll --filename="${c0[1]}" --ioengine=io_uring --hipri --iodepth=8 --offset=700M
stress_fio_wait after 120
stress_fio_ok after
log "write + verify after the resets on both kinds of queue: no error"
# One interrupt-driven queue per CPU and the poll queue, created again at
# every reset (the run after the last reset is the I/O after it).
qtrace_check_resets "$pq" "$resets"
pass
