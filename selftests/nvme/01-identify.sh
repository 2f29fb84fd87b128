#!/usr/bin/env bash
# Identify data matches what QEMU was given: per controller the serial
# (rfl-nvmeN) and model ("QEMU NVMe Ctrl"), per namespace the size and the
# logical block size; one block device per namespace.
# C nvme: sysfs (/sys/class/nvme/*/serial, model) and nvme id-ctrl;
# rnvme: its probe line in dmesg ("MODEL (serial S, firmware F), ...").
. "$(dirname "$0")/nvme-lib"
kmsg_mark
nvme_load
for i in "${!NVME_BDFS[@]}"; do
    bdf=${NVME_BDFS[$i]}
    want_serial=$(nvme_spec "$i" 1) want_bytes=$(nvme_spec "$i" 3) want_lbs=$(nvme_spec "$i" 4)
    if [ "$DRV" = nvme ]; then
        ctrl=$(basename "$(ls -d /sys/bus/pci/devices/"$bdf"/nvme/nvme* | head -1)")
        serial=$(tr -d ' ' < "/sys/class/nvme/$ctrl/serial")
        model=$(sed 's/ *$//' < "/sys/class/nvme/$ctrl/model")
        require_cmd nvme
        nvme id-ctrl "/dev/$ctrl" | grep -q "^sn *: *$want_serial *$" ||
            fail "nvme id-ctrl /dev/$ctrl does not report serial $want_serial"
    else
        line=$(kmsg_since | grep -F "$bdf" | grep -F "(serial " | tail -1)
        [ -n "$line" ] || fail "rnvme printed no 'MODEL (serial ...)' line for $bdf in dmesg"
        model=$(echo "$line" | sed -n 's/.*: \(.*\) (serial .*/\1/p')
        serial=$(echo "$line" | sed -n 's/.*(serial \([^,]*\),.*/\1/p')
    fi
    [ "$serial" = "$want_serial" ] || fail "$bdf: serial '$serial', QEMU has '$want_serial'"
    [ "$model" = "QEMU NVMe Ctrl" ] || fail "$bdf: model '$model', expected 'QEMU NVMe Ctrl'"
    for d in ${CTRL_DISKS[i]}; do
        size=$(blockdev --getsize64 "$d")
        lbs=$(blockdev --getss "$d")
        [ "$size" = "$want_bytes" ] || fail "$d: $size bytes, QEMU's namespace has $want_bytes"
        [ "$lbs" = "$want_lbs" ] || fail "$d: logical block size $lbs, QEMU's namespace has $want_lbs"
        log "$bdf $d: serial=$serial model='$model' size=$size lbs=$lbs"
    done
done
pass
