#!/usr/bin/env bash
# SGLs: QEMU's controller offers SGLs for data transfers (Identify SGLS).
# With sgl_threshold=4096 (both drivers have the parameter: I/O whose average
# segment is at least that size is described by an SGL instead of PRPs),
# fio verify with 64K-256K blocks from scattered user memory round-trips,
# and QEMU's trace shows that every read and write the controller got in
# that run was mapped from an SGL (pci_nvme_map_sgl, one per command; type
# 0x3 "last segment" for the multi-segment ones). Then the same with
# sgl_threshold=0 (PRPs only) as the control: no SGL at all.
. "$(dirname "$0")/nvme-lib"
for thr in 4096 0; do
    nvme_load sgl_threshold=$thr
    got=$(cat "/sys/module/$DRV/parameters/sgl_threshold" 2>/dev/null) ||
        fail "$DRV has no sgl_threshold module parameter"
    [ "$got" = "$thr" ] || fail "$DRV sgl_threshold is $got after loading with $thr"
    udevadm settle -t 10 2>/dev/null    # udev's first reads of the new disk
    qtrace_mark
    run_fio "sgl$thr" --filename="$DISK" --ioengine=libaio --direct=1 --iomem=malloc \
        --bsrange=64k-256k --rw=randwrite --iodepth=8 --size=16M --offset=700M \
        --verify=crc32c --do_verify=1 --verify_fatal=1
    issued=$(fio_issued "$NVME_TMP/fio-sgl$thr.out")
    rw=$(qtrace_count pci_nvme_io_cmd "opc 0x[12] ")
    sgl=$(qtrace_count pci_nvme_map_sgl)
    multi=$(qtrace_count pci_nvme_map_sgl "type 0x3 ")
    log "sgl_threshold=$thr: fio randwrite 64K-256K QD8 + crc32c verify of 16 MiB: no errors; $issued I/Os;" \
        "QEMU: $rw reads/writes, $sgl mapped from SGLs ($multi through a segment list)"
    [ "$issued" -gt 0 ] || fail "fio reported no issued I/O"
    [ "$rw" -ge "$issued" ] || fail "QEMU saw $rw reads/writes, fio issued $issued"
    if [ "$thr" = 0 ]; then
        [ "$sgl" = 0 ] || fail "sgl_threshold=0 (PRPs only), yet QEMU mapped $sgl command(s) from SGLs"
    else
        [ "$sgl" = "$rw" ] || fail "sgl_threshold=$thr: only $sgl of $rw reads/writes reached QEMU as SGLs"
        [ "$multi" -gt 0 ] || fail "no SGL with a segment list: every request had one segment?"
    fi
done
pass
