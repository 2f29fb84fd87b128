#!/usr/bin/env bash
# Request timeouts: on a slow controller (QEMU throttles it to N IOPS and
# N x 4 KiB/s: qemu-test/vm --nvme=SIZE,iops=N; 200: a 128 KiB read takes
# 160 ms) with the disk's io_timeout at 100 ms, fio keeps 16 reads of
# 128 KiB queued, so reads wait in the device far past their timeout. Both drivers must then, in this order (checked in dmesg and
# in QEMU's trace, the controller's side):
# 1. send an Abort for a timed-out command: the Abort names the command id
#    and queue of a read the controller was given before it (C nvme: "I/O
#    tag T (CID) ... QID Q timeout, aborting"; rnvme: "sent abort for
#    command 0xCID on queue Q");
# 2. when the aborted command is still not back by the next timeout, reset
#    the controller (C: "timeout, reset controller"; rnvme: "resetting
#    controller (I/O timeout)"; QEMU: CC.EN cleared) - after that Abort;
#    rnvme must requeue requests QEMU still held (its "N request(s)
#    requeued", N > 0);
# fio must end within a bounded time with I/O errors, EIO (the commands
# QEMU completed as "Command Abort Requested"), and afterwards the
# controller must work: fio write + crc32c verify, no error.
. "$(dirname "$0")/nvme-lib"
ci=
for i in "${!NVME_SPECS[@]}"; do [ "$(nvme_spec "$i" 6)" -gt 0 ] 2>/dev/null && { ci=$i; break; }; done
[ -n "$ci" ] || fail "no throttled controller: start the guest with qemu-test/vm --nvme=64M,iops=200"
nvme_load
read -ra ds <<< "${CTRL_DISKS[ci]}"
dev=${ds[0]} b=$(basename "${ds[0]}") bdf=${NVME_BDFS[$ci]}
orig=$(cat "/sys/block/$b/queue/io_timeout")
kmsg_mark
qtrace_mark
echo 100 > "/sys/block/$b/queue/io_timeout" || fail "cannot set $b queue/io_timeout"
iops=$(nvme_spec "$ci" 6)
log "$dev: QEMU limits it to $iops IOPS and $((iops * 4)) KiB/s; io_timeout 100 ms; fio QD16 128k randread of 4 MiB"
timeout 150 fio --name=timeout --filename="$dev" --ioengine=libaio --direct=1 --bs=128k --rw=randread \
    --iodepth=16 --size=4M --continue_on_error=all > "$NVME_TMP/fio.out" 2>&1; st=$?
echo "$orig" > "/sys/block/$b/queue/io_timeout"
[ "$st" != 124 ] || fail "fio still running 150 s after starting 32 reads with io_timeout=100 ms: I/O hangs"
kmsg_since > "$NVME_TMP/kmsg"
qtrace_since > "$NVME_TMP/qtrace"
grep -iE 'timeout|timed out|abort|reset|error' "$NVME_TMP/kmsg" | sed -E 's/[0-9]+/N/g' | sort | uniq -c |
    sed 's/^/  dmesg (counts): /'
grep -vE '^pci_nvme_io_cmd' "$NVME_TMP/qtrace" | awk '{print $1, $2 == "cid" ? "" : $2}' | uniq -c | head -20 |
    sed 's/^/  qemu (runs): /'
grep -E '^pci_nvme_err_req_status' "$NVME_TMP/qtrace" | awk '{print "status", $(NF-2), "opc", $NF}' | sort | uniq -c |
    sed 's/^/  qemu failed commands: /'
grep -E 'err=|errors *:|IOPS=|clat \(' "$NVME_TMP/fio.out" | sed 's/^ */  fio: /'

# 1. The first Abort, and the command it names.
if [ "$DRV" = nvme ]; then
    abort_line=$(grep -m1 -E 'I/O tag [0-9]+ \([0-9a-f]+\) .*QID [0-9]+ timeout, aborting' "$NVME_TMP/kmsg")
    cid_hex=$(sed -E 's/.*I\/O tag [0-9]+ \(([0-9a-f]+)\).*/\1/' <<< "$abort_line")
    qid=$(sed -E 's/.* QID ([0-9]+) timeout.*/\1/' <<< "$abort_line")
    reset_re='timeout, reset controller'
