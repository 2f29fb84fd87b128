#!/usr/bin/env bash
# The unmodified C ena driver probes both functions of the model: admin queue,
# features, MSI-X, netdev registered with the model's MAC; no errors logged.
. "$(dirname "$0")/ena-lib"
ena_require_pair
kmsg_mark
ena_load
for i in 0 1; do
    ifn=$(ena_ifname "$i")
    [ -n "$ifn" ] || fail "function $i: no netdev"
    mac=$(cat "/sys/class/net/$ifn/address")
    [ "$mac" = "06:ed:a0:00:00:0$((i + 1))" ] || fail "$ifn has MAC $mac, the model offers 06:ed:a0:00:00:0$((i + 1))"
    drv=$(basename "$(readlink "/sys/class/net/$ifn/device/driver")")
    [ "$drv" = ena ] || fail "$ifn is bound to '$drv', not ena"
    nq=$(ethtool -l "$ifn" | awk '/^Combined:/ { print $2 }' | tail -1)
    [ "${nq:-0}" -ge 1 ] || fail "$ifn reports no combined channels"
    log "$ifn: MAC $mac, $nq queue pair(s), driver $drv"
done
if kmsg_since | grep -iE 'ena.*(fail|error|timeout|reset)'; then
    fail "the ena driver logged errors during probe"
fi
pass
