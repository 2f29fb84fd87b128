#!/usr/bin/env bash
# ENA ($ENA_DRIVER on the model) against an independent peer: a virtio-net NIC
# of the same guest whose QEMU backend is the model's wire (-netdev stream).
# Ping v4 both ways and iperf3 TCP both directions with bytes accounted.
# Run with: qemu-test/ena-vm --ena=virtio-peer -- env ENA_DRIVER=ena selftests/run.sh ena/virtio-peer
. "$(dirname "$0")/../ena-lib"
require_cmd modprobe ip ping iperf3 python3
[ "${ENA_MODE:-}" = virtio-peer ] || fail "needs qemu-test/ena-vm --ena=virtio-peer (ENA_MODE='${ENA_MODE:-}')"
[ "$(ena_bdfs | wc -l)" = 1 ] || fail "expected one ENA function"
ena_load
ena_if=$(ena_ifname 0)
virt_if=""
for n in /sys/class/net/*; do
    [ "$(cat "$n/address")" = 52:54:00:e0:00:01 ] && virt_if=$(basename "$n")
done
[ -n "$virt_if" ] || fail "no virtio-net NIC with MAC 52:54:00:e0:00:01"
for ns in ena-a ena-b; do ip netns del "$ns" 2>/dev/null; ip netns add "$ns" || fail "netns $ns"; done
ip link set "$ena_if" netns ena-a && ip link set "$virt_if" netns ena-b || fail "moving interfaces into netns failed"
ip -n ena-a addr add 10.78.0.1/24 dev "$ena_if"; ip -n ena-a link set "$ena_if" up; ip -n ena-a link set lo up
ip -n ena-b addr add 10.78.0.2/24 dev "$virt_if"; ip -n ena-b link set "$virt_if" up; ip -n ena-b link set lo up
for _ in $(seq 100); do
    [ "$(ip netns exec ena-a cat "/sys/class/net/$ena_if/carrier" 2>/dev/null)" = 1 ] && break; sleep 0.1
done
ip netns exec ena-a ping -c 3 -i 0.3 -W 2 10.78.0.2 || fail "ENA -> virtio-net ping failed"
ip netns exec ena-b ping -c 3 -i 0.3 -W 2 10.78.0.1 || fail "virtio-net -> ENA ping failed"
log "ping both ways between ENA ($ena_if) and virtio-net ($virt_if): ok"
for dir in "" -R; do
    ip netns exec ena-b iperf3 -s -D -1 -p 5401 || fail "iperf3 server"
    sleep 0.5
    ip netns exec ena-a iperf3 -c 10.78.0.2 -p 5401 -t 3 $dir -J > /tmp/vp.json || { cat /tmp/vp.json; fail "iperf3 $dir failed"; }
    out=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["end"]; print(int(d["sum_received"]["bytes"]), round(d["sum_received"]["bits_per_second"]/1e6,1))' /tmp/vp.json) || fail "iperf3 output"
    [ "${out% *}" -gt 0 ] || fail "iperf3 $dir moved nothing"
    log "iperf3 ENA ${dir:+<-}${dir:-->} virtio: ${out% *} bytes, ${out#* } Mbit/s"
done
pass
