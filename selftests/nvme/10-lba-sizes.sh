#!/usr/bin/env bash
# Both LBA formats: a namespace with 512-byte and one with 4096-byte logical
# blocks. Each disk reports its block size; fio verify at that block size
# works; on the 4096 disk a 512-byte O_DIRECT write is refused (EINVAL)
# rather than sent to the device, and unaligned-to-4K data at 512 granularity
# round-trips on the 512 disk.
. "$(dirname "$0")/nvme-lib"
c512=$(nvme_ctrl_with_lbs 512) || fail "no 512-byte-LBA controller: start the guest with qemu-test/vm --nvme=SIZE,lbs=512"
c4k=$(nvme_ctrl_with_lbs 4096) || fail "no 4096-byte-LBA controller: start the guest with qemu-test/vm --nvme=SIZE,lbs=4096"
nvme_load
for ci in "$c512" "$c4k"; do
    lbs=$(nvme_spec "$ci" 4)
    read -ra ds <<< "${CTRL_DISKS[ci]}"; d=${ds[0]}; b=$(basename "$d")
    [ "$(cat "/sys/block/$b/queue/logical_block_size")" = "$lbs" ] ||
        fail "$d logical_block_size $(cat "/sys/block/$b/queue/logical_block_size"), expected $lbs"
    [ "$(cat "/sys/block/$b/queue/physical_block_size")" -ge "$lbs" ] || fail "$d physical_block_size below $lbs"
    run_fio "lbs$lbs" --filename="$d" --ioengine=libaio --direct=1 --bsrange="$lbs"-$((lbs * 8)) \
        --rw=randwrite --iodepth=8 --size=4M --offset=16M --verify=crc32c --do_verify=1 --verify_fatal=1
    log "$d: $lbs-byte LBAs; fio randwrite ${lbs}..$((lbs * 8)) bytes + crc32c verify: no errors"
done
read -ra ds <<< "${CTRL_DISKS[c4k]}"; d4k=${ds[0]}
qtrace_mark
if dd if=/dev/zero of="$d4k" bs=512 count=1 seek=1 oflag=direct status=none 2>"$NVME_TMP/dd.err"; then
    fail "$d4k accepted a 512-byte O_DIRECT write at byte 512 on a 4096-byte-LBA namespace"
fi
# Refused by the block layer (EINVAL), not failed by the device (EIO).
grep -q 'Invalid argument' "$NVME_TMP/dd.err" ||
    fail "the 512-byte O_DIRECT write to $d4k failed, but not with EINVAL: $(tr -d '\n' < "$NVME_TMP/dd.err")"
qtrace_wait_idle
w=$(qtrace_count pci_nvme_io_cmd "opc 0x1 ")
[ "$w" = 0 ] || fail "the refused 512-byte write still sent $w write command(s) to the controller"
log "$d4k: 512-byte O_DIRECT write refused with EINVAL, no write reached the controller"
read -ra ds <<< "${CTRL_DISKS[c512]}"; d512=${ds[0]}
dd if=/dev/urandom of="$NVME_TMP/odd" bs=512 count=7 status=none
dd if="$NVME_TMP/odd" of="$d512" bs=512 seek=40001 oflag=direct conv=fsync status=none || fail "7-sector write at sector 40001 failed"
dd if="$d512" of="$NVME_TMP/odd2" bs=512 skip=40001 count=7 iflag=direct status=none || fail "7-sector read failed"
cmp -s "$NVME_TMP/odd" "$NVME_TMP/odd2" || fail "7 sectors at odd sector 40001 of $d512 read back differently"
log "$d512: 3.5 KiB at odd sector 40001 round-trips"
pass
