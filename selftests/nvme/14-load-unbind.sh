#!/usr/bin/env bash
# rfl-timeout: 900
# Unbind and bind through sysfs under I/O, twice: fio writes random 4k
# blocks on both namespaces of controller 0 and, with crc32c verify
# (verify_backlog), on controller 1; controller 0 is unbound from
# $NVME_DRIVER (/sys/bus/pci/drivers/$NVME_DRIVER/unbind) while its disks
# complete I/O. Its disks go away, the function keeps no MSI-X vector and
# no DMA mapping (DMA-API debug), its fio jobs end with I/O errors, the job
# on controller 1 completes with no error and no mismatch, and the
# kernel log has no report. Bound again (.../bind), controller 0's disks
# come back, regions written before the unbind read back intact, and a fresh
# write + verify pass has no error.
. "$(dirname "$0")/nvme-lib"
. "$(dirname "$0")/../stress-lib"
require_cmd python3 numfmt timeout
nvme_load
bdf=${NVME_BDFS[0]}
drvdir=/sys/bus/pci/drivers/$DRV

for round in 1 2; do
    read -ra c0 <<< "${CTRL_DISKS[0]}"
    read -ra c1 <<< "${CTRL_DISKS[1]}"
    [ ${#c0[@]} -ge 2 ] || fail "controller 0 needs 2 namespaces (qemu-test/vm --nvme=1G,ns=2 ...)"
    for d in "${c0[@]}"; do stress_region_write "$d" $((200 + round * 16))M 8M; done
    stress_kmsg_mark
    # Controller 0's jobs write only: once its disks are gone (capacity 0) a
    # read returns 0 bytes, which fio takes as a completed read and verifies
    # a stale buffer: 'bad header offset' mismatches with the C driver and
    # rnvme alike. Their acknowledged writes are not read back (README,
    # known issues); the regions written before the load and read back after
    # check that nothing at rest was corrupted. They run until stopped.
    common=(--ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=16 --offset=512M)
    verify=(--verify=crc32c --do_verify=1 --verify_fatal=1 --verify_backlog=256 --verify_dump=1)
    # Controller 0's jobs are large enough to be running at the unbind; the
    # one on controller 1 is sized to finish in the test's time.
    stress_fio_start c0 "${common[@]}" --size=32M --time_based --runtime=600 \
        --name="$(basename "${c0[0]}")" --filename="${c0[0]}" --name="$(basename "${c0[1]}")" --filename="${c0[1]}"
    stress_fio_start c1 "${common[@]}" "${verify[@]}" --size=4M --name="$(basename "${c1[0]}")" --filename="${c1[0]}"
    sleep 3
    stress_disk_busy "${c0[0]}"
    stress_fio_running c0 || fail "round $round: fio ended before the unbind (make it larger)"
    echo "$bdf" > "$drvdir/unbind" || fail "round $round: unbind of $bdf from $DRV failed"
    [ ! -e "/sys/bus/pci/devices/$bdf/driver" ] || fail "round $round: $bdf still has a driver after unbind"
    for d in "${c0[@]}"; do
        [ ! -e "/sys/block/$(basename "$d")" ] || fail "round $round: $d still in /sys/block after the unbind"
    done
    stress_assert_released "$bdf" "round $round: after the unbind"
    log "round $round: $bdf unbound from $DRV under I/O; ${c0[*]} gone, no vector or DMA mapping left"
    stress_fio_wait c0 60
    [ "$FIO_STATUS" != 0 ] || fail "round $round: fio on ${c0[*]} exited 0 although its disks went away"
    grep -qE 'err= *[1-9]' "$STRESS_DIR/fio-c0.out" || { tail -20 "$STRESS_DIR/fio-c0.out"; fail "round $round: fio failed without an I/O error"; }
    log "round $round: fio on ${c0[*]} ended with I/O errors ($(grep -oE 'err= *[0-9]+' "$STRESS_DIR/fio-c0.out" | sort | uniq -c | tr -s ' \n' ' '))"
    stress_fio_wait c1 120
    stress_fio_ok c1
    log "round $round: fio on ${c1[0]} (controller 1) completed with no error"
    stress_kmsg_check "round $round: unbind under I/O"

    stress_kmsg_mark
    echo "$bdf" > "$drvdir/bind" || fail "round $round: bind of $bdf to $DRV failed"
    [ "$(basename "$(readlink -f "/sys/bus/pci/devices/$bdf/driver")")" = "$DRV" ] || fail "round $round: $bdf not bound to $DRV after bind"
    nvme_find_disks
    read -ra c0 <<< "${CTRL_DISKS[0]}"
    for d in "${c0[@]}"; do stress_region_check "$d" $((200 + round * 16))M 8M "round $round: unbind + bind"; done
    run_fio after --filename="${c0[0]}" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=16 \
        --size=4M --offset=800M --verify=crc32c --do_verify=1 --verify_fatal=1
    stress_kmsg_check "round $round: bind"
    log "round $round: bound again: ${c0[*]} back, regions intact, fresh write + verify ok"
done
pass
