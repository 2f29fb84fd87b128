#!/usr/bin/env bash
# Identify data matches what QEMU was configured with (qemu-test/vm's
# RFL_VM_NVME, not the driver's own log): per controller the serial
# (rfl-nvmeN), the model ("QEMU NVMe Ctrl", fixed by QEMU) and the firmware
# revision (QEMU puts its version there); per namespace the size in bytes
# and the logical block size; one block device per namespace.
# C nvme: /sys/class/nvme/nvmeX/{serial,model,firmware_rev} and nvme-cli's
# id-ctrl on /dev/nvmeX; rnvme: /sys/bus/pci/devices/BDF/{serial,model,
# firmware_rev}.
. "$(dirname "$0")/nvme-lib"
require_cmd nvme
nvme_load
# Reads a sysfs identify string, trailing padding removed; fails if absent.
id_attr() {
    [ -r "$1" ] || fail "$DRV does not expose $1"
    sed 's/ *$//' < "$1"
}
for i in "${!NVME_BDFS[@]}"; do
    bdf=${NVME_BDFS[$i]}
    want_serial=$(nvme_spec "$i" 1) want_bytes=$(nvme_spec "$i" 3) want_lbs=$(nvme_spec "$i" 4)
    want_fw=$(nvme_spec "$i" 7)
    [ -n "$want_fw" ] || fail "RFL_VM_NVME has no firmware revision for controller $i: qemu-test/vm too old?"
    if [ "$DRV" = nvme ]; then
        ctrl=$(basename "$(ls -d /sys/bus/pci/devices/"$bdf"/nvme/nvme* | head -1)")
        dir=/sys/class/nvme/$ctrl
        # nvme-cli reads Identify Controller itself, through the C driver's
        # admin passthrough: a second reading of the same data.
        nvme id-ctrl "/dev/$ctrl" > "$NVME_TMP/id-ctrl" || fail "nvme id-ctrl /dev/$ctrl failed"
        for f in "sn:$want_serial" "mn:QEMU NVMe Ctrl" "fr:$want_fw"; do
            grep -qE "^${f%%:*} +: ${f#*:} *$" "$NVME_TMP/id-ctrl" ||
                fail "nvme id-ctrl /dev/$ctrl: ${f%%:*} is '$(sed -n "s/^${f%%:*} *: //p" "$NVME_TMP/id-ctrl")', QEMU has '${f#*:}'"
        done
    else
        dir=/sys/bus/pci/devices/$bdf
    fi
    serial=$(id_attr "$dir/serial") model=$(id_attr "$dir/model") fw=$(id_attr "$dir/firmware_rev")
    [ "$serial" = "$want_serial" ] || fail "$bdf: serial '$serial', QEMU has '$want_serial'"
    [ "$model" = "QEMU NVMe Ctrl" ] || fail "$bdf: model '$model', QEMU's is 'QEMU NVMe Ctrl'"
    [ "$fw" = "$want_fw" ] || fail "$bdf: firmware revision '$fw', QEMU reports its version '$want_fw'"
    read -ra ds <<< "${CTRL_DISKS[i]}"
    [ ${#ds[@]} = "$(nvme_spec "$i" 5)" ] || fail "$bdf: ${#ds[@]} disks, QEMU gave it $(nvme_spec "$i" 5) namespace(s)"
    for d in "${ds[@]}"; do
        size=$(blockdev --getsize64 "$d") || fail "blockdev --getsize64 $d failed"
        lbs=$(blockdev --getss "$d") || fail "blockdev --getss $d failed"
        [ "$size" = "$want_bytes" ] || fail "$d: $size bytes, QEMU's namespace has $want_bytes"
        [ "$lbs" = "$want_lbs" ] || fail "$d: logical block size $lbs, QEMU's namespace has $want_lbs"
        log "$bdf $d: serial=$serial model='$model' firmware=$fw size=$size lbs=$lbs"
    done
done
pass
