#!/usr/bin/env bash
# rfl-timeout: 300
# rmmod under I/O: fio writes random 4k blocks with crc32c verify
# (verify_backlog: read back and checked as it goes) on both namespaces of
# controller 0 and on controller 1, and `rmmod $NVME_DRIVER` is run while
# the disks complete I/O. What must happen depends on whether an open disk
# pins the module (its refcnt; the C nvme's disks pin nvme-core, not nvme;
# rnvme's disks pin rnvme):
# * not pinned (C nvme): rmmod succeeds, every disk is gone, fio fails with
#   I/O errors (never a data mismatch) and exits;
# * pinned (rnvme): rmmod is refused, every time it is tried, and fio runs
#   to completion with no error.
# Either way the kernel log has no report; then the driver is (re)loaded,
# regions written before the rmmod read back intact, and a fresh write +
# verify pass has no error.
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
refcnt=$(cat "/sys/module/$DRV/refcnt")
log "fio running on ${targets[*]}; /sys/module/$DRV/refcnt = $refcnt"
if [ "$refcnt" = 0 ]; then
    timeout 60 rmmod "$DRV" 2> "$STRESS_DIR/rmmod.err" ||
        fail "rmmod $DRV (refcnt 0) under I/O failed or hung: $(cat "$STRESS_DIR/rmmod.err")"
    [ ! -d "/sys/module/$DRV" ] || fail "$DRV still loaded after rmmod"
    for d in "${DISKS[@]}"; do
        [ ! -e "/sys/block/$(basename "$d")" ] || fail "$d still in /sys/block after rmmod $DRV"
    done
    log "rmmod $DRV under I/O: done, every disk gone"
    stress_fio_wait load 60
    [ "$FIO_STATUS" != 0 ] || fail "fio exited 0 although its disks went away under it"
    errs=$(grep -oE 'err= *[0-9]+' "$STRESS_DIR/fio-load.out" | sort | uniq -c | tr -s ' \n' ' ')
    grep -qE 'err= *[1-9]' "$STRESS_DIR/fio-load.out" || { tail -20 "$STRESS_DIR/fio-load.out"; fail "fio failed without an I/O error"; }
    [ -z "$(stress_fio_mismatches load)" ] || fail "data mismatch before the removal: $(stress_fio_mismatches load | head -2)"
    log "fio ended with I/O errors ($errs), no data mismatch"
else
    tries=0
    while stress_fio_running load; do
        if rmmod "$DRV" 2> "$STRESS_DIR/rmmod.err"; then
            fail "rmmod $DRV succeeded while fio had its disks open (refcnt was $refcnt)"
        fi
        grep -q 'in use' "$STRESS_DIR/rmmod.err" || fail "rmmod $DRV refused for another reason: $(cat "$STRESS_DIR/rmmod.err")"
        tries=$((tries + 1))
        sleep 0.5
    done
    [ "$tries" -ge 3 ] || fail "only $tries rmmod attempt(s) while fio ran"
    stress_fio_wait load 10
    stress_fio_ok load
    for d in "${DISKS[@]}"; do [ -e "$d" ] || fail "$d disappeared although rmmod was refused"; done
    log "rmmod $DRV refused $tries times while its disks were open; fio completed with no error"
fi
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
