#!/usr/bin/env bash
# Request timeouts are recovered: on a slow controller (QEMU throttles it to
# a few hundred IOPS: qemu-test/vm --nvme=SIZE,iops=N) with the disk's
# io_timeout at 100 ms, requests waiting in the device time out. The driver
# must handle them without hanging (C nvme: abort; QEMU really aborts, so the
# request fails with "Command Abort Requested"; then reset if that does not
# help), fio must get its I/O completed or failed within a bounded time, and
# afterwards the controller must work: fio write + crc32c verify, no error.
. "$(dirname "$0")/nvme-lib"
ci=
for i in "${!NVME_SPECS[@]}"; do [ "$(nvme_spec "$i" 6)" -gt 0 ] 2>/dev/null && { ci=$i; break; }; done
[ -n "$ci" ] || fail "no throttled controller: start the guest with qemu-test/vm --nvme=64M,iops=200"
nvme_load
read -ra ds <<< "${CTRL_DISKS[ci]}"
dev=${ds[0]} b=$(basename "${ds[0]}")
orig=$(cat "/sys/block/$b/queue/io_timeout")
kmsg_mark
echo 100 > "/sys/block/$b/queue/io_timeout" || fail "cannot set $b queue/io_timeout"
log "$dev: QEMU limits it to $(nvme_spec "$ci" 6) IOPS; io_timeout 100 ms; fio QD32 4k randread of 2 MiB"
timeout 90 fio --name=timeout --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randread \
    --iodepth=32 --size=2M --continue_on_error=all > "$NVME_TMP/fio.out" 2>&1; st=$?
echo "$orig" > "/sys/block/$b/queue/io_timeout"
[ "$st" != 124 ] || fail "fio still running 90 s after starting 512 reads with io_timeout=100 ms: I/O hangs"
kmsg_since | grep -iE 'timeout|timed out|abort|reset|error' > "$NVME_TMP/kmsg"
n=$(grep -ciE 'timeout|timed out' "$NVME_TMP/kmsg")
head -2 "$NVME_TMP/kmsg" | sed 's/^/  dmesg: /'
grep -iE 'reset' "$NVME_TMP/kmsg" | tail -2 | sed 's/^/  dmesg: /'
[ "$n" -gt 0 ] || fail "no request timed out: nothing was tested"
errs=$(grep -o 'total_err=[0-9]*\|err= *[0-9]*' "$NVME_TMP/fio.out" | head -1)
log "$n timeout message(s) in dmesg; fio ended (exit $st, ${errs:-no error count}): no hang"
run_fio after --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=8 \
    --size=1M --verify=crc32c --do_verify=1 --verify_fatal=1
log "io_timeout back to $orig ms: fio 1 MiB randwrite + crc32c verify: no errors"
pass
