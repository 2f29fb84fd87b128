#!/usr/bin/env bash
# Two namespaces on one controller: both block devices exist with the right
# size, and their data is independent (different data written at the same
# offset of each reads back unchanged; concurrent fio verify on both).
. "$(dirname "$0")/nvme-lib"
ci=
for i in "${!NVME_SPECS[@]}"; do [ "$(nvme_spec "$i" 5)" -ge 2 ] && { ci=$i; break; }; done
[ -n "$ci" ] || fail "no controller with 2 namespaces: start the guest with qemu-test/vm --nvme=1G,ns=2"
nvme_load
read -ra ns <<< "${CTRL_DISKS[ci]}"
a=${ns[0]} b=${ns[1]}
log "controller ${NVME_BDFS[$ci]}: namespaces $a and $b"
dd if=/dev/urandom of="$NVME_TMP/A" bs=1M count=4 status=none
dd if=/dev/urandom of="$NVME_TMP/B" bs=1M count=4 status=none
dd if="$NVME_TMP/A" of="$a" bs=1M seek=32 oflag=direct conv=fsync status=none || fail "write to $a failed"
dd if="$NVME_TMP/B" of="$b" bs=1M seek=32 oflag=direct conv=fsync status=none || fail "write to $b failed"
dd if="$a" of="$NVME_TMP/A2" bs=1M skip=32 count=4 iflag=direct status=none || fail "read of $a failed"
dd if="$b" of="$NVME_TMP/B2" bs=1M skip=32 count=4 iflag=direct status=none || fail "read of $b failed"
cmp -s "$NVME_TMP/A" "$NVME_TMP/A2" || fail "$a does not hold what was written to it (overwritten by $b?)"
cmp -s "$NVME_TMP/B" "$NVME_TMP/B2" || fail "$b does not hold what was written to it"
log "4 MiB of different data at the same offset of each: both read back intact"
# Options before the first --name are global to both jobs.
fio --ioengine=libaio --direct=1 --bs=4k --rw=randwrite --iodepth=16 --size=8M --offset=64M \
    --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --name=a --filename="$a" --name=b --filename="$b" > "$NVME_TMP/fio.out" 2>&1 ||
    { sed 's/^/  fio: /' "$NVME_TMP/fio.out" | tail -40; fail "fio verify on both namespaces failed"; }
fio_check_errors "$NVME_TMP/fio.out" both
[ "$(grep -cE '^[ab]: \(groupid' "$NVME_TMP/fio.out")" = 2 ] || fail "fio did not report both jobs a and b"
log "concurrent fio randwrite + crc32c verify on both: no errors"
pass
