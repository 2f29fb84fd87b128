#!/usr/bin/env bash
# rmmod and reload (modprobe ena / insmod rena.ko) x10: every probe and
# remove on the model is clean, and the interfaces work after the last load.
. "$(dirname "$0")/ena-lib"
ena_require_pair
require_cmd rmmod
for ns in "${ENA_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
for k in $(seq 10); do
    ena_unload || fail "$DRV still loaded after rmmod #$k"
    ena_load
done
ena_setup_pair
ena_ns 0 ping -c 2 -W 2 "${ENA_V4[1]}" >/dev/null || fail "no traffic after 10 reloads"
log "10 x rmmod/load of $DRV: clean, traffic flows"
pass
