#!/usr/bin/env bash
# ENA ($ENA_DRIVER on the model) with the model's tap backend: the guest pings
# the host's end of the tap (10.79.0.1, set up by qemu-test/ena-vm) without
# loss, and the model counts no guest/DMA error.
# Run with: qemu-test/ena-vm --ena=tap -- env ENA_DRIVER=ena selftests/run.sh ena/tap
. "$(dirname "$0")/../ena-lib"
require_cmd modprobe ip ping
[ "${ENA_MODE:-}" = tap ] || fail "needs qemu-test/ena-vm --ena=tap (ENA_MODE='${ENA_MODE:-}')"
[ "$(ena_bdfs | wc -l)" = 1 ] || fail "expected one ENA function, found $(ena_bdfs | wc -l)"
ena_model_clean_mark
ena_load
ifn=$(ena_ifname 0)
[ -n "$ifn" ] || fail "no ENA netdev"
ENA_IF=("$ifn")
ip netns del ena-a 2>/dev/null; ip netns add ena-a || fail "ip netns add ena-a failed"
ip link set "$ifn" netns ena-a || fail "moving $ifn into ena-a failed"
ip -n ena-a addr add 10.79.0.2/24 dev "$ifn" || fail "adding 10.79.0.2 to $ifn failed"
ip -n ena-a link set "$ifn" up || fail "ip link set $ifn up failed"
ena_wait_carrier 0 10 || fail "no carrier on $ifn"
ena_ping_clean 0 10.79.0.1 5
log "$ifn -> host tap 10.79.0.1: 5/5"
ena_assert_model_clean
pass
