#!/usr/bin/env bash
# rena probes both functions of the model: reset, admin queue, features,
# MSI-X, netdev registered with the model's MAC; no errors logged.
. "$(dirname "$0")/rena-lib"
ena_require_pair
kmsg_mark
ena_load
for i in 0 1; do
    ifn=$(ena_ifname "$i")
    [ -n "$ifn" ] || fail "function $i: no netdev"
    mac=$(cat "/sys/class/net/$ifn/address")
    [ "$mac" = "06:ed:a0:00:00:0$((i + 1))" ] || fail "$ifn has MAC $mac, the model offers 06:ed:a0:00:00:0$((i + 1))"
    drv=$(basename "$(readlink "/sys/class/net/$ifn/device/driver")")
    [ "$drv" = rena ] || fail "$ifn is bound to '$drv', not rena"
    ethtool -i "$ifn" | grep -q '^driver: rena' || fail "ethtool -i $ifn does not say rena"
    nq=$(ethtool -l "$ifn" | awk '/^Combined:/ { print $2 }' | tail -1)
    [ "${nq:-0}" -ge 1 ] || fail "$ifn reports no combined channels"
    log "$ifn: MAC $mac, $nq queue pair(s), driver $drv"
done
if kmsg_since | grep -iE 'rena.*(fail|error|timeout|reset)'; then
    fail "rena logged errors during probe"
fi
pass
