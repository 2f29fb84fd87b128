#!/usr/bin/env bash
# rfl-timeout: 900
# rmmod under I/O: fio writes random 4k blocks with crc32c verify
# (verify_backlog: read back and checked as it goes) on both namespaces of
# controller 0 and on controller 1, and `rmmod $NVME_DRIVER` is run while
# the disks complete I/O. An open disk pins the driver's module (C: 6.12's
# nvme_ns_open takes a reference on ctrl->ops->module, which is nvme;
# rnvme's gendisks have rnvme as their owner), so rmmod must be refused
# every time it is tried while fio runs (refcnt > 0, "in use"; the test
# holds a disk open too, as fio's jobs close theirs before fio itself
# exits) and fio runs to completion
# with no error. The kernel log has no report; then the driver is
# (re)loaded, regions written before the rmmod read back intact, and a fresh
# write + verify pass has no error.
. "$(dirname "$0")/nvme-lib"
. "$(dirname "$0")/../stress-lib"
require_cmd python3 numfmt timeout
nvme_load
read -ra c0 <<< "${CTRL_DISKS[0]}"
read -ra c1 <<< "${CTRL_DISKS[1]}"
[ ${#c0[@]} -ge 2 ] || fail "controller 0 needs 2 namespaces (qemu-test/vm --nvme=1G,ns=2 ...)"
targets=("${c0[0]}" "${c0[1]}" "${c1[0]}")
for d in "${targets[@]}"; do stress_region_write "$d" 256M 8M; done
log "8 MiB written and verified at 256 MiB on ${targets[*]}"

stress_kmsg_mark
jobs=()
for d in "${targets[@]}"; do
    jobs+=(--name="$(basename "$d")" --filename="$d")
done
# Large enough to still be running when rmmod comes (about 5 s in).
stress_fio_start load --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=16 \
    --size=24M --offset=512M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --verify_backlog=256 --verify_dump=1 "${jobs[@]}"
sleep 4
stress_disk_busy "${targets[0]}"
stress_fio_running load || fail "fio ended before the rmmod (make it larger)"
# The I/O seen may still be udev's probe of the disks just loaded (the C
# driver's refcnt read 0 once, with fio's jobs starting a second later):
# wait up to 60 s for fio's jobs to open them and pin the module.
for ((k = 0; k < 60; k++)); do
    read -r refcnt < "/sys/module/$DRV/refcnt"
    [ "$refcnt" -gt 0 ] && break
    stress_fio_running load || fail "fio ended before it was seen pinning $DRV"
    sleep 1
done
log "fio running on ${targets[*]}; /sys/module/$DRV/refcnt = $refcnt"
[ "$refcnt" -gt 0 ] || fail "/sys/module/$DRV/refcnt stayed 0 for 60 s while fio ran on its disks: an open disk must pin the driver"
# fio's job processes close the disks before its main process exits: an
# rmmod in that gap rightly succeeds (it did once, after 110 s of refusals).
# A disk this shell holds open keeps the module pinned until fio's end has
# been seen.
exec {holder}< "${targets[0]}" || fail "cannot open ${targets[0]}"
tries=0
while stress_fio_running load; do
    if rmmod "$DRV" 2> "$STRESS_DIR/rmmod.err"; then
        fail "rmmod $DRV succeeded while fio and this test had its disks open (refcnt was $refcnt)"
    fi
    grep -q 'in use' "$STRESS_DIR/rmmod.err" || fail "rmmod $DRV refused for another reason: $(cat "$STRESS_DIR/rmmod.err")"
    tries=$((tries + 1))
    sleep 0.5
done
[ "$tries" -ge 3 ] || fail "only $tries rmmod attempt(s) while fio ran"
exec {holder}<&-
stress_fio_wait load 10
stress_fio_ok load
for d in "${DISKS[@]}"; do [ -e "$d" ] || fail "$d disappeared although rmmod was refused"; done
log "rmmod $DRV refused $tries times while its disks were open; fio completed with no error"
stress_kmsg_check "rmmod $DRV under I/O"

stress_kmsg_mark
nvme_load
read -ra c0 <<< "${CTRL_DISKS[0]}"
read -ra c1 <<< "${CTRL_DISKS[1]}"
targets=("${c0[0]}" "${c0[1]}" "${c1[0]}")
for d in "${targets[@]}"; do stress_region_check "$d" 256M 8M "after rmmod and reload"; done
log "regions written before the rmmod read back intact on ${targets[*]}"
run_fio after --filename="${targets[0]}" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=16 \
    --size=8M --offset=700M --verify=crc32c --do_verify=1 --verify_fatal=1
stress_kmsg_check "reload of $DRV"
log "fresh 8 MiB write + verify after the reload: no error"
pass
