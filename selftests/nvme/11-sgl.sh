#!/usr/bin/env bash
# SGLs: QEMU's controller offers SGLs for data transfers (Identify SGLS).
# With sgl_threshold=4096 (both drivers have the parameter: I/O whose average
# segment is at least that size is described by an SGL instead of PRPs),
# fio verify with 64K-256K blocks from scattered user memory round-trips;
# then the same with sgl_threshold=0 (PRPs only) as the control.
# (Neither driver exposes an SGL counter: this proves correctness on the SGL
# path, not that every request took it.)
. "$(dirname "$0")/nvme-lib"
for thr in 4096 0; do
    nvme_load sgl_threshold=$thr
    got=$(cat "/sys/module/$DRV/parameters/sgl_threshold" 2>/dev/null) ||
        fail "$DRV has no sgl_threshold module parameter"
    [ "$got" = "$thr" ] || fail "$DRV sgl_threshold is $got after loading with $thr"
    run_fio "sgl$thr" --filename="$DISK" --ioengine=libaio --direct=1 --iomem=malloc \
        --bsrange=64k-256k --rw=randwrite --iodepth=8 --size=16M --offset=700M \
        --verify=crc32c --do_verify=1 --verify_fatal=1
    log "sgl_threshold=$thr: fio randwrite 64K-256K QD8 + crc32c verify of 16 MiB: no errors"
done
pass
