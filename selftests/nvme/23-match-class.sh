#!/usr/bin/env bash
# match_class=0: rnvme loaded next to the C nvme takes nothing. With nvme
# bound to every controller but one, which is left free (no driver, no
# driver_override), insmod rnvme match_class=0 binds no device, the free
# one included; binding the free controller to rnvme by hand (without
# driver_override) is refused with "not claimed"; once its driver_override is
# rnvme, it binds rnvme (a disk rnvmeXn1 that reads back what was written)
# while the other controllers stay with nvme. Identical on both NVME_DRIVER
# settings (it is about the two drivers together).
. "$(dirname "$0")/nvme-lib"
require_cmd modprobe
nvme_unload
for bdf in "${NVME_BDFS[@]}"; do
    d=/sys/bus/pci/devices/$bdf
    echo > "$d/driver_override" || fail "cannot clear driver_override of $bdf"
    [ "$(cat "$d/driver_override")" = "(null)" ] || fail "driver_override of $bdf is '$(cat "$d/driver_override")' after clearing"
done
driver_of() { basename "$(readlink -f "/sys/bus/pci/devices/$1/driver" 2>/dev/null)"; }
modprobe nvme || fail "modprobe nvme failed"
for bdf in "${NVME_BDFS[@]}"; do
    for ((i = 0; i < 100; i++)); do [ "$(driver_of "$bdf")" = nvme ] && break; sleep 0.1; done
    [ "$(driver_of "$bdf")" = nvme ] || fail "the C nvme did not bind $bdf"
done
# Controller 0 free: loading rnvme offers it to rnvme's probe, which must
# decline it.
bdf=${NVME_BDFS[0]} d=/sys/bus/pci/devices/${NVME_BDFS[0]}
udevadm settle -t 10 2>/dev/null
echo "$bdf" > "$d/driver/unbind" || fail "cannot unbind $bdf from nvme"
[ ! -e "$d/driver" ] || fail "$bdf still bound to '$(driver_of "$bdf")' after unbind"
kmsg_mark
insmod "$(our_module rnvme)" match_class=0 || fail "insmod rnvme match_class=0 failed"
bound=$(find /sys/bus/pci/drivers/rnvme -maxdepth 1 -name '0000:*' | wc -l)
[ "$bound" = 0 ] || fail "rnvme match_class=0 bound $bound device(s) next to nvme"
[ ! -e "$d/driver" ] || fail "rnvme match_class=0 took the free controller $bdf at load"
for other in "${NVME_BDFS[@]:1}"; do
    [ "$(driver_of "$other")" = nvme ] || fail "$other moved from nvme to '$(driver_of "$other")' when rnvme was loaded"
done
log "rnvme match_class=0 loaded next to nvme: no device taken ($bdf free, the other $((${#NVME_BDFS[@]} - 1)) with nvme)"

if echo "$bdf" > /sys/bus/pci/drivers/rnvme/bind 2>/dev/null; then
    fail "rnvme match_class=0 accepted $bdf without driver_override"
fi
[ ! -e "$d/driver" ] || fail "$bdf is bound to '$(driver_of "$bdf")' after rnvme refused it"
kmsg_since | grep -qF "$bdf: not claimed: match_class=0 and driver_override is not rnvme" ||
    fail "no 'not claimed' line from rnvme for $bdf"
log "a manual bind of $bdf to rnvme without driver_override is refused ('not claimed')"

echo rnvme > "$d/driver_override" || fail "cannot set driver_override of $bdf"
echo "$bdf" > /sys/bus/pci/drivers_probe 2>/dev/null
[ "$(driver_of "$bdf")" = rnvme ] || fail "rnvme match_class=0 did not bind $bdf with driver_override=rnvme"
for other in "${NVME_BDFS[@]:1}"; do
    [ "$(driver_of "$other")" = nvme ] || fail "$other left nvme when $bdf was given to rnvme"
done
disk=$(nvme_disks_of "$bdf") disk=${disk%% *}
[ -n "$disk" ] && wait_for_path "$disk" 15 || fail "no rnvme disk for $bdf"
[[ "$disk" == /dev/rnvme* ]] || fail "$bdf's disk is $disk, not an rnvme one"
dd if=/dev/urandom of="$NVME_TMP/data" bs=64k count=16 status=none
dd if="$NVME_TMP/data" of="$disk" bs=64k seek=4000 oflag=direct conv=fsync status=none || fail "write to $disk failed"
dd if="$disk" of="$NVME_TMP/back" bs=64k skip=4000 count=16 iflag=direct status=none || fail "read of $disk failed"
cmp -s "$NVME_TMP/data" "$NVME_TMP/back" || fail "$disk did not read back what was written"
log "driver_override=rnvme: $bdf bound to rnvme ($disk, 1 MiB round trip ok), the other $((${#NVME_BDFS[@]} - 1)) stay with nvme"
udevadm settle -t 10 2>/dev/null
nvme_unload
pass
