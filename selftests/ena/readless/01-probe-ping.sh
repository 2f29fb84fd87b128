#!/usr/bin/env bash
# Read-less register reads: with the model started with --ena-opt --readless
# (PCI revision 0, every register read answered through the DMA read-response
# buffer), both functions probe on $ENA_DRIVER (01-probe) and carry traffic
# (02-link-ping), and the functions really are in read-less mode (revision 0;
# 01-probe asserts that the driver read registers only the read-less way).
# Run with: qemu-test/ena-vm --ena=pair --ena-opt --readless -- \
#           env ENA_DRIVER=ena|rena selftests/run.sh ena/readless
. "$(dirname "$0")/../ena-lib"
ena_require_pair
for b in $(ena_bdfs); do
    rev=$(cat "/sys/bus/pci/devices/$b/revision")
    [ "$rev" = 0x00 ] || fail "$b has PCI revision $rev: the model is not in read-less mode (start it with --ena-opt --readless)"
done
log "both functions have revision 0x00 (read-less register reads)"
for t in 01-probe.sh 02-link-ping.sh; do
    log "--- $t"
    bash "$(dirname "$0")/../$t" 2>&1 | sed 's/^/  /'
    [ "${PIPESTATUS[0]}" = 0 ] || fail "$t failed in read-less mode"
done
ena_assert_model_clean
pass
