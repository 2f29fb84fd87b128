#!/usr/bin/env bash
# rfl-timeout: 3000
# rmmod/insmod x50 (RFL_RELOAD_ROUNDS) with I/O on every load: each time
# every controller binds again and its disks come back; on every disk the
# pattern written before the last unload reads back unchanged, then a new
# pattern is written and read back equal (direct I/O). After each rmmod the
# disks are gone and the device's IRQ vectors, DMA-API entries, gendisks and
# the rest that selftests/leak-lib counts are back to their start values;
# after the last one kmemleak finds nothing allocated by the driver (for the
# C driver: nvme or nvme_core).
. "$(dirname "$0")/nvme-lib"
. "$RFL_TOP/selftests/leak-lib"
rounds=${RFL_RELOAD_ROUNDS:-50}
mods=$DRV
[ "$DRV" = nvme ] && mods="nvme nvme_core"
# 256 KiB per disk at 1 MiB (inside the smallest, 64 MiB, namespace).
blocks=4 at=16

nvme_unload
leak_begin "$mods" "${NVME_BDFS[@]}"
start=$(date +%s)
for n in $(seq 1 "$rounds"); do
    nvme_load
    leak_loaded
    for i in "${!DISKS[@]}"; do
        d=${DISKS[$i]}
        if [ "$n" -gt 1 ]; then
            dd if="$d" of="$NVME_TMP/back" bs=64k skip=$at count=$blocks iflag=direct status=none ||
                fail "round $n: reading $d after the reload failed"
            cmp -s "$NVME_TMP/pat$i" "$NVME_TMP/back" ||
                fail "round $n: $d: the data written before the unload differ after the reload"
        fi
        head -c $((blocks * 65536)) /dev/urandom > "$NVME_TMP/pat$i"
        dd if="$NVME_TMP/pat$i" of="$d" bs=64k seek=$at oflag=direct conv=fsync status=none ||
            fail "round $n: writing $d failed"
        dd if="$d" of="$NVME_TMP/back" bs=64k skip=$at count=$blocks iflag=direct status=none ||
            fail "round $n: reading $d back failed"
        cmp -s "$NVME_TMP/pat$i" "$NVME_TMP/back" || fail "round $n: $d: data read back differ from those written"
    done
    [ "$n" = "$rounds" ] && leak_break keep-loaded && break
    nvme_unload
    for d in "${DISKS[@]}"; do [ ! -e "$d" ] || fail "round $n: $d still present after rmmod $DRV"; done
    leak_round "$n"
done
log "$rounds x load + write/read-back on ${#DISKS[@]} disks + rmmod of $DRV: data intact across every reload ($(( $(date +%s) - start )) s)"
leak_end
pass