else
    abort_line=$(grep -m1 -E "$bdf: sent abort for command 0x[0-9a-f]+ on queue [0-9]+" "$NVME_TMP/kmsg")
    cid_hex=$(sed -E 's/.*sent abort for command 0x([0-9a-f]+) .*/\1/' <<< "$abort_line")
    qid=$(sed -E 's/.* on queue ([0-9]+).*/\1/' <<< "$abort_line")
    reset_re="$bdf: resetting controller \\(I/O timeout"
fi
[ -n "$abort_line" ] || fail "no Abort for a timed-out command in dmesg"
cid=$((16#$cid_hex))
log "first abort: command $cid (0x$cid_hex) on queue $qid: ${abort_line#*] }"
awk -v cid="$cid" -v q="$qid" '
    $1 == "pci_nvme_io_cmd" && $3 == cid && $7 == q { sent = NR }
    $1 == "pci_nvme_admin_cmd" && $7 == "0x8" { abort = NR; exit }
    END { if (!abort) { print "no Abort command reached the controller"; exit 1 }
          if (!sent) { print "the first Abort came before the controller had command " cid " on queue " q; exit 1 }
          print abort }' "$NVME_TMP/qtrace" > "$NVME_TMP/abort" || fail "QEMU: $(cat "$NVME_TMP/abort")"
abort_at=$(cat "$NVME_TMP/abort")
log "QEMU: read $cid on queue $qid, then an Abort (trace line $abort_at)"

# 2. Then the reset.
grep -qE "$reset_re" "$NVME_TMP/kmsg" || fail "no controller reset after the Abort in dmesg ('$reset_re')"
[ "$(grep -nE "$reset_re" "$NVME_TMP/kmsg" | head -1 | cut -d: -f1)" -gt "$(grep -nF "$abort_line" "$NVME_TMP/kmsg" | head -1 | cut -d: -f1)" ] ||
    fail "dmesg: the controller reset comes before the first Abort"
stop_at=$(awk '$1 == "pci_nvme_mmio_stopped" {print NR; exit}' "$NVME_TMP/qtrace")
[ -n "$stop_at" ] || fail "QEMU never saw CC.EN cleared: the controller was not reset"
[ "$stop_at" -gt "$abort_at" ] || fail "QEMU saw CC.EN cleared (line $stop_at) before the first Abort (line $abort_at)"
if [ "$DRV" = rnvme ]; then
    # The throttled reads QEMU still held at the reset must come back through
    # rnvme's requeue path (the path 08's resets of a healthy controller never
    # reach).
    requeued=$(sed -n "s/.*$bdf: controller reset done; \([0-9]*\) request(s) requeued.*/\1/p" "$NVME_TMP/kmsg" |
        awk '{ s += $1 } END { print s + 0 }')
    [ "$requeued" -gt 0 ] || fail "no request was requeued by the timeout reset(s): the requeue path never ran"
    log "rnvme requeued $requeued request(s) in the timeout reset(s)"
fi
log "reset after the Abort: dmesg '$(grep -m1 -E "$reset_re" "$NVME_TMP/kmsg" | sed 's/^\[[^]]*\] //')'; QEMU CC.EN cleared at trace line $stop_at"

# 3. fio got EIO.
first=$(sed -n 's/.*errors *: total=\([0-9]*\), first_error=\([0-9]*\).*/\1 \2/p' "$NVME_TMP/fio.out")
read -r nerr errno <<< "$first"
[ -n "$nerr" ] || fail "fio printed no error summary"
[ "$nerr" -gt 0 ] || fail "fio had no I/O error: the timed-out, aborted reads did not fail"
[ "$errno" = 5 ] || fail "fio's first error is $errno, want 5 (EIO)"
log "fio ended (exit $st): $nerr read(s) failed with EIO"

run_fio after --filename="$dev" --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=8 \
    --size=1M --verify=crc32c --do_verify=1 --verify_fatal=1
log "io_timeout back to $orig ms: fio 1 MiB randwrite + crc32c verify: no errors"
pass
