#!/usr/bin/env bash
# ENA ($ENA_DRIVER on the model) with the model's tap backend: the guest pings
# the host's end of the tap (10.79.0.1, set up by qemu-test/ena-vm).
# Run with: qemu-test/ena-vm --ena=tap -- env ENA_DRIVER=ena selftests/run.sh ena/tap
. "$(dirname "$0")/../ena-lib"
require_cmd modprobe ip ping
[ "${ENA_MODE:-}" = tap ] || fail "needs qemu-test/ena-vm --ena=tap (ENA_MODE='${ENA_MODE:-}')"
ena_load
ifn=$(ena_ifname 0)
[ -n "$ifn" ] || fail "no ENA netdev"
ip netns del ena-a 2>/dev/null; ip netns add ena-a || fail "netns"
ip link set "$ifn" netns ena-a || fail "moving $ifn"
ip -n ena-a addr add 10.79.0.2/24 dev "$ifn"
ip -n ena-a link set "$ifn" up
for _ in $(seq 100); do
    [ "$(ip netns exec ena-a cat "/sys/class/net/$ifn/carrier")" = 1 ] && break; sleep 0.1
done
ip netns exec ena-a ping -c 5 -i 0.3 -W 2 10.79.0.1 || fail "ping from the guest ENA to the host tap failed"
pass
